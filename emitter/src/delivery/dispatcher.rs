//! The [`Dispatcher`]: what a backend is given at start to hand envelopes to the scheduler.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::inbox::Queued;
use super::scheduler::{spawn_scheduler, Control, SchedulerHandle};
use super::Core;
use crate::envelope::Envelope;
use crate::event::Event;
use crate::report::UnfinishedDelivery;
use crate::table::EventTable;

/// Hands envelopes to the emitter's scheduler: what a backend is given at start.
///
/// Cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    scheduler: SchedulerHandle,
    core: Arc<Core>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts a scheduler for `core` on `runtime`.
    pub(crate) fn start(core: Arc<Core>, runtime: &tokio::runtime::Handle) -> Self {
        Self {
            inner: Arc::new(Inner {
                scheduler: spawn_scheduler(Arc::clone(&core), runtime),
                core,
            }),
        }
    }

    /// Hands the envelope to the emitter's scheduler and returns at once; never blocks, from
    /// any thread.
    ///
    /// The scheduler takes envelopes in the order they were dispatched (holding a delayed one,
    /// [`Envelope::run_at`], until its time) and starts each listener's delivery in that order,
    /// up to the listener's concurrency limit; each delivery runs through its attempts. A
    /// listener's error or panic is logged, retried per its policy, handed to the error hook
    /// when attempts run out, and affects nothing else.
    pub fn dispatch(&self, envelope: Envelope) {
        if let Err(refused) = self.inner.scheduler.inbox.push_envelope(envelope) {
            // The scheduler has stopped (the emitter shut down): the event is dropped.
            self.unqueue(&refused);
        }
    }

    /// Hands the event of a plain emit, which [`Lifecycle::admit`](crate::lifecycle::Lifecycle::admit)
    /// counted in, to the scheduler by value: the in-memory backend's path. `event` is its
    /// entry in the table, which lists `deliveries` listeners for it. Gives it back when the
    /// scheduler has stopped.
    pub(crate) fn push<E: Event>(
        &self,
        event: usize,
        deliveries: u64,
        queued: Queued<E>,
    ) -> Result<(), Queued<E>> {
        self.inner.scheduler.inbox.push(event, deliveries, queued)
    }

    /// Deliveries of plain emits not yet taken by the scheduler (for the queue depth), and how
    /// many plain emits were handed over so far.
    pub(crate) fn inbox_counts(&self) -> (u64, u64) {
        self.inner.scheduler.inbox.counts()
    }

    /// Drops an envelope that will not be delivered (a duplicate emit, say), taking its
    /// deliveries off the queue.
    pub fn drop_envelope(&self, envelope: Envelope) {
        self.unqueue(&envelope);
    }

    /// Takes an envelope's deliveries off the emitter's queue depth: they were dropped, or are
    /// now a durable store's business.
    pub(crate) fn unqueue(&self, envelope: &Envelope) {
        let core = &self.inner.core;
        core.lifecycle
            .unqueue(core.table.listener_count(envelope.event));
    }

    /// The delivery core the scheduler runs deliveries with.
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    pub(crate) fn table(&self) -> &Arc<EventTable> {
        &self.inner.core.table
    }

    /// Tells the scheduler that everything was delivered.
    pub(crate) fn stop(&self) {
        let _ = self.inner.scheduler.control.send(Control::Stop);
    }

    /// Cancels the scheduler and collects what had not finished.
    pub(crate) async fn cancel(&self) -> Vec<UnfinishedDelivery> {
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
