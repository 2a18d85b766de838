//! The [`EventEmitterBackend`] trait: where emitted events wait and who runs their listeners.

pub(crate) mod memory;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use crate::context::{EmitId, EventMeta};
use crate::emitter::{Emitter, PendingToken};
use crate::error::{BackendError, Failure, ListenerError};
use crate::event::Payload;
use crate::listener::{BoxFuture, Delivery};

/// A queue of emitted events and the machinery that hands them to listeners: the extension point
/// of the emitter (Litestar's `BaseEventEmitterBackend`).
///
/// The emitter calls [`start`](Self::start) once, then [`enqueue`](Self::enqueue) for every emit
/// that has listeners, then [`shutdown`](Self::shutdown) once everything enqueued has been
/// delivered. A backend hands each envelope to [`Dispatcher::dispatch`], which runs the listeners;
/// when and where it does so is the backend's business.
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
    pub(crate) event_id: &'static str,
    pub(crate) emit_id: EmitId,
    pub(crate) emitted_at: SystemTime,
    pub(crate) pending: PendingToken,
}

impl Envelope {
    /// The id of the event, for example `"user_created"`.
    pub fn event_id(&self) -> &'static str {
        self.event_id
    }

    /// The id of this emit.
    pub fn emit_id(&self) -> EmitId {
        self.emit_id
    }

    /// When the event was emitted.
    pub fn emitted_at(&self) -> SystemTime {
        self.emitted_at
    }

    /// The event, if it is an `E`.
    pub fn event<E: crate::Event>(&self) -> Option<&E> {
        self.payload.downcast_ref::<E>()
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("event_id", &self.event_id)
            .field("emit_id", &self.emit_id)
            .field("emitted_at", &self.emitted_at)
            .finish_non_exhaustive()
    }
}

/// Runs the listeners of an envelope: what a backend is given at start.
#[derive(Clone)]
pub struct Dispatcher {
    emitter: Emitter,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub(crate) fn new(emitter: Emitter, runtime: tokio::runtime::Handle) -> Self {
        Self { emitter, runtime }
    }

    /// Starts every listener of the envelope, each as its own task on the emitter's runtime, and
    /// returns at once. Listeners run concurrently; a listener's error or panic is logged, handed
    /// to the error hook, and affects nothing else.
    pub fn dispatch(&self, envelope: Envelope) {
        let Envelope {
            payload,
            event,
            event_id,
            emit_id,
            emitted_at,
            mut pending,
        } = envelope;
        let Some(entry) = self.emitter.table().event(event) else {
            return;
        };
        for listener in &entry.listeners {
            let delivery = Delivery {
                payload: Arc::clone(&payload),
                meta: EventMeta {
                    event_id,
                    emit_id,
                    emitted_at,
                    attempt: 1,
                    listener: listener.name,
                },
                emitter: self.emitter.clone(),
            };
            let run = (listener.call)(delivery);
            let emitter = self.emitter.clone();
            let token = pending.take_one();
            let name = listener.name;
            self.runtime.spawn(async move {
                if let Err(failure) = CatchUnwind(run).await {
                    emitter.report(ListenerError {
                        listener: name,
                        event_id,
                        emit_id,
                        attempt: 1,
                        failure,
                    });
                }
                drop(token);
            });
        }
    }
}

/// Turns a panic while polling a listener's future into a [`Failure::Panic`].
struct CatchUnwind(BoxFuture);

impl Future for CatchUnwind {
    type Output = Result<(), Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(Failure::from_panic(payload))),
        }
    }
}
