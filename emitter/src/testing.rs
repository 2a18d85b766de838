//! Helpers for testing code that emits events, and listeners: capture what was emitted and
//! delivered, wait without sleeping, assert what a listener ran with.
//!
//! ```
//! use emitter::testing::Capture;
//! use emitter::{emit, listener, listeners, Emitter, Event};
//!
//! #[derive(Event, Debug, Clone, PartialEq)]
//! pub struct UserCreated { pub email: String }
//!
//! #[listener(events = [UserCreated])]
//! async fn send_welcome_email(email: &str) { let _ = email; }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let capture = Capture::new();
//! let emitter = Emitter::builder()
//!     .listeners(listeners![send_welcome_email])
//!     .capture(&capture)
//!     .start()
//!     .await?;
//!
//! emit!(emitter, UserCreated, email = "jane@example.com")?;
//! emitter.wait_idle().await; // everything emitted so far has been handled: no sleep
//!
//! assert_eq!(capture.emitted::<UserCreated>(), [UserCreated { email: "jane@example.com".into() }]);
//! capture.assert_ran_with::<send_welcome_email, _>(&UserCreated { email: "jane@example.com".into() });
//! # emitter.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::context::EventMeta;
use crate::emit_id::EmitId;
use crate::error::Failure;
use crate::event::Event;
use crate::listener::Listener;

/// Records every event an emitter accepts (as JSON, read back with serde) and every attempt of
/// every delivery.
///
/// Give it to [`EmitterBuilder::capture`](crate::EmitterBuilder::capture); it is cheap to clone
/// and all clones share one record. Pair it with [`Emitter::wait_idle`](crate::Emitter::wait_idle)
/// to read it once the listeners are done.
#[derive(Clone, Default)]
pub struct Capture {
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    /// Every accepted event with listeners, as JSON: holding the events themselves would keep
    /// them pending in the emitter.
    emitted: Vec<Recorded>,
    attempts: Vec<Attempt>,
}

struct Recorded {
    event_id: &'static str,
    emit_id: EmitId,
    json: serde_json::Value,
}

/// One attempt of one delivery, as [`Capture::attempts`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The listener's name.
    pub listener: &'static str,
    /// The event's id.
    pub event_id: &'static str,
    /// The emit the event came from.
    pub emit_id: EmitId,
    /// Which attempt it was, from 1.
    pub attempt: u32,
    /// `None` if the attempt succeeded, else what went wrong.
    pub error: Option<String>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let log = self.log();
        f.debug_struct("Capture")
            .field("emitted", &log.emitted.len())
            .field("attempts", &log.attempts.len())
            .finish()
    }
}

impl Capture {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The event as the capture keeps it; one that does not serialize is kept as `null` and read
    /// back as nothing.
    pub(crate) fn json<E: Event>(event: &E) -> serde_json::Value {
        serde_json::to_value(event).unwrap_or(serde_json::Value::Null)
    }

    /// Records an event the emitter accepted.
    pub(crate) fn record_emit(
        &self,
        event_id: &'static str,
        emit_id: EmitId,
        json: serde_json::Value,
    ) {
        self.log().emitted.push(Recorded {
            event_id,
            emit_id,
            json,
        });
    }

    pub(crate) fn record_attempt(&self, meta: &EventMeta, result: &Result<(), Failure>) {
        self.log().attempts.push(Attempt {
            listener: meta.listener,
            event_id: meta.event_id,
            emit_id: meta.emit_id,
            attempt: meta.attempt,
            error: result.as_ref().err().map(ToString::to_string),
        });
    }

    /// Every accepted event of type `E` with listeners, in emit order.
    pub fn emitted<E: Event>(&self) -> Vec<E> {
        self.log()
            .emitted
            .iter()
            .filter(|recorded| recorded.event_id == E::ID)
            .filter_map(|recorded| E::deserialize(&recorded.json).ok())
            .collect()
    }

    /// The ids of every accepted event with listeners, in emit order.
    pub fn emitted_ids(&self) -> Vec<&'static str> {
        self.log()
            .emitted
            .iter()
            .map(|recorded| recorded.event_id)
            .collect()
    }

    /// Every attempt of every delivery, in the order they ended.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.log().attempts.clone()
    }

    /// The events of type `E` that listener `L` handled successfully, in the order it finished
    /// them.
    pub fn delivered_to<L: Listener, E: Event>(&self) -> Vec<E> {
        let name = L::REGISTRATION.name();
        let log = self.log();
        log.attempts
            .iter()
            .filter(|attempt| attempt.listener == name && attempt.error.is_none())
            .filter_map(|attempt| {
                log.emitted.iter().find(|recorded| {
                    recorded.emit_id == attempt.emit_id && recorded.event_id == E::ID
                })
            })
            .filter_map(|recorded| E::deserialize(&recorded.json).ok())
            .collect()
    }

    /// Panics unless listener `L` ran successfully with an event equal to `expected`; the panic
    /// message lists what `L` did run with.
    #[track_caller]
    pub fn assert_ran_with<L: Listener, E: Event + PartialEq + Debug>(&self, expected: &E) {
        let ran = self.delivered_to::<L, E>();
        if !ran.contains(expected) {
            panic!(
                "listener `{}` did not run with {expected:?}; it ran successfully with {ran:?} (attempts: {:?})",
                L::REGISTRATION.name(),
                self.attempts()
                    .into_iter()
                    .filter(|attempt| attempt.listener == L::REGISTRATION.name())
                    .collect::<Vec<_>>()
            );
        }
    }
}
