//! The deliveries a worker holds, from their claim until their outcome is stored: whose leases
//! to extend, what to acknowledge, and what a shutdown deadline cancels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};

use crate::durable::{Receipt, Store};
use crate::emit_id::EmitId;
use crate::report::UnfinishedDelivery;

/// One claimed delivery.
pub(super) struct Holding {
    pub(super) receipt: Receipt,
    /// Its event id and listener, when this binary knows them.
    pub(super) names: Option<(&'static str, &'static str)>,
    pub(super) emit_id: EmitId,
    pub(super) attempt: u32,
    pub(super) since: tokio::time::Instant,
    /// Its attempt has ended; only its outcome remains to be stored.
    pub(super) done: bool,
}

/// The deliveries a worker holds, by a number it gives each claim.
#[derive(Default)]
pub(super) struct Held(Mutex<HashMap<u64, Holding>>);

impl Held {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Holding>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn insert(&self, number: u64, holding: Holding) {
        self.lock().insert(number, holding);
    }

    /// The delivery's attempt ended.
    pub(super) fn done(&self, number: u64) {
        if let Some(holding) = self.lock().get_mut(&number) {
            holding.done = true;
        }
    }

    /// The delivery's outcome is stored: it is no longer held.
    pub(super) fn forget(&self, numbers: impl IntoIterator<Item = u64>) {
        let mut held = self.lock();
        for number in numbers {
            held.remove(&number);
        }
    }

    /// The receipts of every delivery held, for their leases to be extended.
    fn receipts(&self) -> Vec<Receipt> {
        self.lock()
            .values()
            .map(|holding| holding.receipt.clone())
            .collect()
    }

    /// Takes the deliveries `numbers` (they will not run): their receipts.
    pub(super) fn take(&self, numbers: &[u64]) -> Vec<Receipt> {
        let mut held = self.lock();
        numbers
            .iter()
            .filter_map(|number| held.remove(number))
            .map(|holding| holding.receipt)
            .collect()
    }

    /// Takes the deliveries whose attempt had not ended (they were cancelled): their receipts,
    /// to release, and what the shutdown report says of them.
    pub(super) fn take_running(&self) -> (Vec<Receipt>, Vec<UnfinishedDelivery>) {
        let mut held = self.lock();
        let running: Vec<u64> = held
            .iter()
            .filter(|(_, holding)| !holding.done)
            .map(|(&number, _)| number)
            .collect();
        let mut receipts = Vec::with_capacity(running.len());
        let mut named = Vec::with_capacity(running.len());
        for number in running {
            let Some(holding) = held.remove(&number) else {
                continue;
            };
            if let Some((event_id, listener)) = holding.names {
                named.push(UnfinishedDelivery::running(
                    event_id,
                    listener,
                    holding.emit_id,
                    holding.attempt,
                    holding.since.elapsed(),
                ));
            }
            receipts.push(holding.receipt);
        }
        (receipts, named)
    }
}

/// A finished delivery waiting for its acknowledgement: its number, its receipt, and its room
/// among the deliveries in flight.
pub(super) type Ack = (u64, Receipt, OwnedSemaphorePermit);

/// Acknowledges finished deliveries in batches, until every sender is gone.
pub(super) async fn acknowledge<S: Store>(
    store: Arc<S>,
    mut acks: mpsc::UnboundedReceiver<Ack>,
    held: Arc<Held>,
    progress: Arc<Notify>,
) {
    const BATCH: usize = 512;
    let mut received = Vec::with_capacity(BATCH);
    // No waiting to gather a batch: an acknowledgement held back is one a crash loses (the
    // delivery then runs again, and counts a crash it did not cause). Batches form by themselves
    // while one acknowledgement is on its way.
    while acks.recv_many(&mut received, BATCH).await > 0 {
        // The permits are released when this batch is done with, acknowledged or not.
        let mut numbers = Vec::with_capacity(received.len());
        let mut batch = Vec::with_capacity(received.len());
        let mut rooms = Vec::with_capacity(received.len());
        for (number, receipt, room) in received.drain(..) {
            numbers.push(number);
            batch.push(receipt);
            rooms.push(room);
        }
        let mut wait = Duration::from_millis(10);
        for _ in 0..5 {
            match store.ack(&batch).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(
                        deliveries = batch.len(),
                        "could not acknowledge deliveries, retrying in {wait:?}: {error}"
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
            }
        }
        held.forget(numbers);
        drop(rooms);
        progress.notify_waiters();
    }
}

/// Extends the leases of held deliveries every third of a lease.
pub(super) async fn keep_leases<S: Store>(store: Arc<S>, held: Arc<Held>, lease: Duration) {
    let mut every = tokio::time::interval(lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let receipts = held.receipts();
        if receipts.is_empty() {
            continue;
        }
        if let Err(error) = store.extend(&receipts, lease).await {
            tracing::warn!(
                deliveries = receipts.len(),
                "could not extend leases; deliveries may run twice: {error}"
            );
        }
    }
}
