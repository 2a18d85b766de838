//! The [`EventEmitterBackend`] trait: where emitted events wait and who runs their listeners.

pub(crate) mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::context::EmitId;
use crate::delivery::{spawn_worker, Control, Job, Unfinished, WorkerHandle};
use crate::emitter::{Emitter, EventToken};
use crate::error::BackendError;
use crate::event::Payload;
use crate::table::EventTable;

/// A queue of emitted events and the machinery that hands them to listeners: the extension point
/// of the emitter (Litestar's `BaseEventEmitterBackend`).
///
/// The emitter calls [`start`](Self::start) once, then [`enqueue`](Self::enqueue) for every emit
/// that has listeners, then [`shutdown`](Self::shutdown) once everything enqueued has been
/// delivered. A backend hands each envelope to [`Dispatcher::dispatch`], which queues it for the
/// listeners' workers; when and from where it does so is the backend's business.
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
    pub(crate) parent: Option<tracing::Span>,
    pub(crate) token: EventToken,
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

/// Hands envelopes to the listeners' workers: what a backend is given at start.
///
/// Cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<DispatcherInner>,
}

struct DispatcherInner {
    table: Arc<EventTable>,
    workers: Vec<WorkerHandle>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("workers", &self.inner.workers.len())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts one worker per listener of the emitter's table on `runtime`.
    pub(crate) fn start(emitter: &Emitter, runtime: &tokio::runtime::Handle) -> Self {
        let table = emitter.table_arc();
        let workers = (0..table.listener_infos().len())
            .map(|listener| spawn_worker(emitter.clone(), listener, runtime))
            .collect();
        Self {
            inner: Arc::new(DispatcherInner { table, workers }),
        }
    }

    /// Queues a delivery of the envelope for each of its listeners and returns at once; never
    /// blocks, from any thread.
    ///
    /// Each listener has a worker that starts its deliveries in the order they were dispatched,
    /// as concurrent tasks up to the listener's concurrency limit, and runs each through its
    /// attempts. A listener's error or panic is logged, retried per its policy, handed to the
    /// error hook when attempts run out, and affects nothing else.
    pub fn dispatch(&self, envelope: Envelope) {
        let Envelope {
            payload,
            event,
            event_id,
            emit_id,
            emitted_at,
            parent,
            token,
        } = envelope;
        let Some(entry) = self.inner.table.event(event) else {
            return;
        };
        let token = Arc::new(token);
        for (slot, listener) in entry.listeners.iter().enumerate() {
            let Some(worker) = self.inner.workers.get(listener.listener) else {
                continue;
            };
            listener.stats.queued();
            let job = Job {
                event,
                slot,
                payload: Arc::clone(&payload),
                event_id,
                emit_id,
                emitted_at,
                parent: parent.clone(),
                _token: Arc::clone(&token),
            };
            if worker.jobs.send(job).is_err() {
                // The worker has stopped: the emitter is shut down and the job is dropped.
                listener.stats.unqueued();
            }
        }
    }

    pub(crate) fn stop(&self) {
        for worker in &self.inner.workers {
            let _ = worker.control.send(Control::Stop);
        }
    }

    /// Cancels every worker and collects what had not finished.
    pub(crate) async fn cancel(&self) -> Vec<Unfinished> {
        let mut replies = Vec::with_capacity(self.inner.workers.len());
        for worker in &self.inner.workers {
            let (reply, receiver) = oneshot::channel();
            if worker.control.send(Control::Cancel(reply)).is_ok() {
                replies.push(receiver);
            }
        }
        let mut unfinished = Vec::new();
        for reply in replies {
            if let Ok(mut part) = reply.await {
                unfinished.append(&mut part);
            }
        }
        unfinished
    }
}
