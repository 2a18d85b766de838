//! [`SimpleEventEmitter`]: the in-memory backend, a tokio queue drained by a worker task.

use std::sync::{Mutex, OnceLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Dispatcher, Envelope, EventEmitterBackend};
use crate::error::BackendError;

/// The default backend: an in-memory queue in the emitter's process.
///
/// Emitting pushes onto an unbounded tokio channel, which never blocks and works from any thread;
/// a worker task takes envelopes in emit order and starts their listeners as tasks. Queued events
/// live only in memory: they are delivered before [`Emitter::shutdown`](crate::Emitter::shutdown)
/// returns, and lost if the process dies first.
#[derive(Debug, Default)]
pub struct SimpleEventEmitter {
    queue: OnceLock<mpsc::UnboundedSender<Envelope>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl SimpleEventEmitter {
    /// A new in-memory backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventEmitterBackend for SimpleEventEmitter {
    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Envelope>();
        self.queue
            .set(sender)
            .map_err(|_| BackendError::new("the in-memory backend was already started"))?;
        let worker = tokio::spawn(async move {
            while let Some(envelope) = receiver.recv().await {
                dispatcher.dispatch(envelope);
            }
        });
        if let Ok(mut slot) = self.worker.lock() {
            *slot = Some(worker);
        }
        Ok(())
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let queue = self
            .queue
            .get()
            .ok_or_else(|| BackendError::new("the in-memory backend is not started"))?;
        queue
            .send(envelope)
            .map_err(|_| BackendError::new("the in-memory backend has shut down"))
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        let worker = self.worker.lock().ok().and_then(|mut slot| slot.take());
        if let Some(worker) = worker {
            worker.abort();
            // The worker holds the dispatcher (and through it the emitter); wait until it is
            // dropped so that nothing outlives shutdown.
            let _ = worker.await;
        }
        Ok(())
    }
}
