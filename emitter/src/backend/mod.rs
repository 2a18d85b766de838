//! The [`EventEmitterBackend`] trait: where emitted events wait and who runs their listeners.

pub(crate) mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::context::EmitId;
use crate::delivery::{spawn_scheduler, Control, SchedulerHandle, Unfinished};
use crate::emitter::Emitter;
use crate::error::BackendError;
use crate::event::Payload;
use crate::lifecycle::Lifecycle;
use crate::table::EventTable;

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
    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError>;

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
}

/// One emitted event on its way to its listeners.
pub struct Envelope {
    pub(crate) payload: Payload,
    pub(crate) event: usize,
}

impl Envelope {
    /// The id of the event, for example `"user_created"`.
    pub fn event_id(&self) -> &'static str {
        self.payload.header.event_id
    }

    /// The id of this emit.
    pub fn emit_id(&self) -> EmitId {
        self.payload.header.emit_id
    }

    /// When the event was emitted.
    pub fn emitted_at(&self) -> SystemTime {
        self.payload.header.emitted_at
    }

    /// The event, if it is an `E`.
    pub fn event<E: crate::Event>(&self) -> Option<&E> {
        self.payload.event.downcast_ref::<E>()
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("event_id", &self.event_id())
            .field("emit_id", &self.emit_id())
            .field("emitted_at", &self.emitted_at())
            .finish_non_exhaustive()
    }
}

/// Hands envelopes to the emitter's scheduler: what a backend is given at start.
///
/// Cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<DispatcherInner>,
}

struct DispatcherInner {
    scheduler: SchedulerHandle,
    lifecycle: Arc<Lifecycle>,
    table: Arc<EventTable>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts the emitter's scheduler on `runtime`.
    pub(crate) fn start(emitter: &Emitter, runtime: &tokio::runtime::Handle) -> Self {
        Self {
            inner: Arc::new(DispatcherInner {
                scheduler: spawn_scheduler(emitter, runtime),
                lifecycle: Arc::clone(emitter.lifecycle()),
                table: emitter.table_arc(),
            }),
        }
    }

    /// Hands the envelope to the emitter's scheduler and returns at once; never blocks, from
    /// any thread.
    ///
    /// The scheduler takes envelopes in the order they were dispatched and starts each
    /// listener's delivery in that order, up to the listener's concurrency limit; each delivery
    /// runs through its attempts. A listener's error or panic is logged, retried per its policy,
    /// handed to the error hook when attempts run out, and affects nothing else.
    pub fn dispatch(&self, envelope: Envelope) {
        if let Err(refused) = self.inner.scheduler.envelopes.send(envelope) {
            // The scheduler has stopped (the emitter shut down): the event is dropped.
            self.inner
                .lifecycle
                .unqueue(self.inner.table.listener_count(refused.0.event));
        }
    }

    pub(crate) fn stop(&self) {
        let _ = self.inner.scheduler.control.send(Control::Stop);
    }

    /// Cancels the scheduler and collects what had not finished.
    pub(crate) async fn cancel(&self) -> Vec<Unfinished> {
        let (reply, receiver) = oneshot::channel();
        if self
            .inner
            .scheduler
            .control
            .send(Control::Cancel(reply))
            .is_err()
        {
            return Vec::new();
        }
        receiver.await.unwrap_or_default()
    }
}
