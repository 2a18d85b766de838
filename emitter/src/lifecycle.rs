//! The emitter's lifecycle: its phase, its count of pending events (which the capacity bounds),
//! and the token each accepted event holds until its last delivery is done.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::stats::export;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Built, not started: emits fail with `NotStarted`.
    Built = 0,
    /// Accepting events.
    Running = 1,
    /// Shutting down: only listeners' emits are accepted.
    Draining = 2,
    /// Shut down.
    Closed = 3,
    /// `start` is starting the backend: emits still fail with `NotStarted`.
    Starting = 4,
    /// The runtime that ran the emitter shut down under it, without a shutdown.
    Stopped = 5,
}

/// The emitter's phase and its count of accepted, unfinished events.
///
/// `pending` packs the count with a `CLOSED` bit, so that "idle, so close" is one
/// compare-and-swap and an emit racing with it either lands before the close or sees it.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    pub(crate) phase: AtomicU8,
    /// Events accepted and not finished, with the `CLOSED` bit.
    pub(crate) pending: AtomicU64,
    /// The most events `pending` may count.
    pub(crate) capacity: u64,
    /// Woken when a full emitter makes room, and at shutdown.
    pub(crate) room: Notify,
    /// Deliveries accepted and not started: the queue depth.
    pub(crate) queued: AtomicU64,
    pub(crate) idle: Notify,
    pub(crate) backend_stopped: AtomicBool,
}

pub(crate) const CLOSED: u64 = 1 << 63;

impl Lifecycle {
    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Built,
            1 => Phase::Running,
            2 => Phase::Draining,
            4 => Phase::Starting,
            5 => Phase::Stopped,
            _ => Phase::Closed,
        }
    }

    pub(crate) fn transition(&self, from: Phase, to: Phase) -> Result<(), Phase> {
        self.phase
            .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst)
            .map(|_| ())
            .map_err(|_| self.phase())
    }

    /// What runs deliveries is gone without a shutdown (its runtime shut down): refuse emits
    /// from now on, and wake whoever waits for room.
    pub(crate) fn stopped(&self) {
        for from in [Phase::Running, Phase::Draining, Phase::Starting] {
            if self.transition(from, Phase::Stopped).is_ok() {
                break;
            }
        }
        if self.phase() == Phase::Stopped {
            self.pending.fetch_or(CLOSED, Ordering::SeqCst);
            self.room.notify_waiters();
        }
    }

    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst) & !CLOSED
    }

    /// Waits until no event is pending, then closes, unless an emit got in first.
    pub(crate) async fn close_when_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            match self
                .pending
                .compare_exchange(0, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return,
                Err(current) if current == CLOSED => return,
                Err(_) => idle.await,
            }
        }
    }

    /// Closes now, whatever is pending, and returns how many events were.
    pub(crate) fn force_close(&self) -> u64 {
        self.pending.fetch_or(CLOSED, Ordering::SeqCst) & !CLOSED
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.pending() == 0 {
                return;
            }
            idle.await;
        }
    }

    pub(crate) fn queue(&self, deliveries: u64) {
        self.queued.fetch_add(deliveries, Ordering::Relaxed);
        export::gauge("emitter_queued", deliveries as f64);
    }

    /// `deliveries` the scheduler took from its inbox, where the exported gauge already counted
    /// them (see [`queue_in_inbox`](Self::queue_in_inbox)).
    pub(crate) fn queue_taken(&self, deliveries: u64) {
        if deliveries > 0 {
            self.queued.fetch_add(deliveries, Ordering::Relaxed);
        }
    }

    /// `deliveries` went into the scheduler's inbox, which counts them itself until the
    /// scheduler takes them: only the exported gauge hears of them now.
    pub(crate) fn queue_in_inbox(&self, deliveries: u64) {
        export::gauge("emitter_queued", deliveries as f64);
    }

    /// `deliveries` left the queue: started, or dropped.
    pub(crate) fn unqueue(&self, deliveries: u64) {
        if deliveries > 0 {
            self.queued.fetch_sub(deliveries, Ordering::Relaxed);
            export::gauge("emitter_queued", -(deliveries as f64));
        }
    }

    pub(crate) fn finish(&self) {
        self.finish_many(1);
    }

    /// `events` pending events are done: finished by whoever ran their last delivery, in one
    /// update for a batch of them.
    pub(crate) fn finish_many(&self, events: u64) {
        if events == 0 {
            return;
        }
        let before = self.pending.fetch_sub(events, Ordering::SeqCst) & !CLOSED;
        if before == events {
            self.idle.notify_waiters();
        }
        if before >= self.capacity && before - events < self.capacity {
            self.room.notify_waiters();
        }
    }

    /// Counts an event in, unless the emitter is full or closed. The caller finishes it
    /// exactly once: with [`finish_many`](Self::finish_many), or by making it an
    /// [`EventToken`] that finishes it when dropped.
    pub(crate) fn admit(&self) -> Result<(), Refusal> {
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        if before & CLOSED != 0 || before >= self.capacity {
            // Not counted in after all. Undone like any finished event: meanwhile another event
            // may have finished and, seeing this one counted, left the wake-ups to it.
            self.finish();
            return Err(if before & CLOSED != 0 {
                Refusal::Closed
            } else {
                Refusal::Full
            });
        }
        Ok(())
    }
}

/// Why an event could not be counted in.
pub(crate) enum Refusal {
    Full,
    Closed,
}

/// One accepted event until all its listeners are done with it: counted in the emitter's pending
/// events, which the capacity bounds. It lives in the event's allocation, so it is dropped with
/// the last delivery, and an event lost by a backend cannot make shutdown wait forever.
pub(crate) struct EventToken {
    lifecycle: Arc<Lifecycle>,
}

impl EventToken {
    /// The token of an event [`Lifecycle::admit`] counted in.
    pub(crate) fn adopt(lifecycle: &Arc<Lifecycle>) -> Self {
        EventToken {
            lifecycle: Arc::clone(lifecycle),
        }
    }
}

impl Drop for EventToken {
    fn drop(&mut self) {
        self.lifecycle.finish();
    }
}
