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
use crate::durable::{Claimed, Committed, Receipt, Store, StoreTransaction};
use crate::error::Failure;
use crate::event::{DecodeError, Header};
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
    /// Done, and acknowledged in the listener's transaction.
    Committed,
    /// Done, but the listener's transaction was refused: its lease was lost to another claim,
    /// whose delivery it is now.
    LeaseLost,
    Retry {
        at: SystemTime,
        error: String,
    },
    Dead {
        reason: String,
    },
    /// The event was stored by a newer build: given back, without counting an attempt, for a
    /// worker that knows its version.
    Postpone {
        at: SystemTime,
        note: String,
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
            self.give_back(receipts).await;
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
                        // A store that hears its server come back wakes the worker sooner.
                        () = self.store.wait_for_work(wait) => {}
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
            // A suspect (see `Claimed::crashes`) may be what killed the workers that ran it
            // before. It runs alone: once every other delivery this worker holds has finished and
            // its outcome is stored, and nothing starts until its own outcome is stored, so that a
            // crash it causes takes no other delivery with it and counts against it alone.
            let alone = claimed.iter().any(|claim| claim.crashes > 0);
            let size = claimed.len();
            let mut first = Some(first);
            let mut batch = Vec::with_capacity(size);
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
                batch.push((claimed_so_far, claim, permit));
            }
            if alone {
                self.run_alone(batch, mode, acks, running, &room).await;
            } else {
                self.start(batch, acks, running);
            }
        }
    }

    /// Starts the deliveries of `batch`.
    fn start(
        &self,
        batch: Vec<(u64, Claimed, OwnedSemaphorePermit)>,
        acks: &mpsc::UnboundedSender<Ack>,
        running: &mut JoinSet<()>,
    ) {
        for (number, claim, permit) in batch {
            running.spawn(deliver(
                Arc::clone(&self.store),
                Arc::clone(&self.core),
                number,
                claim,
                self.config.extra_claims,
                self.config.newer_version_delay,
                acks.clone(),
                Arc::clone(&self.held),
                Arc::clone(&self.progress),
                permit,
            ));
        }
    }

    /// Runs `batch` (a suspect) alone: waits until every other delivery this worker holds has
    /// its outcome stored, starts it, and waits until its own outcome is stored. A worker told to
    /// stop meanwhile gives a suspect it has not started back, and leaves one it started to the
    /// drain or the abort.
    async fn run_alone(
        &self,
        batch: Vec<(u64, Claimed, OwnedSemaphorePermit)>,
        mode: &mut watch::Receiver<Mode>,
        acks: &mpsc::UnboundedSender<Ack>,
        running: &mut JoinSet<()>,
        room: &Arc<Semaphore>,
    ) {
        let size = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        let others = self.config.max_in_flight.saturating_sub(batch.len());
        let others = u32::try_from(others).unwrap_or(u32::MAX);
        let alone = tokio::select! {
            others = Arc::clone(room).acquire_many_owned(others) => others.ok(),
            _ = mode.changed() => None,
        };
        let Some(others) = alone else {
            let numbers: Vec<u64> = batch.iter().map(|(number, _, _)| *number).collect();
            self.give_back(self.held.take(&numbers)).await;
            return;
        };
        self.start(batch, acks, running);
        tokio::select! {
            _ = Arc::clone(room).acquire_many_owned(size) => {}
            _ = mode.changed() => {}
        }
        drop(others);
    }

    /// Gives deliveries this worker will not run back to the store, as the same attempt, within
    /// a short grace: the worker is stopping, and a store that does not take them back in time
    /// lets their leases run out instead.
    async fn give_back(&self, receipts: Vec<Receipt>) {
        if receipts.is_empty() {
            return;
        }
        match tokio::time::timeout(ABORT_GRACE, self.store.release(&receipts)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                deliveries = receipts.len(),
                "could not give back the leases of cancelled deliveries; they run again when \
                 their leases expire: {error}"
            ),
            Err(_) => tracing::warn!(
                deliveries = receipts.len(),
                "the store did not take back the leases of cancelled deliveries in time; they \
                 run again when their leases expire"
            ),
        }
    }

    /// The claimed delivery's event id and listener as this binary names them.
    fn names(&self, claim: &Claimed) -> Option<(&'static str, &'static str)> {
        let (_, entry) = self.core.table.event_by_id(&claim.event.event_id)?;
        let listener = entry
            .listeners
            .iter()
            .find(|listener| listener.answers_to(&claim.listener))?;
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
    newer_version_delay: Duration,
    acks: mpsc::UnboundedSender<Ack>,
    held: Arc<Held>,
    progress: Arc<Notify>,
    room: OwnedSemaphorePermit,
) {
    let ran = run_claimed(&*store, &core, &claim, extra_claims, newer_version_delay).await;
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
        Ran::Postpone { at, note } => store.postpone(receipt, *at, note).await,
        Ran::Committed | Ran::Abandoned => Ok(()),
        Ran::LeaseLost => {
            tracing::warn!(
                listener = claim.listener,
                event_id = claim.event.event_id,
                emit_id = %claim.event.emit_id,
                "a delivery's lease was lost while its listener ran (it ran longer than its \
                 lease, or its worker stalled): its transaction was rolled back, and the worker \
                 that claimed it again runs it"
            );
            Ok(())
        }
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
async fn run_claimed<S: Store>(
    store: &S,
    core: &Arc<Core>,
    claim: &Claimed,
    extra_claims: u32,
    newer_version_delay: Duration,
) -> Ran {
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
        .find(|listener| listener.answers_to(&claim.listener))
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
        return undeliverable(crash_loop(claim, entry.id, listener.name));
    }
    let header = Header {
        event_id: entry.id,
        emit_id: stored.emit_id,
        emitted_at: stored.emitted_at,
        trace: Trace::restored(stored.emit_id, stored.trace.clone()),
        token: std::sync::OnceLock::new(),
    };
    let payload = match codec.decode_stored(&stored.payload, stored.version, header) {
        Ok(payload) => payload,
        Err(DecodeError::Undecodable(reason)) => return undeliverable(reason),
        Err(DecodeError::Newer {
            stored: newer,
            known,
        }) => {
            let note = format!(
                "version {newer} of event `{}` is newer than this worker's {known}; left for a \
                 newer worker",
                entry.id
            );
            tracing::warn!(
                listener = claim.listener,
                event_id = entry.id,
                emit_id = %stored.emit_id,
                "{note}; looked at again in {newer_version_delay:?}"
            );
            return Ran::Postpone {
                at: SystemTime::now() + newer_version_delay,
                note,
            };
        }
    };
    if core.context.emitter.strong_count() == 0 {
        return Ran::Abandoned;
    }
    let meta = EventMeta::of(&payload.header, listener.name, claim.attempt);
    // A listener that takes a transaction runs in one, and its delivery is acknowledged in it.
    let transaction = match listener.transaction {
        None => None,
        Some(_) => match store.begin().await {
            Ok(transaction) => Some(transaction),
            Err(error) => {
                let failure = Failure::Error(
                    format!("could not open a transaction on the store for the listener: {error}")
                        .into(),
                );
                return Ran::from(
                    core.outcomes
                        .conclude(listener, policy, &meta, Err(failure)),
                );
            }
        },
    };
    let handle = transaction.as_ref().map(|transaction| transaction.handle());
    let result = {
        let _in_flight = InFlight::new(&listener.stats);
        run_attempt(core, listener, policy, &payload, claim.attempt, handle).await
    };
    let (result, committed) = match transaction {
        None => (result, None),
        Some(transaction) => finish(transaction, result, &claim.receipt).await,
    };
    if committed == Some(Committed::LeaseLost) {
        return Ran::LeaseLost;
    }
    let outcome = core.outcomes.conclude(listener, policy, &meta, result);
    if committed == Some(Committed::Acknowledged) {
        Live::delivered(stored.emit_id);
        return Ran::Committed;
    }
    if !matches!(outcome, Outcome::Retry { .. }) {
        Live::delivered(stored.emit_id);
    }
    Ran::from(outcome)
}

/// Commits a listener's transaction with the acknowledgement of its delivery when the listener
/// succeeded, and rolls it back when it failed: the attempt's result (a commit that failed is a
/// failed attempt) and how the commit went.
async fn finish(
    transaction: Box<dyn StoreTransaction>,
    result: Result<(), Failure>,
    receipt: &Receipt,
) -> (Result<(), Failure>, Option<Committed>) {
    if result.is_err() {
        transaction.rollback().await;
        return (result, None);
    }
    match transaction.commit(receipt.clone()).await {
        Ok(committed) => (Ok(()), Some(committed)),
        Err(error) => (
            Err(Failure::Error(
                format!(
                    "the listener succeeded, but its transaction could not be committed (it \
                     runs again unless the commit went through): {error}"
                )
                .into(),
            )),
            None,
        ),
    }
}

/// Why the crash-loop guard dead-letters a delivery claimed more times than its attempts allow:
/// what is known of the claims that ended without an outcome.
fn crash_loop(claim: &Claimed, event_id: &str, listener: &str) -> String {
    let delivery = format!(
        "the delivery of `{event_id}` (emit {}) to `{listener}`",
        claim.event.emit_id
    );
    match claim.crashes {
        0 => format!(
            "{delivery} was claimed {} times without an outcome: the workers running it died or \
             lost their leases each time (a crash loop?)",
            claim.attempt
        ),
        crashes => format!(
            "{delivery} is a crash loop: its worker died {crashes} times while running it (or \
             lost its lease), alone after the first time, so it is what kills the worker; \
             dead-lettered at its claim {} instead of being run again",
            claim.attempt
        ),
    }
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
