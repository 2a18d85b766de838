//! [`SimpleEventEmitter`]: the in-memory backend, handing each event straight to the listeners' queues.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::EventEmitterBackend;
use crate::delivery::Dispatcher;
use crate::envelope::Envelope;
use crate::error::BackendError;

/// The default backend: events live in the emitter's memory.
///
/// `enqueue` hands the event straight to the emitter's scheduler queue, which never blocks and
/// works from any thread; the scheduler starts each listener's deliveries in emit order. A plain
/// emit (no options) on this backend does not go through `enqueue` at all: the emitter pushes the
/// typed event onto the scheduler's inbox itself, without boxing or serializing it. How
/// many events the emitter holds at once is bounded by
/// [`EmitterBuilder::capacity`](crate::EmitterBuilder::capacity).
/// Queued events live only in memory: they are delivered before
/// [`Emitter::shutdown`](crate::Emitter::shutdown) returns, and lost if the process dies first.
///
/// A delayed event waits in the scheduler until its time (shutdown waits for it too, unless
/// [`shutdown_timeout`](crate::Emitter::shutdown_timeout) cuts the wait short, and then its
/// report names it). Idempotency keys
/// are remembered for 24 hours (see [`with_key_retention`](Self::with_key_retention)), so that
/// an emitter that runs for months does not grow with them.
#[derive(Debug)]
pub struct SimpleEventEmitter {
    started: OnceLock<Dispatcher>,
    keys: Mutex<Keys>,
    key_retention: Duration,
}

impl Default for SimpleEventEmitter {
    fn default() -> Self {
        Self {
            started: OnceLock::new(),
            keys: Mutex::new(Keys::default()),
            key_retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl SimpleEventEmitter {
    /// A new in-memory backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers idempotency keys for `retention` (default 24 hours): a key emitted again after
    /// that is a new emit.
    pub fn with_key_retention(mut self, retention: Duration) -> Self {
        self.key_retention = retention;
        self
    }
}

/// Idempotency keys seen, with when, oldest first for expiry.
#[derive(Debug, Default)]
struct Keys {
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl Keys {
    /// Records `key` at `now` unless it was seen less than `retention` ago; says whether it is
    /// new. Forgets the keys that expired.
    fn fresh(&mut self, key: &str, now: Instant, retention: Duration) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < retention {
                break;
            }
            if let Some((at, old)) = self.order.pop_front() {
                if self.seen.get(&old) == Some(&at) {
                    self.seen.remove(&old);
                }
            }
        }
        if self.seen.contains_key(key) {
            return false;
        }
        self.seen.insert(key.to_owned(), now);
        self.order.push_back((now, key.to_owned()));
        true
    }
}

impl EventEmitterBackend for SimpleEventEmitter {
    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        self.started
            .set(dispatcher)
            .map_err(|_| BackendError::new("the in-memory backend was already started"))
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let dispatcher = self
            .started
            .get()
            .ok_or_else(|| BackendError::new("the in-memory backend is not started"))?;
        if let Some(key) = envelope.idempotency_key() {
            let fresh = self
                .keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fresh(key, Instant::now(), self.key_retention);
            if !fresh {
                dispatcher.drop_envelope(envelope);
                return Ok(());
            }
        }
        dispatcher.dispatch(envelope);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_forgotten_after_their_retention() {
        let mut keys = Keys::default();
        let start = Instant::now();
        let retention = Duration::from_secs(10);
        assert!(keys.fresh("a", start, retention));
        assert!(!keys.fresh("a", start + Duration::from_secs(9), retention));
        assert!(keys.fresh("b", start + Duration::from_secs(5), retention));
        // `a` expired, `b` not yet: only `a` is new again, and the expired entry is gone.
        assert!(keys.fresh("a", start + Duration::from_secs(10), retention));
        assert!(!keys.fresh("b", start + Duration::from_secs(14), retention));
        assert_eq!(keys.seen.len(), 2);
        assert!(keys.fresh("b", start + Duration::from_secs(15), retention));
        // Nothing is kept beyond the live keys.
        assert!(keys.fresh("c", start + Duration::from_secs(40), retention));
        assert_eq!((keys.seen.len(), keys.order.len()), (1, 1));
    }
}
