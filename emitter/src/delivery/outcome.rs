//! Outcomes: what an attempt came to by the listener's policy, and where that is recorded
//! (counters, the log, the error hook, the test capture). The one place that decides whether a
//! failed attempt is retried.

use std::sync::Arc;
use std::time::Duration;

use crate::context::EventMeta;
use crate::emit_id::EmitId;
use crate::error::{Failure, ListenerError};
use crate::policy::DeliveryPolicy;
use crate::stats::Tally;
use crate::table::ListenerEntry;
use crate::testing::Capture;

/// A function that receives every delivery that failed for good, after it was logged.
pub type ErrorHook = Arc<dyn Fn(&ListenerError) + Send + Sync + 'static>;

/// What follows an attempt.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The listener succeeded: the delivery is done.
    Delivered,
    /// The attempt failed (an error, a panic or a timeout) with attempts left: try again after
    /// the listener's backoff.
    Retry {
        after: Duration,
        /// What went wrong, for a store to keep with the delivery.
        error: String,
    },
    /// The delivery failed for good (its last attempt failed, or it cannot run at all); the
    /// error hook has been told.
    Failed {
        /// Why, for a store to keep with the dead letter.
        reason: String,
    },
}

/// Where the outcomes of an emitter's deliveries are recorded. Built with the emitter.
#[derive(Default)]
pub(crate) struct Outcomes {
    pub(crate) hook: Option<ErrorHook>,
    pub(crate) capture: Option<Capture>,
}

impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes")
            .field("hook", &self.hook.is_some())
            .field("capture", &self.capture.is_some())
            .finish()
    }
}

impl Outcomes {
    /// Records how attempt `meta.attempt()` of `listener` ended and decides, by `policy`, what
    /// follows.
    pub(crate) fn conclude(
        &self,
        listener: &ListenerEntry,
        policy: &DeliveryPolicy,
        meta: &EventMeta,
        result: Result<(), Failure>,
    ) -> Outcome {
        let failure = match self.record(meta, result) {
            Ok(()) => {
                listener.stats.delivered(meta.event_id, listener.name);
                return Outcome::Delivered;
            }
            Err(failure) => failure,
        };
        self.conclude_failure(listener, policy, meta, failure)
    }

    /// [`conclude`](Self::conclude), counting a success in `tally` rather than in the
    /// listener's counters (the scheduler publishes its tally once per chunk of events), and
    /// making the metadata (`meta`) only when something needs it: a failure, a test capture.
    pub(crate) fn conclude_tallied(
        &self,
        listener: &ListenerEntry,
        policy: &DeliveryPolicy,
        meta: impl FnOnce() -> EventMeta,
        result: Result<(), Failure>,
        tally: &mut Tally,
    ) -> Outcome {
        if result.is_ok() && self.capture.is_none() {
            tally.add(listener.pair);
            return Outcome::Delivered;
        }
        let meta = meta();
        match self.record(&meta, result) {
            Ok(()) => {
                tally.add(listener.pair);
                Outcome::Delivered
            }
            Err(failure) => self.conclude_failure(listener, policy, &meta, failure),
        }
    }

    /// Hands the attempt's result to the test capture, if any.
    fn record(&self, meta: &EventMeta, result: Result<(), Failure>) -> Result<(), Failure> {
        if let Some(capture) = &self.capture {
            capture.record_attempt(meta, &result);
        }
        result
    }

    /// A failed attempt: retried by `policy`, or the delivery's failure.
    fn conclude_failure(
        &self,
        listener: &ListenerEntry,
        policy: &DeliveryPolicy,
        meta: &EventMeta,
        failure: Failure,
    ) -> Outcome {
        let attempt = meta.attempt;
        if attempt < policy.max_attempts() {
            let after = policy.backoff_policy().wait_before_retry(attempt);
            listener.stats.retried(meta.event_id, listener.name);
            tracing::warn!(
                listener = listener.name,
                event_id = meta.event_id,
                emit_id = %meta.emit_id,
                attempt,
                "listener failed, retrying in {after:?}: {failure}"
            );
            return Outcome::Retry {
                after,
                error: failure.to_string(),
            };
        }
        let reason = format!(
            "attempt {attempt} of {}: listener {failure}",
            policy.max_attempts()
        );
        self.failed(listener, meta.event_id, meta.emit_id, attempt, failure);
        Outcome::Failed { reason }
    }

    /// A delivery that cannot run at all (its payload does not decode, say), as `reason` says.
    pub(crate) fn undeliverable(
        &self,
        listener: &ListenerEntry,
        event_id: &'static str,
        emit_id: EmitId,
        attempt: u32,
        reason: String,
    ) -> Outcome {
        self.failed(
            listener,
            event_id,
            emit_id,
            attempt,
            Failure::Undeliverable(reason.clone()),
        );
        Outcome::Failed { reason }
    }

    /// A delivery failed for good: counted, logged, and handed to the error hook.
    pub(crate) fn failed(
        &self,
        listener: &ListenerEntry,
        event_id: &'static str,
        emit_id: EmitId,
        attempt: u32,
        failure: Failure,
    ) {
        listener.stats.failed(event_id, listener.name);
        let error = ListenerError {
            listener: listener.name,
            event_id,
            emit_id,
            attempt,
            failure,
        };
        tracing::error!(
            listener = error.listener,
            event_id = error.event_id,
            emit_id = %error.emit_id,
            attempt = error.attempt,
            "listener failed: {}",
            error.failure
        );
        if let Some(hook) = &self.hook {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&error))).is_err() {
                tracing::error!(listener = error.listener, "the error hook panicked");
            }
        }
    }
}
