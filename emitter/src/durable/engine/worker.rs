//! The worker: claims due deliveries, runs each through the delivery core, and tells the store
//! how it went (acknowledge, retry at a time, dead-letter).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::held::{acknowledge, keep_leases, Ack, Held, Holding};
use super::outage::Outage;
use super::{aborted, DurableConfig, Mode, MAX_WAIT};
use crate::context::EventMeta;
use crate::delivery::{run_attempt, Core, Outcome};
use crate::durable::{Claimed, Store};
use crate::event::Header;
use crate::report::UnfinishedDelivery;
use crate::stats::DeliveryStats;
use crate::trace::{Live, Trace};

/// How long the claimer waits to gather room for a batch when it has only a little.
const GATHER: Duration = Duration::from_millis(1);

/// How long an aborting worker gives the store to take back the leases it cancels and the
/// acknowledgements it has: a shutdown deadline is not to be overrun by much.
const ABORT_GRACE: Duration = Duration::from_millis(500);

/// Claims deliveries and runs them.
pub(super) struct Worker<S> {
    pub(super) store: Arc<S>,
    pub(super) core: Arc<Core>,
    pub(super) config: DurableConfig,
    /// Woken when this process stored deliveries.
    pub(super) wake: Arc<Notify>,
    /// Told whenever an outcome is stored.
    pub(super) progress: Arc<Notify>,
    pub(super) listeners: Vec<&'static str>,
    pub(super) held: Arc<Held>,
}

/// What a delivery's attempt came to, and what the store is told.
enum Ran {
    Done,
    Retry {
        at: SystemTime,
        error: String,
    },
    Dead {
        reason: String,
    },
    /// The emitter is gone: leave the delivery to its lease.
    Abandoned,
}

impl From<Outcome> for Ran {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Delivered => Ran::Done,
            Outcome::Retry { after, error } => Ran::Retry {
                at: SystemTime::now() + after,
                error,
            },
            Outcome::Failed { reason } => Ran::Dead { reason },
        }
    }
}

impl<S: Store> Worker<S> {
    /// Claims and runs deliveries while `mode` is [`Mode::Run`]. Then, on [`Mode::Drain`], lets
    /// the running deliveries finish; on [`Mode::Abort`] (at once, or during the drain),
    /// cancels them, gives their leases back and names them in `report`.
    pub(super) async fn run(
        self,
        mut mode: watch::Receiver<Mode>,
        report: oneshot::Sender<Vec<UnfinishedDelivery>>,
    ) {
        let (acks, ack_receiver) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(
            Arc::clone(&self.store),
            ack_receiver,
            Arc::clone(&self.held),
            Arc::clone(&self.progress),
        ));
        let keeper = tokio::spawn(keep_leases(
            Arc::clone(&self.store),
            Arc::clone(&self.held),
            self.config.lease,
        ));
        let mut running = JoinSet::new();
        self.claim_and_run(&mut mode, &acks, &mut running).await;
        let draining = *mode.borrow() == Mode::Drain;
        let finished = draining
            && tokio::select! {
                biased;
                () = aborted(&mut mode) => false,
                () = async { while running.join_next().await.is_some() {} } => true,
            };
        let mut cancelled = Vec::new();
        if !finished {
            running.abort_all();
            while running.join_next().await.is_some() {}
            let (receipts, named) = self.held.take_running();
            cancelled = named;
            if !receipts.is_empty() {
                match tokio::time::timeout(ABORT_GRACE, self.store.release(&receipts)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(
                        deliveries = receipts.len(),
                        "could not give back the leases of cancelled deliveries; they run again \
                         when their leases expire: {error}"
                    ),
                    Err(_) => tracing::warn!(
                        deliveries = receipts.len(),
                        "the store did not take back the leases of cancelled deliveries in time; \
                         they run again when their leases expire"
                    ),
                }
            }
        }
        drop(acks);
        if finished {
            let _ = acker.await;
        } else {
            let _ = tokio::time::timeout(ABORT_GRACE, acker).await;
        }
        keeper.abort();
        let _ = report.send(cancelled);
    }

    async fn claim_and_run(
        &self,
        mode: &mut watch::Receiver<Mode>,
        acks: &mpsc::UnboundedSender<Ack>,
        running: &mut JoinSet<()>,
    ) {
        let room = Arc::new(Semaphore::new(self.config.max_in_flight));
        let mut outage = Outage::default();
        let mut wait = Duration::from_millis(50);
        let mut claimed_so_far = 0u64;
        loop {
            while running.try_join_next().is_some() {}
            if *mode.borrow_and_update() != Mode::Run {
                return;
            }
            let first = tokio::select! {
                permit = Arc::clone(&room).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                _ = mode.changed() => continue,
            };
            // Claim in batches: when little room is free, wait a moment for more, so that one
            // round trip to the store serves many deliveries.
            let half = self.config.max_in_flight / 2;
            let free = room.available_permits();
            if free < half {
                let more = u32::try_from(half - free).unwrap_or(u32::MAX);
                tokio::select! {
                    // Taken and given back at once: only this loop takes room.
                    _ = tokio::time::timeout(GATHER, Arc::clone(&room).acquire_many_owned(more)) => {}
                    _ = mode.changed() => continue,
                }
            }
            // At most half the room per claim, so that one batch is acknowledged while the next
            // one runs.
            let limit = (1 + room.available_permits()).min(half.clamp(1, 256));
            let claimed = self
                .store
                .claim(
                    &self.config.worker_id,
                    &self.listeners,
                    limit,
                    self.config.lease,
                )
                .await;
            let claimed = match claimed {
                Ok(claimed) => {
                    outage.over("claiming");
                    wait = Duration::from_millis(50);
                    claimed
                }
                Err(error) => {
                    outage.failed("cannot claim deliveries", &error);
                    drop(first);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = mode.changed() => {}
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                    continue;
                }
            };
            if claimed.is_empty() {
                drop(first);
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = self.store.wait_for_work(self.config.poll_interval) => {}
                    _ = mode.changed() => {}
                }
                continue;
            }
            let mut first = Some(first);
            for claim in claimed {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match Arc::clone(&room).try_acquire_owned() {
                        Ok(permit) => permit,
                        // Not reached: only this loop takes permits. Should it happen, the
                        // delivery's lease runs out and it is claimed again.
                        Err(_) => continue,
                    },
                };
                claimed_so_far += 1;
                self.held.insert(
                    claimed_so_far,
                    Holding {
                        receipt: claim.receipt.clone(),
                        names: self.names(&claim),
                        emit_id: claim.event.emit_id,
                        attempt: claim.attempt,
                        since: tokio::time::Instant::now(),
                        done: false,
                    },
                );
                running.spawn(deliver(
                    Arc::clone(&self.store),
                    Arc::clone(&self.core),
                    claimed_so_far,
                    claim,
                    self.config.extra_claims,
                    acks.clone(),
                    Arc::clone(&self.held),
                    Arc::clone(&self.progress),
                    permit,
                ));
            }
        }
    }

    /// The claimed delivery's event id and listener as this binary names them.
    fn names(&self, claim: &Claimed) -> Option<(&'static str, &'static str)> {
        let (_, entry) = self.core.table.event_by_id(&claim.event.event_id)?;
        let listener = entry
            .listeners
            .iter()
            .find(|listener| listener.name == claim.listener)?;
        Some((entry.id, listener.name))
    }
}

/// Runs one claimed delivery and tells the store how it went.
#[allow(clippy::too_many_arguments)]
async fn deliver<S: Store>(
    store: Arc<S>,
    core: Arc<Core>,
    number: u64,
    claim: Claimed,
    extra_claims: u32,
    acks: mpsc::UnboundedSender<Ack>,
    held: Arc<Held>,
    progress: Arc<Notify>,
    room: OwnedSemaphorePermit,
) {
    let ran = run_claimed(&core, &claim, extra_claims).await;
    held.done(number);
    let receipt = &claim.receipt;
    let told = match &ran {
        Ran::Done => {
            // Acknowledged in a batch. Until then the delivery keeps its lease and its room
            // among the deliveries in flight, so that a crash can make at most `max_in_flight`
            // deliveries run again.
            match acks.send((number, claim.receipt, room)) {
                Ok(()) => return,
                Err(mpsc::error::SendError((_, receipt, _))) => {
                    store.ack(std::slice::from_ref(&receipt)).await
                }
            }
        }
        Ran::Retry { at, error } => store.retry(receipt, *at, error).await,
        Ran::Dead { reason } => store.dead_letter(receipt, reason).await,
        Ran::Abandoned => Ok(()),
    };
    if let Err(error) = told {
        tracing::error!(
            listener = claim.listener,
            event_id = claim.event.event_id,
            emit_id = %claim.event.emit_id,
            "could not record the outcome of a delivery; it will run again when its lease expires: {error}"
        );
    }
    held.forget([number]);
    progress.notify_waiters();
}

/// Decodes a claimed delivery, runs one attempt of its listener, and decides what follows.
async fn run_claimed(core: &Arc<Core>, claim: &Claimed, extra_claims: u32) -> Ran {
    let table = &core.table;
    let stored = &claim.event;
    let Some((_, entry)) = table.event_by_id(&stored.event_id) else {
        return dead(
            claim,
            format!(
                "unknown event id `{}`: no event type of this binary has it",
                stored.event_id
            ),
        );
    };
    let Some(listener) = entry
        .listeners
        .iter()
        .find(|listener| listener.name == claim.listener)
    else {
        return dead(
            claim,
            format!(
                "listener `{}` does not listen to event `{}` in this binary",
                claim.listener, stored.event_id
            ),
        );
    };
    let undeliverable = |reason: String| {
        Ran::from(core.outcomes.undeliverable(
            listener,
            entry.id,
            stored.emit_id,
            claim.attempt,
            reason,
        ))
    };
    let Some(codec) = entry.codec else {
        return undeliverable(format!("event `{}` is not registered", stored.event_id));
    };
    let policy = table.policy(listener);
    if claim.attempt > policy.max_attempts().saturating_add(extra_claims) {
        return undeliverable(format!(
            "claimed {} times without an outcome: the workers running it died or lost their \
             leases each time (a crash loop?)",
            claim.attempt
        ));
    }
    let header = Header {
        event_id: entry.id,
        emit_id: stored.emit_id,
        emitted_at: stored.emitted_at,
        trace: Trace::restored(stored.emit_id, stored.trace.clone()),
        token: std::sync::OnceLock::new(),
    };
    let payload = match (codec.decode)(&stored.payload, header) {
        Ok(payload) => payload,
        Err(error) => {
            return undeliverable(format!(
                "the payload cannot be decoded as `{}`: {error}",
                entry.type_name
            ))
        }
    };
    if core.context.emitter.strong_count() == 0 {
        return Ran::Abandoned;
    }
    let meta = EventMeta::of(&payload.header, listener.name, claim.attempt);
    let result = {
        let _in_flight = InFlight::new(&listener.stats);
        run_attempt(core, listener, policy, &payload, claim.attempt).await
    };
    let outcome = core.outcomes.conclude(listener, policy, &meta, result);
    if !matches!(outcome, Outcome::Retry { .. }) {
        Live::delivered(stored.emit_id);
    }
    Ran::from(outcome)
}

/// Counts a delivery in flight while it lives, even when its task is cancelled.
struct InFlight<'a>(&'a DeliveryStats);

impl<'a> InFlight<'a> {
    fn new(stats: &'a DeliveryStats) -> Self {
        stats.running();
        Self(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

/// A delivery this binary cannot run at all: dead-lettered with the reason.
fn dead(claim: &Claimed, reason: String) -> Ran {
    tracing::error!(
        listener = claim.listener,
        event_id = claim.event.event_id,
        emit_id = %claim.event.emit_id,
        "delivery dead-lettered: {reason}"
    );
    Ran::Dead { reason }
}
