//! The [`EventEmitterBackend`] trait: where emitted events wait and who runs their listeners.

pub(crate) mod memory;

use std::future::Future;
use std::pin::Pin;

use crate::delivery::Dispatcher;
use crate::envelope::Envelope;
use crate::error::BackendError;
use crate::report::UnfinishedDelivery;

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
    /// envelope is stored ([`Envelope::stored`]), and [`Emitter::emit_async`](crate::Emitter::emit_async) waits for that.
    fn is_durable(&self) -> bool {
        false
    }

    /// The store transaction this backend runs listeners in, for those that take one
    /// (`tx: &PgTx`, `tx: &SqliteTx`). The default opens none: [`Emitter::start`](crate::Emitter::start)
    /// then refuses listeners that take one.
    fn transaction(&self) -> Option<crate::durable::TxKind> {
        None
    }

    /// Stops the backend. Called once, after every enqueued envelope was handed over (for a
    /// durable backend: stored), or after the shutdown deadline passed; a durable backend lets
    /// the deliveries it runs finish. When the deadline passes while it runs, the emitter drops
    /// it and calls [`abort`](Self::abort).
    fn shutdown(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Stops the backend at once, because the shutdown deadline passed: cancels what it runs,
    /// gives back what it holds (a durable backend releases the leases of the deliveries it
    /// cancels, so that another worker takes them at once), and names both for the
    /// [`ShutdownReport`](crate::ShutdownReport). Called at most once, after a `shutdown` that
    /// did not finish in time (or was not started). The default names nothing.
    fn abort(&self) -> impl Future<Output = Vec<UnfinishedDelivery>> + Send {
        std::future::ready(Vec::new())
    }

    /// Waits until every envelope this backend took has been handled by all its listeners
    /// (delivered, or failed for good). [`Emitter::wait_idle`](crate::Emitter::wait_idle) calls
    /// it once the backend has let go of every envelope it took. The default returns at once:
    /// a backend that dispatches its envelopes is idle once the scheduler is, which the emitter
    /// already waits for. A durable backend waits for its store.
    fn wait_idle(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
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

    /// See [`EventEmitterBackend::transaction`].
    fn transaction_dyn(&self) -> Option<crate::durable::TxKind>;

    /// The backend's type name, for errors that name it.
    fn type_name_dyn(&self) -> &'static str;

    /// See [`EventEmitterBackend::abort`].
    fn abort_dyn(&self) -> Pin<Box<dyn Future<Output = Vec<UnfinishedDelivery>> + Send + '_>>;

    /// See [`EventEmitterBackend::wait_idle`].
    fn wait_idle_dyn(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
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

    fn transaction_dyn(&self) -> Option<crate::durable::TxKind> {
        self.transaction()
    }

    fn type_name_dyn(&self) -> &'static str {
        std::any::type_name::<B>()
    }

    fn abort_dyn(&self) -> Pin<Box<dyn Future<Output = Vec<UnfinishedDelivery>> + Send + '_>> {
        Box::pin(self.abort())
    }

    fn wait_idle_dyn(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.wait_idle())
    }
}
