//! The [`Emitter`] handle and its builder: emitting, lifecycle, shutdown.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::backend::memory::SimpleEventEmitter;
use crate::backend::{Dispatcher, DynEventEmitterBackend, Envelope, EventEmitterBackend};
use crate::context::EmitId;
use crate::error::{BackendError, EmitError, ListenerError, StartError};
use crate::event::{Event, Payload};
use crate::listener::{self, ListenerRegistration};
use crate::table::EventTable;

/// A function that receives every listener failure, after it was logged.
pub type ErrorHook = Arc<dyn Fn(&ListenerError) + Send + Sync + 'static>;

/// What [`Emitter::emit`] does with an event that no listener listens to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoListenersPolicy {
    /// Accept the event and drop it silently (the default).
    #[default]
    Ignore,
    /// Accept the event, drop it, and log a warning through `tracing`.
    Warn,
    /// Refuse the event with [`EmitError::NoListeners`].
    Error,
}

/// A handle to an event emitter: cheap to clone, usable from any thread.
///
/// Build one with [`Emitter::builder`]. Emitting does not wait for listeners: the event is queued
/// and [`emit`](Self::emit) returns its [`EmitId`] at once. [`shutdown`](Self::shutdown) waits
/// until every queued event has been delivered.
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
}

struct Shared {
    table: EventTable,
    states: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    backend: Box<dyn DynEventEmitterBackend>,
    no_listeners: NoListenersPolicy,
    error_hook: Option<ErrorHook>,
    lifecycle: Arc<Lifecycle>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("phase", &self.shared.lifecycle.phase())
            .field("no_listeners", &self.shared.no_listeners)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// A builder with every registered listener, the in-memory backend and default policies.
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// Emits an event: queues it for every listener of its type and returns at once.
    ///
    /// Never blocks, and works from any thread, inside or outside a tokio runtime. The
    /// [`emit!`](crate::emit!) macro builds the event and calls this.
    pub fn emit<E: Event>(&self, event: E) -> Result<EmitId, EmitError> {
        let shared = &*self.shared;
        match shared.lifecycle.phase() {
            Phase::Built => return Err(EmitError::NotStarted),
            Phase::Closed => return Err(EmitError::ShutDown),
            Phase::Running | Phase::Draining => {}
        }
        let emit_id = EmitId::next();
        let entry = shared.table.index_of(TypeId::of::<E>());
        let Some((index, listeners)) = entry.filter(|&(_, listeners)| listeners > 0) else {
            return match shared.no_listeners {
                NoListenersPolicy::Ignore => Ok(emit_id),
                NoListenersPolicy::Warn => {
                    tracing::warn!(event_id = E::ID, %emit_id, "no listener listens to this event; it was dropped");
                    Ok(emit_id)
                }
                NoListenersPolicy::Error => Err(EmitError::NoListeners { event_id: E::ID }),
            };
        };
        let pending =
            PendingToken::begin(&shared.lifecycle, listeners).ok_or(EmitError::ShutDown)?;
        let envelope = Envelope {
            payload: Arc::new(event) as Payload,
            event: index,
            event_id: E::ID,
            emit_id,
            emitted_at: SystemTime::now(),
            pending,
        };
        shared
            .backend
            .enqueue_dyn(envelope)
            .map_err(|source| EmitError::Backend {
                event_id: E::ID,
                source,
            })?;
        Ok(emit_id)
    }

    /// Starts the backend. [`EmitterBuilder::start`] builds and starts in one call; use this
    /// with [`EmitterBuilder::build`] when the handle must exist before the runtime is ready.
    pub async fn start(&self) -> Result<(), StartError> {
        let lifecycle = &self.shared.lifecycle;
        if let Err(phase) = lifecycle.transition(Phase::Built, Phase::Running) {
            return Err(match phase {
                Phase::Running | Phase::Draining => StartError::AlreadyStarted,
                Phase::Built | Phase::Closed => StartError::ShutDown,
            });
        }
        let dispatcher = Dispatcher::new(self.clone(), tokio::runtime::Handle::current());
        if let Err(error) = self.shared.backend.start_dyn(dispatcher).await {
            lifecycle.phase.store(Phase::Built as u8, Ordering::SeqCst);
            return Err(StartError::Backend(error));
        }
        Ok(())
    }

    /// Stops accepting events once everything emitted has been delivered, then stops the backend.
    ///
    /// Events emitted while draining, including those that listeners emit, are accepted and
    /// delivered too; once the queue is empty and no listener is running, later emits fail with
    /// [`EmitError::ShutDown`]. Calling it again after it returned is a no-op.
    pub async fn shutdown(&self) -> Result<(), BackendError> {
        let lifecycle = &self.shared.lifecycle;
        if lifecycle.transition(Phase::Built, Phase::Closed).is_ok() {
            lifecycle.close_when_idle().await;
            return Ok(());
        }
        let _ = lifecycle.transition(Phase::Running, Phase::Draining);
        lifecycle.close_when_idle().await;
        lifecycle.phase.store(Phase::Closed as u8, Ordering::SeqCst);
        if lifecycle.backend_stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.shared.backend.shutdown_dyn().await
    }

    /// The event table: which listeners run for which event.
    pub fn table(&self) -> &EventTable {
        &self.shared.table
    }

    /// Whether the emitter is started and has not finished shutting down.
    pub fn is_running(&self) -> bool {
        matches!(
            self.shared.lifecycle.phase(),
            Phase::Running | Phase::Draining
        )
    }

    pub(crate) fn state<T: Clone + 'static>(&self) -> Option<T> {
        self.shared
            .states
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }

    pub(crate) fn report(&self, error: ListenerError) {
        tracing::error!(
            listener = error.listener,
            event_id = error.event_id,
            emit_id = %error.emit_id,
            attempt = error.attempt,
            "listener failed: {}",
            error.failure
        );
        if let Some(hook) = &self.shared.error_hook {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&error))).is_err() {
                tracing::error!(listener = error.listener, "the error hook panicked");
            }
        }
    }
}

/// Configures an [`Emitter`]: which listeners, which backend, which policies, which shared state.
#[must_use = "a builder does nothing until `start` or `build` is called"]
#[derive(Default)]
pub struct EmitterBuilder {
    listeners: Option<Vec<&'static ListenerRegistration>>,
    states: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    backend: Option<Box<dyn DynEventEmitterBackend>>,
    no_listeners: NoListenersPolicy,
    error_hook: Option<ErrorHook>,
    expected: Vec<String>,
}

impl std::fmt::Debug for EmitterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmitterBuilder")
            .field(
                "listeners",
                &self
                    .listeners
                    .as_ref()
                    .map(|listeners| listeners.iter().map(|l| l.name).collect::<Vec<_>>()),
            )
            .field("no_listeners", &self.no_listeners)
            .finish_non_exhaustive()
    }
}

impl EmitterBuilder {
    /// Runs only these listeners instead of every registered one (the default). Calls add up.
    ///
    /// Name them with [`listeners!`](crate::listeners!): `.listeners(listeners![send_email])`.
    /// Tests use this to run a listener alone; a binary with several emitters uses it to give
    /// each its own listeners.
    pub fn listeners(
        mut self,
        listeners: impl IntoIterator<Item = &'static ListenerRegistration>,
    ) -> Self {
        self.listeners
            .get_or_insert_with(Vec::new)
            .extend(listeners);
        self
    }

    /// Provides shared state: a listener parameter `State<T>` receives a clone of `value`.
    /// A second value of the same type replaces the first.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(TypeId::of::<T>(), Box::new(value));
        self
    }

    /// Uses another backend than the in-memory [`SimpleEventEmitter`].
    pub fn backend(mut self, backend: impl EventEmitterBackend) -> Self {
        self.backend = Some(Box::new(backend));
        self
    }

    /// What emitting an event without listeners does; [`NoListenersPolicy::Ignore`] by default.
    pub fn on_no_listeners(mut self, policy: NoListenersPolicy) -> Self {
        self.no_listeners = policy;
        self
    }

    /// Calls `hook` with every listener failure (error or panic), after it was logged.
    /// A panic in the hook is caught and logged.
    pub fn on_error(mut self, hook: impl Fn(&ListenerError) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }

    /// Makes start fail with [`StartError::MissingListener`] unless a listener of this name is
    /// registered. Use it for listeners defined in other crates: the linker drops the
    /// registrations of a crate the binary never uses, and this turns that silence into an error.
    pub fn expect_listener(mut self, name: impl Into<String>) -> Self {
        self.expected.push(name.into());
        self
    }

    /// Builds the event table and checks it, without starting: emits fail with
    /// [`EmitError::NotStarted`] until [`Emitter::start`] is called.
    pub fn build(self) -> Result<Emitter, StartError> {
        let explicit = self.listeners.is_some();
        let listeners = self
            .listeners
            .unwrap_or_else(|| listener::registered().collect());
        if let Some(name) = self.expected.into_iter().find(|name| {
            !listeners
                .iter()
                .any(|listener| listener.name == name.as_str())
        }) {
            return Err(StartError::MissingListener { name });
        }
        let provided: HashSet<TypeId> = self.states.keys().copied().collect();
        let table = EventTable::build(&listeners, &provided)?;
        if table.is_empty() && !explicit {
            tracing::warn!(
                "no listener is registered: if your listeners live in another crate, name that crate \
                 once in the binary (`use that_crate as _;`), because the linker drops the \
                 registrations of crates that are never used"
            );
        }
        Ok(Emitter {
            shared: Arc::new(Shared {
                table,
                states: self.states,
                backend: self
                    .backend
                    .unwrap_or_else(|| Box::new(SimpleEventEmitter::new())),
                no_listeners: self.no_listeners,
                error_hook: self.error_hook,
                lifecycle: Arc::new(Lifecycle::default()),
            }),
        })
    }

    /// Builds the table, checks it and starts the backend.
    pub async fn start(self) -> Result<Emitter, StartError> {
        let emitter = self.build()?;
        emitter.start().await?;
        Ok(emitter)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Built = 0,
    Running = 1,
    Draining = 2,
    Closed = 3,
}

/// The emitter's phase and its count of unfinished deliveries.
///
/// `pending` packs the count with a `CLOSED` bit, so that "idle, so close" is one
/// compare-and-swap and an emit racing with it either lands before the close or sees it.
#[derive(Default)]
pub(crate) struct Lifecycle {
    phase: AtomicU8,
    pending: AtomicU64,
    idle: Notify,
    backend_stopped: AtomicBool,
}

const CLOSED: u64 = 1 << 63;

impl Lifecycle {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Built,
            1 => Phase::Running,
            2 => Phase::Draining,
            _ => Phase::Closed,
        }
    }

    fn transition(&self, from: Phase, to: Phase) -> Result<(), Phase> {
        self.phase
            .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst)
            .map(|_| ())
            .map_err(|_| self.phase())
    }

    async fn close_when_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            match self
                .pending
                .compare_exchange(0, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return,
                Err(current) if current & CLOSED != 0 => return,
                Err(_) => idle.await,
            }
        }
    }

    fn finish(&self, deliveries: u64) {
        if deliveries == 0 {
            return;
        }
        let before = self.pending.fetch_sub(deliveries, Ordering::SeqCst);
        if before & !CLOSED == deliveries {
            self.idle.notify_waiters();
        }
    }
}

/// Deliveries not yet finished, counted down when dropped: an envelope lost by a backend cannot
/// make shutdown wait forever.
pub(crate) struct PendingToken {
    lifecycle: Arc<Lifecycle>,
    deliveries: u64,
}

impl PendingToken {
    fn begin(lifecycle: &Arc<Lifecycle>, deliveries: usize) -> Option<Self> {
        let deliveries = deliveries as u64;
        let before = lifecycle.pending.fetch_add(deliveries, Ordering::SeqCst);
        let token = PendingToken {
            lifecycle: Arc::clone(lifecycle),
            deliveries,
        };
        if before & CLOSED != 0 {
            return None;
        }
        Some(token)
    }

    /// Splits off the count of one delivery.
    pub(crate) fn take_one(&mut self) -> PendingToken {
        let one = self.deliveries.min(1);
        self.deliveries -= one;
        PendingToken {
            lifecycle: Arc::clone(&self.lifecycle),
            deliveries: one,
        }
    }
}

impl Drop for PendingToken {
    fn drop(&mut self) {
        self.lifecycle.finish(self.deliveries);
    }
}
