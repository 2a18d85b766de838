//! One attempt of one delivery: the listener's arguments bound by its adapter, the future polled
//! once inline, in the adapter's reused allocation, then to its end under the listener's timeout,
//! in the attempt's span. Panics become failures.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tracing::Instrument;

use super::Core;
use crate::context::EventMeta;
use crate::error::Failure;
use crate::event::Payload;
use crate::listener::{AdapterSlot, BoxFuture, Delivery, Started};
use crate::policy::DeliveryPolicy;
use crate::table::ListenerEntry;
use crate::trace::delivery_span;

/// How the first poll of an attempt went.
pub(crate) enum Begun {
    /// The attempt finished at its first poll.
    Done(Result<(), Failure>),
    /// The attempt goes on.
    Pending(Pending),
}

/// An attempt that did not finish at its first poll.
pub(crate) struct Pending {
    future: BoxFuture,
    span: tracing::Span,
    /// When the attempt times out, and the listener's timeout.
    deadline: Option<(tokio::time::Instant, Duration)>,
}

impl Pending {
    /// Runs the attempt to its end, failing it at its deadline.
    pub(crate) async fn finish(self) -> Result<(), Failure> {
        let attempt = self.future.instrument(self.span);
        match self.deadline {
            Some((deadline, limit)) => tokio::time::timeout_at(deadline, attempt)
                .await
                .unwrap_or(Err(Failure::Timeout(limit))),
            None => attempt.await,
        }
    }
}

/// Starts attempt `meta.attempt()` of `listener` at `payload`: binds the arguments and polls
/// the listener once, in `slot`, with `cx`.
pub(crate) fn start_attempt(
    core: &Arc<Core>,
    listener: &ListenerEntry,
    policy: &DeliveryPolicy,
    payload: &Payload,
    meta: &EventMeta,
    slot: &mut AdapterSlot,
    cx: &mut Context<'_>,
) -> Begun {
    let span = delivery_span(
        payload.header.trace.as_deref(),
        meta.event_id,
        meta.listener,
        meta.emit_id,
        meta.attempt,
    );
    let delivery = Delivery {
        payload: Arc::clone(payload),
        meta: meta.clone(),
        context: Arc::clone(&core.context),
        emitter: std::sync::OnceLock::new(),
    };
    let deadline = policy
        .attempt_timeout()
        .map(|limit| (tokio::time::Instant::now() + limit, limit));
    match span.in_scope(|| (listener.call)(delivery, slot, cx)) {
        Started::Done(result) => Begun::Done(result),
        Started::Pending(future) => Begun::Pending(Pending {
            future,
            span,
            deadline,
        }),
    }
}

/// Runs attempt `meta.attempt()` of `listener` at `payload` from its first poll to its end.
pub(crate) async fn run_attempt(
    core: &Arc<Core>,
    listener: &ListenerEntry,
    policy: &DeliveryPolicy,
    payload: &Payload,
    meta: &EventMeta,
) -> Result<(), Failure> {
    let mut slot = AdapterSlot::default();
    let begun = poll_fn(|cx| {
        Poll::Ready(start_attempt(
            core, listener, policy, payload, meta, &mut slot, cx,
        ))
    })
    .await;
    match begun {
        Begun::Done(result) => result,
        Begun::Pending(pending) => pending.finish().await,
    }
}
