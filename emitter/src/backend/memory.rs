//! [`SimpleEventEmitter`]: the in-memory backend, handing each event straight to the listeners' queues.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use super::{Dispatcher, Envelope, EventEmitterBackend};
use crate::error::BackendError;

/// The default backend: events live in the emitter's memory.
///
/// `enqueue` hands the event straight to the emitter's scheduler queue, which never blocks and
/// works from any thread; the scheduler starts each listener's deliveries in emit order. How
/// many events the emitter holds at once is bounded by
/// [`EmitterBuilder::capacity`](crate::EmitterBuilder::capacity).
/// Queued events live only in memory: they are delivered before
/// [`Emitter::shutdown`](crate::Emitter::shutdown) returns, and lost if the process dies first.
///
/// A delayed event waits in a tokio timer (shutdown waits for it too, unless
/// [`shutdown_timeout`](crate::Emitter::shutdown_timeout) cuts the wait short). Idempotency keys
/// are remembered for the life of the emitter.
#[derive(Debug, Default)]
pub struct SimpleEventEmitter {
    started: OnceLock<(Dispatcher, tokio::runtime::Handle)>,
    keys: Mutex<HashSet<String>>,
}

impl SimpleEventEmitter {
    /// A new in-memory backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventEmitterBackend for SimpleEventEmitter {
    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        self.started
            .set((dispatcher, tokio::runtime::Handle::current()))
            .map_err(|_| BackendError::new("the in-memory backend was already started"))
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let (dispatcher, runtime) = self
            .started
            .get()
            .ok_or_else(|| BackendError::new("the in-memory backend is not started"))?;
        if envelope.options.is_none() {
            dispatcher.dispatch(envelope);
            return Ok(());
        }
        if let Some(key) = envelope.idempotency_key() {
            let fresh = self
                .keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.to_owned());
            if !fresh {
                dispatcher.drop_envelope(envelope);
                return Ok(());
            }
        }
        match envelope
            .run_at()
            .and_then(|when| when.duration_since(SystemTime::now()).ok())
        {
            Some(delay) if !delay.is_zero() => {
                let dispatcher = dispatcher.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    dispatcher.dispatch(envelope);
                });
            }
            _ => dispatcher.dispatch(envelope),
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
