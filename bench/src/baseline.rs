//! The baseline every emitter number is compared with: what one would write by hand, a tokio
//! unbounded channel feeding one worker task that calls the listener functions directly.

use std::future::Future;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A channel and the worker task draining it. Unbounded, like the emitter in the benchmarks.
#[derive(Debug)]
pub struct Baseline<T> {
    sender: mpsc::UnboundedSender<T>,
    worker: JoinHandle<()>,
}

impl<T: Send + 'static> Baseline<T> {
    /// Spawns the worker on the current runtime: it awaits `call(event)` for each event, in order.
    pub fn spawn<F, Fut>(mut call: F) -> Self
    where
        F: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (sender, mut events) = mpsc::unbounded_channel();
        let worker = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                call(event).await;
            }
        });
        Baseline { sender, worker }
    }

    /// Queues an event for the worker; fails only if the worker is gone (it panicked).
    pub fn send(&self, event: T) -> Result<(), String> {
        self.sender
            .send(event)
            .map_err(|_| "the baseline's worker has stopped".to_owned())
    }

    /// Closes the channel and returns once the worker handled every queued event.
    pub async fn finish(self) -> Result<(), String> {
        drop(self.sender);
        self.worker
            .await
            .map_err(|error| format!("the baseline's worker failed: {error}"))
    }
}
