//! The delivery core: what every backend runs deliveries with.
//!
//! A delivery is one (event, listener) pair. The core runs one attempt of it
//! ([`attempt`]), turns the attempt's result into an [`Outcome`] by the listener's policy and
//! records it ([`outcome`]): counters, the log, the error hook, the test capture. Backends act
//! on the outcome: the in-memory [`scheduler`] waits and retries; a durable engine tells its
//! store (acknowledge, retry at a time, dead-letter). The core is handed what it needs at build
//! time ([`Core`]) and never calls back up into the emitter.
//!
//! On the in-memory path, emits reach the scheduler through its [`inbox`]: a plain emit pushes
//! its typed event there, so the common case never boxes, serializes or type-erases the event;
//! anything else arrives as an envelope. The scheduler starts a delivery in place and only makes
//! a task of the ones that do not finish at once.

mod attempt;
mod dispatcher;
mod inbox;
mod outcome;
mod scheduler;

use std::sync::Arc;

pub(crate) use attempt::run_attempt;
pub use dispatcher::Dispatcher;
pub(crate) use inbox::Queued;
pub use outcome::ErrorHook;
pub(crate) use outcome::{Outcome, Outcomes};

use crate::context::ListenerContext;
use crate::emit_id::EmitIds;
use crate::lifecycle::Lifecycle;
use crate::table::EventTable;

/// What the core needs, built with the emitter and shared by everything that runs deliveries.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) table: Arc<EventTable>,
    /// What listeners receive besides the event.
    pub(crate) context: Arc<ListenerContext>,
    /// Where outcomes go.
    pub(crate) outcomes: Outcomes,
    /// The emitter's pending events and queue depth.
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// The emitter's emit ids.
    pub(crate) ids: EmitIds,
    /// Whether emits carry their tracing context to the deliveries.
    pub(crate) propagate_span: bool,
    /// Closed when the emitter's last handle is dropped, for tasks that must not outlive it.
    pub(crate) alive: tokio::sync::watch::Receiver<()>,
}

impl Core {
    /// Resolves when the emitter has been dropped (every handle of it).
    pub(crate) fn dropped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut alive = self.alive.clone();
        async move { while alive.changed().await.is_ok() {} }
    }
}
