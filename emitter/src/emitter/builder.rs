//! [`EmitterBuilder`]: which listeners, which backend, which policies, which shared state.

use std::any::{Any, TypeId};
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, Weak};

use super::{Emitter, Schedule, Shared};
use crate::backend::memory::SimpleEventEmitter;
use crate::backend::{DynEventEmitterBackend, EventEmitterBackend};
use crate::context::{ListenerContext, State, TypeMap};
use crate::delivery::{Core, ErrorHook, Outcomes};
use crate::emit_id::EmitIds;
use crate::error::{ListenerError, StartError};
use crate::lifecycle::{Lifecycle, CLOSED};
use crate::listener::{self, ListenerRegistration};
use crate::policy::{Capacity, DeliveryPolicy};
use crate::table::EventTable;
use crate::testing::Capture;

/// What [`Emitter::emit`] does with an event that no listener listens to.
///
/// On a durable backend an event is never "without listeners" at emit: it goes to the store,
/// which holds the subscriptions of workers in other processes, and is delivered to those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoListenersPolicy {
    /// Accept the event and drop it silently (the default).
    #[default]
    Ignore,
    /// Accept the event, drop it, and log a warning through `tracing`.
    Warn,
    /// Refuse the event with [`EmitError::NoListeners`](crate::EmitError::NoListeners).
    Error,
}

/// Configures an [`Emitter`]: which listeners, which backend, which policies, which shared state.
#[must_use = "a builder does nothing until `start` or `build` is called"]
#[derive(Default)]
pub struct EmitterBuilder {
    listeners: Option<Vec<&'static ListenerRegistration>>,
    states: TypeMap<Box<dyn Any + Send + Sync>>,
    backend: Option<Box<dyn DynEventEmitterBackend>>,
    /// Whether `backend` is the in-memory one (`None` is).
    in_memory: bool,
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
        self.in_memory = (&backend as &dyn Any).is::<SimpleEventEmitter>();
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
    /// [`EmitError::NotStarted`](crate::EmitError::NotStarted) until [`Emitter::start`] is
    /// called.
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
        let in_memory = self.in_memory || self.backend.is_none();
        let (alive, alive_receiver) = tokio::sync::watch::channel(());
        let states = self.states;
        let shared = Arc::new_cyclic(|shared: &Weak<Shared>| {
            let emitter: Weak<dyn Any + Send + Sync> = shared.clone();
            Shared {
                core: Arc::new(Core {
                    table: Arc::new(table),
                    context: Arc::new(ListenerContext { states, emitter }),
                    outcomes: Outcomes {
                        hook: self.error_hook,
                        capture: self.capture,
                    },
                    lifecycle: Arc::new(Lifecycle {
                        capacity,
                        ..Lifecycle::default()
                    }),
                    ids: EmitIds::new(),
                    propagate_span: self.propagate_span,
                    alive: alive_receiver,
                }),
                backend: self
                    .backend
                    .unwrap_or_else(|| Box::new(SimpleEventEmitter::new())),
                dispatcher: OnceLock::new(),
                direct: OnceLock::new(),
                in_memory,
                no_listeners: self.no_listeners,
                emitted: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                schedules: self.schedules,
                _alive: alive,
            }
        });
        Ok(Emitter {
            shared,
            from_listener: false,
        })
    }

    /// Builds the table, checks it and starts the backend.
    pub async fn start(self) -> Result<Emitter, StartError> {
        let emitter = self.build()?;
        emitter.start().await?;
        Ok(emitter)
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
