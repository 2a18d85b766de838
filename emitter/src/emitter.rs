//! The [`Emitter`] handle and its builder: emitting, lifecycle, shutdown.

use std::any::{Any, TypeId};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use crate::backend::memory::SimpleEventEmitter;
use crate::backend::{Dispatcher, DynEventEmitterBackend, Envelope, EventEmitterBackend, Options};
use crate::context::{EmitId, EventMeta, State};
use crate::error::{BackendError, EmitError, Failure, ListenerError, RejectedEvent, StartError};
use crate::event::{Emitted, Event, Header, Payload};
use crate::lifecycle::{EventToken, Lifecycle, Phase, Refusal, CLOSED};
use crate::listener::{self, ListenerRegistration};
use crate::policy::{Capacity, DeliveryPolicy};
use crate::report::ShutdownReport;
use crate::schedule::Schedule;
use crate::stats::{export, Metrics};
use crate::table::{EventTable, TypeMap};
use crate::testing::Capture;

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
///
/// The handle a listener receives as its `Emitter` parameter is marked as a listener's: its emits
/// are still accepted while the emitter drains at shutdown, so that follow-up events are
/// delivered too, whereas emits through other handles are refused from the moment shutdown
/// begins (or shutdown could never finish while producers keep emitting).
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
    from_listener: bool,
}

struct Shared {
    table: Arc<EventTable>,
    states: TypeMap<Box<dyn Any + Send + Sync>>,
    backend: Box<dyn DynEventEmitterBackend>,
    dispatcher: OnceLock<Dispatcher>,
    no_listeners: NoListenersPolicy,
    error_hook: Option<ErrorHook>,
    propagate_span: bool,
    capture: Option<Capture>,
    emitted: AtomicU64,
    rejected: AtomicU64,
    lifecycle: Arc<Lifecycle>,
    schedules: Vec<Schedule>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("phase", &self.shared.lifecycle.phase())
            .field("from_listener", &self.from_listener)
            .field("no_listeners", &self.shared.no_listeners)
            .field("propagate_span", &self.shared.propagate_span)
            .finish_non_exhaustive()
    }
}

/// How to emit an event besides now and once: a delay, an idempotency key. Give it to
/// [`Emitter::emit_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct EmitOptions {
    pub(crate) run_at: Option<SystemTime>,
    pub(crate) key: Option<String>,
}

impl EmitOptions {
    /// No delay, no key: a plain emit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers the event at `when` rather than now (at once if `when` has passed).
    pub fn at(mut self, when: SystemTime) -> Self {
        self.run_at = Some(when);
        self
    }

    /// Delivers the event `delay` from now.
    pub fn after(self, delay: Duration) -> Self {
        self.at(SystemTime::now() + delay)
    }

    /// Deduplicates the emit: a second emit with the same key, while the backend remembers the
    /// first, is dropped (it returns `Ok` and is never delivered). Use a key that names the fact,
    /// such as `"order-42-paid"`, so that a retried request does not notify twice. Durable
    /// backends remember keys for `DurableConfig::key_retention` (7 days by default); the
    /// in-memory backend for 24 hours (`SimpleEventEmitter::with_key_retention`).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    fn into_envelope_options(self) -> Option<Box<Options>> {
        (self.run_at.is_some() || self.key.is_some()).then(|| {
            Box::new(Options {
                run_at: self.run_at,
                key: self.key,
                stored: None,
            })
        })
    }
}

/// A handle that does not keep the emitter alive, for what the emitter itself holds.
#[derive(Clone)]
pub(crate) struct WeakEmitter(Weak<Shared>);

impl WeakEmitter {
    /// The handle given to listeners, unless the emitter is gone.
    pub(crate) fn upgrade(&self) -> Option<Arc<Emitter>> {
        self.0.upgrade().map(|shared| {
            Arc::new(Emitter {
                shared,
                from_listener: true,
            })
        })
    }
}

/// Where an accepted event goes: the entry of its type and how many listeners it has.
struct Route {
    event: usize,
    listeners: usize,
}

impl Emitter {
    /// A builder with every registered listener, the in-memory backend and default policies.
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// Emits an event: queues it for every listener of its type and returns at once.
    ///
    /// Never blocks, and works from any thread, inside or outside a tokio runtime. When the
    /// emitter is full (see [`EmitterBuilder::capacity`]) the event is refused with
    /// [`EmitError::Full`], which hands it back; [`emit_async`](Self::emit_async) waits for room
    /// instead. The [`emit!`](crate::emit!) macro builds the event and calls this.
    ///
    /// On a durable backend the event is stored in the background a moment later (in a batch
    /// with others); [`emit_async`](Self::emit_async) returns only once it is stored.
    pub fn emit<E: Event>(&self, event: E) -> Result<EmitId, EmitError> {
        self.emit_inner(event, None)
    }

    /// Emits an event with options: a delay, an idempotency key.
    ///
    /// ```
    /// # use emitter::{EmitOptions, Emitter, Event};
    /// # use std::time::Duration;
    /// # #[derive(Event)] pub struct OrderPaid { pub order: u64 }
    /// # async fn run(emitter: Emitter) -> Result<(), emitter::EmitError> {
    /// emitter.emit_with(
    ///     OrderPaid { order: 42 },
    ///     EmitOptions::new()
    ///         .after(Duration::from_secs(60))
    ///         .idempotency_key("order-42-paid"),
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn emit_with<E: Event>(&self, event: E, options: EmitOptions) -> Result<EmitId, EmitError> {
        self.emit_inner(event, options.into_envelope_options())
    }

    /// Emits an event to be delivered `delay` from now.
    pub fn emit_after<E: Event>(&self, delay: Duration, event: E) -> Result<EmitId, EmitError> {
        self.emit_with(event, EmitOptions::new().after(delay))
    }

    /// Emits an event to be delivered at `when` (at once if `when` has passed).
    pub fn emit_at<E: Event>(&self, when: SystemTime, event: E) -> Result<EmitId, EmitError> {
        self.emit_with(event, EmitOptions::new().at(when))
    }

    fn emit_inner<E: Event>(
        &self,
        event: E,
        options: Option<Box<Options>>,
    ) -> Result<EmitId, EmitError> {
        let Some(route) = self.route::<E>()? else {
            return self.accept_without_listeners::<E>();
        };
        match EventToken::begin(&self.shared.lifecycle) {
            Ok(token) => self.enqueue(event, route, token, options),
            Err(Refusal::Full) => Err(self.reject(event)),
            Err(Refusal::Closed) => Err(EmitError::ShutDown),
        }
    }

    /// Emits an event, waiting for room when the emitter is full, and, on a durable backend,
    /// until the event is stored: once it returns `Ok`, a crash of this process loses nothing.
    /// Otherwise like [`emit`](Self::emit).
    pub async fn emit_async<E: Event>(&self, event: E) -> Result<EmitId, EmitError> {
        self.emit_async_with(event, EmitOptions::new()).await
    }

    /// [`emit_async`](Self::emit_async) with options, as [`emit_with`](Self::emit_with) takes.
    pub async fn emit_async_with<E: Event>(
        &self,
        event: E,
        options: EmitOptions,
    ) -> Result<EmitId, EmitError> {
        let Some(route) = self.route::<E>()? else {
            return self.accept_without_listeners::<E>();
        };
        let mut options = options.into_envelope_options();
        let stored = if self.shared.backend.is_durable_dyn() {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            options.get_or_insert_with(Box::default).stored = Some(sender);
            Some(receiver)
        } else {
            None
        };
        let lifecycle = &self.shared.lifecycle;
        let emit_id = loop {
            let room = lifecycle.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match EventToken::begin(lifecycle) {
                Ok(token) => break self.enqueue(event, route, token, options)?,
                Err(Refusal::Closed) => return Err(EmitError::ShutDown),
                Err(Refusal::Full) => room.await,
            }
        };
        match stored {
            None => Ok(emit_id),
            Some(receiver) => match receiver.await {
                Ok(Ok(())) => Ok(emit_id),
                Ok(Err(source)) => Err(EmitError::Backend {
                    event_id: E::ID,
                    source,
                }),
                Err(_) => Err(EmitError::Backend {
                    event_id: E::ID,
                    source: BackendError::new(
                        "the backend dropped the event before storing it (it was shut down)",
                    ),
                }),
            },
        }
    }

    /// Checks the phase and finds the event's listeners; `None` when it has none.
    fn route<E: Event>(&self) -> Result<Option<Route>, EmitError> {
        match self.shared.lifecycle.phase() {
            Phase::Built => return Err(EmitError::NotStarted),
            Phase::Closed => return Err(EmitError::ShutDown),
            Phase::Draining if !self.from_listener => return Err(EmitError::ShutDown),
            Phase::Running | Phase::Draining => {}
        }
        Ok(self
            .shared
            .table
            .index_of(TypeId::of::<E>())
            .filter(|&(_, listeners)| listeners > 0)
            .map(|(event, listeners)| Route { event, listeners }))
    }

    fn accept_without_listeners<E: Event>(&self) -> Result<EmitId, EmitError> {
        let emit_id = EmitId::next();
        match self.shared.no_listeners {
            NoListenersPolicy::Ignore => {}
            NoListenersPolicy::Warn => {
                tracing::warn!(event_id = E::ID, %emit_id, "no listener listens to this event; it was dropped");
            }
            NoListenersPolicy::Error => return Err(EmitError::NoListeners { event_id: E::ID }),
        }
        self.count_emitted(E::ID);
        Ok(emit_id)
    }

    fn reject<E: Event>(&self, event: E) -> EmitError {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        export::counter("emitter_rejected_total", E::ID, None);
        EmitError::Full(RejectedEvent::new(E::ID, event))
    }

    fn count_emitted(&self, event_id: &'static str) {
        self.shared.emitted.fetch_add(1, Ordering::Relaxed);
        export::counter("emitter_emitted_total", event_id, None);
    }

    fn enqueue<E: Event>(
        &self,
        event: E,
        route: Route,
        token: EventToken,
        options: Option<Box<Options>>,
    ) -> Result<EmitId, EmitError> {
        let shared = &*self.shared;
        let emit_id = EmitId::next();
        let recorded = shared
            .capture
            .as_ref()
            .map(|capture| (capture, Capture::json(&event)));
        let payload: Payload = Arc::new(Emitted {
            header: Header {
                event_id: E::ID,
                emit_id,
                emitted_at: SystemTime::now(),
                parent: shared
                    .propagate_span
                    .then(|| Box::new(tracing::Span::current())),
                _token: Some(token),
            },
            event,
        });
        let envelope = Envelope {
            payload,
            event: route.event,
            options,
        };
        let listeners = route.listeners as u64;
        shared.lifecycle.queue(listeners);
        if let Err(source) = shared.backend.enqueue_dyn(envelope) {
            shared.lifecycle.unqueue(listeners);
            return Err(match source.too_large() {
                Some((size, limit)) => EmitError::PayloadTooLarge {
                    event_id: E::ID,
                    size,
                    limit,
                },
                None => EmitError::Backend {
                    event_id: E::ID,
                    source,
                },
            });
        }
        if let Some((capture, json)) = recorded {
            capture.record_emit(E::ID, emit_id, json);
        }
        self.count_emitted(E::ID);
        Ok(emit_id)
    }

    /// Starts the backend. [`EmitterBuilder::start`] builds and starts in one call; use this
    /// with [`EmitterBuilder::build`] when the handle must exist before the runtime is ready.
    pub async fn start(&self) -> Result<(), StartError> {
        if let Some(listener) = self.shared.table.listener_needing_timer() {
            if !runtime_has_timer() {
                return Err(StartError::TimersDisabled { listener });
            }
        }
        let lifecycle = &self.shared.lifecycle;
        if let Err(phase) = lifecycle.transition(Phase::Built, Phase::Running) {
            return Err(match phase {
                Phase::Running | Phase::Draining => StartError::AlreadyStarted,
                Phase::Built | Phase::Closed => StartError::ShutDown,
            });
        }
        let dispatcher = self
            .shared
            .dispatcher
            .get_or_init(|| Dispatcher::start(self, &tokio::runtime::Handle::current()))
            .clone();
        if let Err(error) = self.shared.backend.start_dyn(dispatcher).await {
            lifecycle.phase.store(Phase::Built as u8, Ordering::SeqCst);
            return Err(StartError::Backend(error));
        }
        for schedule in &self.shared.schedules {
            tokio::spawn(crate::schedule::run(schedule.clone(), self.downgrade()));
        }
        Ok(())
    }

    /// Stops accepting events, delivers everything already accepted, then stops the backend,
    /// and reports what was delivered.
    ///
    /// From the moment it is called, emits fail with [`EmitError::ShutDown`], except those that
    /// listeners make through their `Emitter` parameter while the queue drains: those are
    /// accepted and delivered before it returns (Litestar loses them). A listener that never finishes makes this wait forever: use
    /// [`shutdown_timeout`](Self::shutdown_timeout) to bound the wait. Calling it again after it
    /// returned is a no-op.
    pub async fn shutdown(&self) -> Result<ShutdownReport, BackendError> {
        self.shutdown_inner(None).await
    }

    /// Like [`shutdown`](Self::shutdown), but stops waiting after `timeout`: deliveries still
    /// queued are dropped and deliveries still running are cancelled, and the report names them
    /// by event, listener and emit id. Never waits much longer than `timeout`, whatever the
    /// listeners do (a blocking `fn` listener's thread runs on, detached).
    pub async fn shutdown_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ShutdownReport, BackendError> {
        self.shutdown_inner(Some(timeout)).await
    }

    async fn shutdown_inner(
        &self,
        timeout: Option<Duration>,
    ) -> Result<ShutdownReport, BackendError> {
        let shared = &*self.shared;
        let lifecycle = &shared.lifecycle;
        if lifecycle.transition(Phase::Built, Phase::Closed).is_ok() {
            lifecycle.close_when_idle().await;
            return Ok(ShutdownReport::new(&shared.table, Vec::new(), 0));
        }
        let _ = lifecycle.transition(Phase::Running, Phase::Draining);
        let drained = match timeout {
            None => {
                lifecycle.close_when_idle().await;
                true
            }
            Some(timeout) => tokio::time::timeout(timeout, lifecycle.close_when_idle())
                .await
                .is_ok(),
        };
        let mut unfinished = Vec::new();
        let mut pending_events = 0;
        if !drained {
            pending_events = lifecycle.force_close();
            if let Some(dispatcher) = shared.dispatcher.get() {
                unfinished = dispatcher.cancel().await;
            }
        }
        lifecycle.phase.store(Phase::Closed as u8, Ordering::SeqCst);
        lifecycle.room.notify_waiters();
        if lifecycle.backend_stopped.swap(true, Ordering::SeqCst) {
            return Ok(ShutdownReport::new(
                &shared.table,
                unfinished,
                pending_events,
            ));
        }
        if let Some(dispatcher) = shared.dispatcher.get() {
            dispatcher.stop();
        }
        shared.backend.shutdown_dyn().await?;
        Ok(ShutdownReport::new(
            &shared.table,
            unfinished,
            pending_events,
        ))
    }

    /// Waits until every event emitted so far (and every event emitted meanwhile) has been
    /// handled by all its listeners, without shutting down. Tests use it instead of sleeping.
    pub async fn wait_idle(&self) {
        self.shared.lifecycle.wait_idle().await;
    }

    /// The event table: which listeners run for which event.
    pub fn table(&self) -> &EventTable {
        &self.shared.table
    }

    /// Whether emits through a producer's handle are accepted now.
    pub(crate) fn is_accepting(&self) -> bool {
        self.shared.lifecycle.phase() == Phase::Running
    }

    /// This handle as a producer's (not a listener's): refused once shutdown begins.
    pub(crate) fn as_producer(&self) -> Emitter {
        Emitter {
            shared: Arc::clone(&self.shared),
            from_listener: false,
        }
    }

    pub(crate) fn downgrade(&self) -> WeakEmitter {
        WeakEmitter(Arc::downgrade(&self.shared))
    }

    /// The handle given to listeners: its emits are accepted while draining.
    pub(crate) fn for_listeners(&self) -> Emitter {
        Emitter {
            shared: Arc::clone(&self.shared),
            from_listener: true,
        }
    }

    pub(crate) fn table_arc(&self) -> Arc<EventTable> {
        Arc::clone(&self.shared.table)
    }

    /// Counters of what this emitter did so far.
    pub fn metrics(&self) -> Metrics {
        let shared = &*self.shared;
        let mut metrics = Metrics {
            emitted: shared.emitted.load(Ordering::Relaxed),
            rejected: shared.rejected.load(Ordering::Relaxed),
            queued: shared.lifecycle.queued.load(Ordering::Relaxed),
            pending_events: shared.lifecycle.pending(),
            ..Metrics::default()
        };
        for entry in shared.table.events() {
            for listener in &entry.listeners {
                metrics.add(listener.stats.snapshot());
            }
        }
        metrics
    }

    /// Whether the emitter is started and has not finished shutting down.
    pub fn is_running(&self) -> bool {
        matches!(
            self.shared.lifecycle.phase(),
            Phase::Running | Phase::Draining
        )
    }

    pub(crate) fn state<T: 'static>(&self) -> Option<&State<T>> {
        self.shared
            .states
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<State<T>>())
    }

    pub(crate) fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.shared.lifecycle
    }

    pub(crate) fn observe_attempt(&self, meta: &EventMeta, result: &Result<(), Failure>) {
        if let Some(capture) = &self.shared.capture {
            capture.record_attempt(meta, result);
        }
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

/// Makes the linker's silent drop of another crate's registrations loud: no listener at all is a
/// warning, known events without listeners are listed, both with the fix.
fn report_missing_listeners(table: &EventTable) {
    const FIX: &str = "if listeners live in another crate, name that crate once in the binary \
                       (`use that_crate as _;`): the linker drops the registrations of crates \
                       that are never used";
    if table.is_empty() {
        tracing::warn!("no listener is registered: {FIX}");
        return;
    }
    let without: Vec<&str> = table.events_without_listeners().collect();
    if !without.is_empty() {
        tracing::info!(
            events = ?without,
            "events without listeners (emitting them follows the no-listeners policy): {FIX}"
        );
    }
}

/// Whether the current tokio runtime has a timer. Tokio panics when a sleep is polled on a
/// runtime built without one; better to learn that at start than at the first retry.
fn runtime_has_timer() -> bool {
    std::panic::catch_unwind(|| {
        let mut sleep = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let _ = std::future::Future::poll(sleep.as_mut(), &mut cx);
    })
    .is_ok()
}

/// Configures an [`Emitter`]: which listeners, which backend, which policies, which shared state.
#[must_use = "a builder does nothing until `start` or `build` is called"]
#[derive(Default)]
pub struct EmitterBuilder {
    listeners: Option<Vec<&'static ListenerRegistration>>,
    states: TypeMap<Box<dyn Any + Send + Sync>>,
    backend: Option<Box<dyn DynEventEmitterBackend>>,
    no_listeners: NoListenersPolicy,
    error_hook: Option<ErrorHook>,
    expected: Vec<String>,
    policy: DeliveryPolicy,
    capacity: Capacity,
    propagate_span: bool,
    capture: Option<Capture>,
    schedules: Vec<Schedule>,
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
            .field("policy", &self.policy)
            .field("capacity", &self.capacity)
            .field("propagate_span", &self.propagate_span)
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
        self.states
            .insert(TypeId::of::<T>(), Box::new(State(value)));
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

    /// Calls `hook` with every delivery that failed for good (an error, a panic or a timeout on
    /// its last attempt), after it was logged. A panic in the hook is caught and logged.
    pub fn on_error(mut self, hook: impl Fn(&ListenerError) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }

    /// The delivery policy of every listener that does not set its own in its attribute
    /// (default: [`DeliveryPolicy::default`], one attempt, no timeout, unlimited concurrency).
    pub fn delivery_policy(mut self, policy: DeliveryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How many events the emitter holds at once (default: [`Capacity::default`], 65,536).
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// Makes the tracing span current at `emit` the parent of the listeners' delivery spans, so
    /// a request's trace shows the side effects it caused (off by default: delivery spans are
    /// roots). Costs a span clone per emit.
    pub fn propagate_span(mut self, propagate: bool) -> Self {
        self.propagate_span = propagate;
        self
    }

    /// Emits an event on a cron timetable while the emitter runs: see [`Schedule`]. Calls add
    /// up.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    /// Records what is emitted and delivered in `capture`, for tests: see [`crate::testing`].
    pub fn capture(mut self, capture: &Capture) -> Self {
        self.capture = Some(capture.clone());
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
        let table = EventTable::build(&listeners, &provided, self.policy)?;
        if !explicit {
            report_missing_listeners(&table);
        }
        let capacity = match self.capacity {
            Capacity::Bounded(events) => (events as u64).clamp(1, CLOSED - 1),
            Capacity::Unbounded => CLOSED - 1,
        };
        Ok(Emitter {
            from_listener: false,
            shared: Arc::new(Shared {
                table: Arc::new(table),
                states: self.states,
                backend: self
                    .backend
                    .unwrap_or_else(|| Box::new(SimpleEventEmitter::new())),
                dispatcher: OnceLock::new(),
                no_listeners: self.no_listeners,
                error_hook: self.error_hook,
                propagate_span: self.propagate_span,
                capture: self.capture,
                emitted: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                lifecycle: Arc::new(Lifecycle {
                    capacity,
                    ..Lifecycle::default()
                }),
                schedules: self.schedules,
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
