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

use crate::context::{EmitId, EventMeta};
use crate::error::Failure;
use crate::event::{Event, Payload};
use crate::listener::Listener;

/// Records every event an emitter accepts and every attempt of every delivery.
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
    emitted: Vec<(&'static str, EmitId, Payload)>,
    attempts: Vec<(Attempt, Payload)>,
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

    pub(crate) fn record_emit(&self, event_id: &'static str, emit_id: EmitId, payload: &Payload) {
        self.log()
            .emitted
            .push((event_id, emit_id, Arc::clone(payload)));
    }

    pub(crate) fn record_attempt(
        &self,
        meta: &EventMeta,
        payload: &Payload,
        result: &Result<(), Failure>,
    ) {
        let attempt = Attempt {
            listener: meta.listener,
            event_id: meta.event_id,
            emit_id: meta.emit_id,
            attempt: meta.attempt,
            error: result.as_ref().err().map(ToString::to_string),
        };
        self.log().attempts.push((attempt, Arc::clone(payload)));
    }

    /// Every accepted event of type `E` with listeners, in emit order.
    pub fn emitted<E: Event + Clone>(&self) -> Vec<E> {
        self.log()
            .emitted
            .iter()
            .filter_map(|(_, _, payload)| payload.downcast_ref::<E>().cloned())
            .collect()
    }

    /// The ids of every accepted event with listeners, in emit order.
    pub fn emitted_ids(&self) -> Vec<&'static str> {
        self.log().emitted.iter().map(|(id, _, _)| *id).collect()
    }

    /// Every attempt of every delivery, in the order they ended.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.log()
            .attempts
            .iter()
            .map(|(attempt, _)| attempt.clone())
            .collect()
    }

    /// The events of type `E` that listener `L` handled successfully, in the order it finished
    /// them.
    pub fn delivered_to<L: Listener, E: Event + Clone>(&self) -> Vec<E> {
        let name = L::REGISTRATION.name();
        self.log()
            .attempts
            .iter()
            .filter(|(attempt, _)| attempt.listener == name && attempt.error.is_none())
            .filter_map(|(_, payload)| payload.downcast_ref::<E>().cloned())
            .collect()
    }

    /// Panics unless listener `L` ran successfully with an event equal to `expected`; the panic
    /// message lists what `L` did run with.
    #[track_caller]
    pub fn assert_ran_with<L: Listener, E: Event + Clone + PartialEq + Debug>(&self, expected: &E) {
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
