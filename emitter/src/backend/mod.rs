//! The [`EventEmitterBackend`] trait: where emitted events wait and who runs their listeners.

pub(crate) mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::context::EmitId;
use crate::delivery::{spawn_scheduler, Control, SchedulerHandle, Unfinished};
use crate::emitter::{Emitter, WeakEmitter};
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
    ///
    /// An envelope may be delayed ([`Envelope::run_at`]) and may carry an idempotency key
    /// ([`Envelope::idempotency_key`]); a backend honours both.
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

/// One emitted event on its way to its listeners.
pub struct Envelope {
    pub(crate) payload: Payload,
    pub(crate) event: usize,
    /// What [`EmitOptions`](crate::EmitOptions) asked for; boxed, so that a plain emit carries
    /// one null pointer.
    pub(crate) options: Option<Box<Options>>,
}

/// The options of an emit that has some.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) run_at: Option<SystemTime>,
    pub(crate) key: Option<String>,
    /// Told when a durable backend has stored the event (`emit_async` waits on it).
    pub(crate) stored: Option<oneshot::Sender<Result<(), BackendError>>>,
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

    /// When the event is due: `None` for now, a time for a delayed emit
    /// ([`Emitter::emit_after`], [`Emitter::emit_at`]).
    pub fn run_at(&self) -> Option<SystemTime> {
        self.options.as_ref().and_then(|options| options.run_at)
    }

    /// The emit's idempotency key, if it has one: a backend drops an emit whose key it has seen.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.options
            .as_ref()
            .and_then(|options| options.key.as_deref())
    }

    /// Tells whoever waits on this emit (an [`Emitter::emit_async`] call) that the event was
    /// stored, or why it could not be, and drops the envelope. Durable backends call it once the
    /// event is safely stored; dropping an envelope without calling it reports it as lost.
    pub fn stored(mut self, result: Result<(), BackendError>) {
        if let Some(waiter) = self
            .options
            .as_mut()
            .and_then(|options| options.stored.take())
        {
            let _ = waiter.send(result);
        }
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
    /// Weak: the emitter holds its dispatcher.
    emitter: WeakEmitter,
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
                emitter: emitter.downgrade(),
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

    /// Drops an envelope that will not be delivered (a duplicate emit, say), taking its
    /// deliveries off the queue.
    pub fn drop_envelope(&self, envelope: Envelope) {
        self.unqueue(&envelope);
    }

    /// Takes an envelope's deliveries off the emitter's queue depth: they were dropped, or are
    /// now a durable store's business.
    pub(crate) fn unqueue(&self, envelope: &Envelope) {
        self.inner
            .lifecycle
            .unqueue(self.inner.table.listener_count(envelope.event));
    }

    pub(crate) fn table(&self) -> &Arc<EventTable> {
        &self.inner.table
    }

    /// The emitter's handle for listeners, unless the emitter is gone.
    pub(crate) fn emitter(&self) -> Option<Arc<Emitter>> {
        self.inner.emitter.upgrade()
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
