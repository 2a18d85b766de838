//! The [`EventEmitterBackend`] trait: where emitted events wait and who runs their listeners.

pub(crate) mod memory;

use std::future::Future;
use std::pin::Pin;

use crate::delivery::Dispatcher;
use crate::envelope::Envelope;
use crate::error::BackendError;

/// A queue of emitted events and the machinery that hands them to listeners: the extension point
/// of the emitter (Litestar's `BaseEventEmitterBackend`).
///
/// The emitter calls [`start`](Self::start) once, then [`enqueue`](Self::enqueue) for every emit
/// that has listeners, then [`shutdown`](Self::shutdown) once everything enqueued has been
/// delivered. A backend hands each envelope to [`Dispatcher::dispatch`], which queues it for the
/// emitter's scheduler; when and from where it does so is the backend's business.
///
/// # Contract
///
/// - `enqueue` is called from any thread, inside or outside a tokio runtime, and must not block.
/// - Every envelope taken by `enqueue` is eventually dispatched or dropped; dropping one counts its
///   deliveries as finished, so that shutdown never waits for it.
/// - `shutdown` stops the backend's workers; it is called after the queue has drained.
///
/// [`SimpleEventEmitter`](crate::SimpleEventEmitter) is the in-memory default; the `custom_backend`
/// example shows a complete implementation.
pub trait EventEmitterBackend: Send + Sync + 'static {
    /// Starts the backend's workers. Called once, inside the tokio runtime that will run listeners.
    fn start(
        &self,
        dispatcher: Dispatcher,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Queues an envelope for delivery, without blocking.
    ///
    /// An envelope may be delayed ([`Envelope::run_at`]) and may carry an idempotency key
    /// ([`Envelope::idempotency_key`]); a backend honours both. [`Dispatcher::dispatch`] holds
    /// a delayed envelope until its time, so a backend that dispatches at once honours delays.
    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError>;

    /// Whether the backend stores events outside the process. A durable backend reports when an
    /// envelope is stored ([`Envelope::stored`]), and [`Emitter::emit_async`] waits for that.
    fn is_durable(&self) -> bool {
        false
    }

    /// Stops the backend. Called once, after every enqueued envelope was delivered.
    fn shutdown(&self) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// The object-safe twin of [`EventEmitterBackend`], implemented for every backend, so that the
/// emitter can hold a backend chosen at run time.
pub trait DynEventEmitterBackend: Send + Sync + 'static {
    /// See [`EventEmitterBackend::start`].
    fn start_dyn(
        &self,
        dispatcher: Dispatcher,
    ) -> Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + '_>>;

    /// See [`EventEmitterBackend::enqueue`].
    fn enqueue_dyn(&self, envelope: Envelope) -> Result<(), BackendError>;

    /// See [`EventEmitterBackend::shutdown`].
    fn shutdown_dyn(&self) -> Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + '_>>;

    /// See [`EventEmitterBackend::is_durable`].
    fn is_durable_dyn(&self) -> bool;
}

impl<B: EventEmitterBackend> DynEventEmitterBackend for B {
    fn start_dyn(
        &self,
        dispatcher: Dispatcher,
    ) -> Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + '_>> {
        Box::pin(self.start(dispatcher))
    }

    fn enqueue_dyn(&self, envelope: Envelope) -> Result<(), BackendError> {
        self.enqueue(envelope)
    }

    fn shutdown_dyn(&self) -> Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + '_>> {
        Box::pin(self.shutdown())
    }

    fn is_durable_dyn(&self) -> bool {
        self.is_durable()
    }
}
