//! The [`Emitter`] handle: emitting ([`emit`]), configuring ([`builder`]), starting and shutting
//! down ([`shutdown`]), and cron schedules ([`schedule`]).

mod builder;
mod emit;
mod schedule;
mod shutdown;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

pub use builder::{EmitterBuilder, NoListenersPolicy};
pub use schedule::{Schedule, ScheduleError};
pub use shutdown::ShutdownError;

use crate::backend::DynEventEmitterBackend;
use crate::delivery::{Core, Dispatcher};
use crate::emit_id::EmitId;
use crate::error::{EmitError, Failure};
use crate::event::{Emits, Event};
use crate::lifecycle::Phase;
use crate::listener::Delivery;
use crate::stats::Metrics;
use crate::table::EventTable;

/// A handle to an event emitter: cheap to clone, usable from any thread.
///
/// Build one with [`Emitter::builder`]. Emitting does not wait for listeners: the event is queued
/// and [`emit`](Self::emit) returns its [`EmitId`](crate::EmitId) at once.
/// [`shutdown`](Self::shutdown) waits until every queued event has been delivered.
///
/// The handle a listener receives as its `Emitter` parameter is marked as a listener's: its emits
/// are still accepted while the emitter drains at shutdown, so that follow-up events are
/// delivered too, whereas emits through other handles are refused from the moment shutdown
/// begins (or shutdown could never finish while producers keep emitting).
///
/// Dropping every handle without a shutdown stops the emitter: what it queued is dropped, what
/// runs is cancelled, and its table, state and backend are freed.
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
    from_listener: bool,
}

/// What every handle of one emitter shares.
struct Shared {
    /// What runs deliveries: the table, the listeners' context, outcomes, the lifecycle.
    core: Arc<Core>,
    backend: Box<dyn DynEventEmitterBackend>,
    dispatcher: OnceLock<Dispatcher>,
    /// The dispatcher, when the backend is the in-memory one: plain emits go straight to it.
    direct: OnceLock<Dispatcher>,
    /// Whether the backend is the in-memory one.
    in_memory: bool,
    no_listeners: NoListenersPolicy,
    emitted: AtomicU64,
    rejected: AtomicU64,
    schedules: Vec<Schedule>,
    /// Dropped with the emitter: tasks that must not outlive it watch this.
    _alive: tokio::sync::watch::Sender<()>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("phase", &self.shared.core.lifecycle.phase())
            .field("from_listener", &self.from_listener)
            .field("no_listeners", &self.shared.no_listeners)
            .field("propagate_span", &self.shared.core.propagate_span)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// A builder with every registered listener, the in-memory backend and default policies.
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// The event table: which listeners run for which event.
    pub fn table(&self) -> &EventTable {
        &self.shared.core.table
    }

    /// Counters of what this emitter did so far.
    pub fn metrics(&self) -> Metrics {
        let shared = &*self.shared;
        let lifecycle = &shared.core.lifecycle;
        // Plain emits on the in-memory backend are counted by the scheduler's inbox.
        let (inbox_queued, inbox_emitted) =
            shared.direct.get().map_or((0, 0), Dispatcher::inbox_counts);
        let mut metrics = Metrics {
            emitted: shared.emitted.load(Ordering::Relaxed) + inbox_emitted,
            rejected: shared.rejected.load(Ordering::Relaxed),
            queued: lifecycle.queued.load(Ordering::Relaxed) + inbox_queued,
            pending_events: lifecycle.pending(),
            ..Metrics::default()
        };
        for entry in shared.core.table.events() {
            for listener in &entry.listeners {
                metrics.add(listener.stats.snapshot());
            }
        }
        metrics
    }

    /// Whether the emitter is started and has not finished shutting down (nor lost the runtime
    /// it was started on).
    pub fn is_running(&self) -> bool {
        matches!(
            self.shared.core.lifecycle.phase(),
            Phase::Running | Phase::Draining
        )
    }

    /// Waits until every event emitted so far (and every event emitted meanwhile) has been
    /// handled by all its listeners (delivered, or failed for good), without shutting down.
    /// Tests use it instead of sleeping.
    ///
    /// On a durable backend, handled means acknowledged or dead-lettered in the store, by this
    /// process or another worker; delayed events count until they are handled too.
    pub async fn wait_idle(&self) {
        self.shared.core.lifecycle.wait_idle().await;
        self.shared.backend.wait_idle_dyn().await;
    }

    /// A handle that does not keep the emitter alive.
    fn downgrade(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }
}

impl<'a, E> Delivery<'a, E> {
    /// The emitter, for a listener's `Emitter` parameter: a listener's handle (see [`Emitter`]),
    /// made the first time it is asked for.
    pub fn emitter(&self) -> Result<&'a Emitter, Failure> {
        let extras = self.extras()?;
        let lazy = extras.lazy;
        if lazy.emitter.get().is_none() {
            let erased: Arc<dyn Any + Send + Sync> =
                extras.context.emitter.upgrade().ok_or_else(|| {
                    Failure::Error(
                        "the emitter was dropped while this delivery was starting".into(),
                    )
                })?;
            let shared = erased.downcast::<Shared>().map_err(|_| {
                Failure::Error(
                    "a delivery's emitter has an unexpected type (a bug in emitter)".into(),
                )
            })?;
            let _ = lazy.emitter.set(Box::new(Emitter {
                shared,
                from_listener: true,
            }));
        }
        lazy.emitter
            .get()
            .and_then(|handle| handle.downcast_ref::<Emitter>())
            .ok_or_else(|| {
                Failure::Error("a delivery lost its emitter's handle (a bug in emitter)".into())
            })
    }
}

impl Emits for Emitter {
    fn emit_event<E: Event>(&self, event: E) -> Result<EmitId, EmitError> {
        self.emit(event)
    }
}
