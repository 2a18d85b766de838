//! Delivery policies: retry with backoff, timeout, concurrency, and the emitter's capacity.

use std::num::NonZeroUsize;
use std::time::Duration;

/// How the emitter runs one listener: attempts, backoff between them, timeout, concurrency.
///
/// Set the default for every listener with [`EmitterBuilder::delivery_policy`](crate::EmitterBuilder::delivery_policy),
/// and override it per listener in the attribute:
/// `#[listener(events = [E], attempts = 5, backoff = "100ms..10s", timeout = "30s", concurrency = 1)]`.
///
/// ```
/// use std::time::Duration;
/// use emitter::{Backoff, DeliveryPolicy};
///
/// let policy = DeliveryPolicy::default()
///     .attempts(3)
///     .backoff(Backoff::exponential(Duration::from_millis(50), Duration::from_secs(5)))
///     .timeout(Duration::from_secs(30))
///     .concurrency(16);
/// assert_eq!(policy.max_attempts(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryPolicy {
    attempts: u32,
    backoff: Backoff,
    timeout: Option<Duration>,
    concurrency: Option<NonZeroUsize>,
}

impl Default for DeliveryPolicy {
    /// One attempt (no retry), the default [`Backoff`] should retries be enabled, no timeout,
    /// unlimited concurrency.
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Backoff::default(),
            timeout: None,
            concurrency: None,
        }
    }
}

impl DeliveryPolicy {
    /// How many times a delivery is tried in all, the first included (default 1: no retry).
    /// A failed attempt (an error, a panic or a timeout) is retried after a backoff until the
    /// attempts run out; then the error hook receives the last failure. `0` counts as `1`.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The wait between attempts (default: [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Cancels an attempt that runs longer than `timeout` and counts it as failed (default: no
    /// timeout). A blocking (`fn`) listener cannot be stopped: its attempt is counted as failed
    /// at the timeout while its thread runs on to the end.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many deliveries of one listener may run at once (default: unlimited). With `1`,
    /// deliveries run one after the other in emit order, retries included: the order users need
    /// for per-entity updates. Deliveries always start in emit order. `0` counts as `1`.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(NonZeroUsize::new(concurrency).unwrap_or(NonZeroUsize::MIN));
        self
    }

    /// Lifts the concurrency limit (the default).
    pub fn unlimited_concurrency(mut self) -> Self {
        self.concurrency = None;
        self
    }

    /// The number of attempts.
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The backoff between attempts.
    pub fn backoff_policy(&self) -> Backoff {
        self.backoff
    }

    /// The timeout of one attempt, if any.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The concurrency limit, if any.
    pub fn concurrency_limit(&self) -> Option<NonZeroUsize> {
        self.concurrency
    }

    /// This policy with a listener's overrides from its attribute.
    pub(crate) fn with_overrides(mut self, overrides: &PolicyOverrides) -> Self {
        if let Some(attempts) = overrides.attempts {
            self = self.attempts(attempts);
        }
        if let Some((initial, max)) = overrides.backoff {
            self.backoff = Backoff {
                initial,
                max,
                ..self.backoff
            };
        }
        if let Some(timeout) = overrides.timeout {
            self.timeout = Some(timeout);
        }
        if let Some(concurrency) = overrides.concurrency {
            self = self.concurrency(concurrency);
        }
        self
    }
}

/// The wait between two attempts: exponential, capped, with jitter.
///
/// The n-th retry waits `initial * factor^(n-1)`, at most `max`; with jitter (on by default) a
/// random amount up to that delay is added, so that listeners failing together do not retry in
/// lockstep. The schedule is computed by the `backon` crate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f32,
    jitter: bool,
}

impl Default for Backoff {
    /// Exponential from 100 ms, factor 2, capped at 30 s, with jitter.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Exponential from `initial`, doubling, capped at `max`, with jitter.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            factor: 2.0,
            jitter: true,
        }
    }

    /// The same wait before every retry, without jitter.
    pub fn constant(delay: Duration) -> Self {
        Self {
            initial: delay,
            max: delay,
            factor: 1.0,
            jitter: false,
        }
    }

    /// Multiplies the wait by `factor` after each retry (default 2; values below 1 count as 1).
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// Turns jitter off: the waits are exactly the exponential schedule.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before the retry that follows failed attempt `attempt` (1 for the first).
    pub(crate) fn wait_before_retry(&self, attempt: u32) -> Duration {
        self.schedule(attempt.saturating_add(1))
            .last()
            .unwrap_or_default()
    }

    /// The waits before retries 1, 2, ..., for a delivery of `attempts` attempts in all.
    pub(crate) fn schedule(&self, attempts: u32) -> impl Iterator<Item = Duration> {
        use backon::BackoffBuilder;
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(self.factor)
            .with_max_times(attempts.saturating_sub(1) as usize);
        let builder = if self.jitter {
            builder.with_jitter()
        } else {
            builder
        };
        // `backon` multiplies by an `f32`, so 50 ms × 2 comes out a few nanoseconds over 100 ms,
        // which tokio's millisecond timer rounds up to 101 ms. Whole microseconds keep the
        // schedule what the user wrote.
        builder
            .build()
            .map(|wait| Duration::from_micros(u64::try_from(wait.as_micros()).unwrap_or(u64::MAX)))
    }
}

/// How many events the emitter holds at once: accepted by `emit` and not yet handled by every
/// listener (queued, running or waiting to retry).
///
/// When the emitter is full, [`Emitter::emit`](crate::Emitter::emit) never blocks: it refuses the
/// event with [`EmitError::Full`](crate::EmitError::Full), which hands the event back, while
/// [`Emitter::emit_async`](crate::Emitter::emit_async) waits for room. That is the overflow
/// policy: nothing accepted is ever dropped, and nothing is accepted beyond the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capacity {
    /// At most this many events (`0` counts as `1`).
    Bounded(usize),
    /// No limit: memory grows with the backlog. Only for producers that are bounded otherwise.
    Unbounded,
}

impl Default for Capacity {
    /// `Bounded(65_536)`.
    fn default() -> Self {
        Capacity::Bounded(65_536)
    }
}

/// A listener's overrides of the emitter's delivery policy, from its attribute.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyOverrides {
    pub attempts: Option<u32>,
    pub backoff: Option<(Duration, Duration)>,
    pub timeout: Option<Duration>,
    pub concurrency: Option<usize>,
}

impl PolicyOverrides {
    /// No overrides: what a listener without policy options has.
    pub const NONE: PolicyOverrides = PolicyOverrides {
        attempts: None,
        backoff: None,
        timeout: None,
        concurrency: None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_schedule_doubles_and_caps() {
        let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(350))
            .without_jitter();
        let waits: Vec<Duration> = backoff.schedule(5).collect();
        assert_eq!(waits, [100, 200, 350, 350].map(Duration::from_millis));
    }

    #[test]
    fn jitter_stays_within_one_delay_above_the_schedule() {
        let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10));
        for (n, wait) in backoff.schedule(4).enumerate() {
            let base = Duration::from_millis(100 * (1 << n));
            assert!(wait >= base && wait <= base * 2, "retry {n}: {wait:?}");
        }
    }

    #[test]
    fn the_wait_before_a_retry_follows_the_schedule() {
        let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(350))
            .without_jitter();
        let waits: Vec<Duration> = (1..=4).map(|n| backoff.wait_before_retry(n)).collect();
        assert_eq!(waits, [100, 200, 350, 350].map(Duration::from_millis));
    }

    #[test]
    fn one_attempt_has_no_retries() {
        assert_eq!(Backoff::default().schedule(1).count(), 0);
        assert_eq!(Backoff::default().schedule(0).count(), 0);
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = DeliveryPolicy::default()
            .attempts(4)
            .timeout(Duration::from_secs(9));
        let overridden = base.with_overrides(&PolicyOverrides {
            concurrency: Some(1),
            backoff: Some((Duration::from_millis(1), Duration::from_millis(2))),
            ..PolicyOverrides::NONE
        });
        assert_eq!(overridden.max_attempts(), 4);
        assert_eq!(overridden.attempt_timeout(), Some(Duration::from_secs(9)));
        assert_eq!(overridden.concurrency_limit(), NonZeroUsize::new(1));
        assert_eq!(
            overridden.backoff_policy(),
            Backoff::exponential(Duration::from_millis(1), Duration::from_millis(2))
        );
    }
}
