//! Starting and shutting down: the phases of an emitter, the drain, the deadline and its report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::Emitter;
use crate::delivery::Dispatcher;
use crate::error::{BackendError, StartError};
use crate::lifecycle::Phase;
use crate::report::ShutdownReport;

/// Why [`Emitter::shutdown`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// `shutdown` was called through a listener's `Emitter` parameter: it would wait for every
    /// delivery to finish, that listener's own included, so it would never return.
    #[error("`shutdown` was called from a listener, through its `Emitter` parameter: it would wait for that listener to finish, forever; signal the code that owns the emitter instead (through a channel in the listener's state, say)")]
    FromListener,
    /// The backend failed to stop.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Emitter {
    /// Starts the backend. [`EmitterBuilder::start`](crate::EmitterBuilder::start) builds and
    /// starts in one call; use this with [`EmitterBuilder::build`](crate::EmitterBuilder::build)
    /// when the handle must exist before the runtime is ready.
    ///
    /// Emits made while it runs fail with [`EmitError::NotStarted`](crate::EmitError::NotStarted)
    /// until the backend has started: an emit is either refused or delivered, never lost.
    pub async fn start(&self) -> Result<(), StartError> {
        let core = &self.shared.core;
        if let Some(listener) = core.table.listener_needing_timer() {
            if !runtime_has_timer() {
                return Err(StartError::TimersDisabled { listener });
            }
        }
        let backend = &self.shared.backend;
        if let Some((listener, needs)) = core
            .table
            .listener_needing_transaction(backend.transaction_dyn())
        {
            return Err(StartError::TransactionUnavailable {
                listener,
                needs,
                backend: backend.type_name_dyn(),
            });
        }
        let lifecycle = &core.lifecycle;
        if let Err(phase) = lifecycle.transition(Phase::Built, Phase::Starting) {
            return Err(match phase {
                Phase::Running | Phase::Draining | Phase::Starting => StartError::AlreadyStarted,
                Phase::Built | Phase::Closed | Phase::Stopped => StartError::ShutDown,
            });
        }
        let dispatcher = self
            .shared
            .dispatcher
            .get_or_init(|| Dispatcher::start(Arc::clone(core), &tokio::runtime::Handle::current()))
            .clone();
        if self.shared.in_memory {
            let _ = self.shared.direct.set(dispatcher.clone());
        }
        if let Err(error) = self.shared.backend.start_dyn(dispatcher).await {
            let _ = lifecycle.transition(Phase::Starting, Phase::Built);
            return Err(StartError::Backend(error));
        }
        if lifecycle
            .transition(Phase::Starting, Phase::Running)
            .is_err()
        {
            // The runtime shut down under the start.
            return Err(StartError::ShutDown);
        }
        for schedule in &self.shared.schedules {
            tokio::spawn(super::schedule::run(schedule.clone(), self.downgrade()));
        }
        Ok(())
    }

    /// Stops accepting events, delivers everything already accepted, then stops the backend,
    /// and reports what was delivered.
    ///
    /// From the moment it is called, emits fail with
    /// [`EmitError::ShutDown`](crate::EmitError::ShutDown), except those that listeners make
    /// through their `Emitter` parameter while the queue drains: those are accepted and
    /// delivered before it returns (Litestar loses them). A listener that never finishes makes
    /// this wait forever: use [`shutdown_timeout`](Self::shutdown_timeout) to bound the wait.
    /// Calling it again after it returned is a no-op.
    ///
    /// A listener cannot shut down its own emitter through its `Emitter` parameter (it would
    /// wait for itself): that is [`ShutdownError::FromListener`].
    pub async fn shutdown(&self) -> Result<ShutdownReport, ShutdownError> {
        self.shutdown_inner(None).await
    }

    /// Like [`shutdown`](Self::shutdown), but stops waiting after `timeout`: deliveries still
    /// queued are dropped and deliveries still running are cancelled, and the report names them
    /// by event, listener and emit id. Never waits much longer than `timeout`, whatever the
    /// listeners do (a blocking `fn` listener's thread runs on, detached).
    pub async fn shutdown_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ShutdownReport, ShutdownError> {
        self.shutdown_inner(Some(timeout)).await
    }

    async fn shutdown_inner(
        &self,
        timeout: Option<Duration>,
    ) -> Result<ShutdownReport, ShutdownError> {
        if self.from_listener {
            return Err(ShutdownError::FromListener);
        }
        let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
        let shared = &*self.shared;
        let table = &shared.core.table;
        let lifecycle = &shared.core.lifecycle;
        if lifecycle.transition(Phase::Built, Phase::Closed).is_ok() {
            lifecycle.close_when_idle().await;
            return Ok(ShutdownReport::new(table, Vec::new(), 0));
        }
        let _ = lifecycle.transition(Phase::Running, Phase::Draining);
        let drained = until(deadline, lifecycle.close_when_idle()).await.is_some();
        let mut unfinished = Vec::new();
        let mut pending_events = 0;
        if !drained {
            pending_events = lifecycle.force_close();
            if let Some(dispatcher) = shared.dispatcher.get() {
                unfinished = dispatcher.cancel().await;
            }
        }
        if lifecycle.phase() != Phase::Stopped {
            lifecycle.phase.store(Phase::Closed as u8, Ordering::SeqCst);
        }
        lifecycle.room.notify_waiters();
        if lifecycle.backend_stopped.swap(true, Ordering::SeqCst) {
            return Ok(ShutdownReport::new(table, unfinished, pending_events));
        }
        if let Some(dispatcher) = shared.dispatcher.get() {
            dispatcher.stop();
        }
        match until(deadline, shared.backend.shutdown_dyn()).await {
            Some(stopped) => stopped?,
            None => unfinished.extend(shared.backend.abort_dyn().await),
        }
        Ok(ShutdownReport::new(table, unfinished, pending_events))
    }
}

/// Runs `future` to its end, or until `deadline` (`None` when it passed first).
async fn until<T>(
    deadline: Option<tokio::time::Instant>,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
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
