//! [`SimpleEventEmitter`]: the in-memory backend, handing each event straight to the listeners' queues.

use std::sync::OnceLock;

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
#[derive(Debug, Default)]
pub struct SimpleEventEmitter {
    dispatcher: OnceLock<Dispatcher>,
}

impl SimpleEventEmitter {
    /// A new in-memory backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventEmitterBackend for SimpleEventEmitter {
    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        self.dispatcher
            .set(dispatcher)
            .map_err(|_| BackendError::new("the in-memory backend was already started"))
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let dispatcher = self
            .dispatcher
            .get()
            .ok_or_else(|| BackendError::new("the in-memory backend is not started"))?;
        dispatcher.dispatch(envelope);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
