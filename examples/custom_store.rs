//! A store of your own: durable delivery's `Store` contract, implemented in a page.
//!
//! `Durable<S>` (retries, leases, dead letters, idempotency keys, delayed emits) works over any
//! type implementing `emitter::durable::Store`. This one keeps its deliveries in a `BTreeMap`
//! in memory: it survives nothing, but it shows every method a store must provide, and
//! `tests/example_custom_store.rs` runs the store contract suite on it
//! (`emitter::store_contract!`, feature `store-contract`), the same suite as the SQLite,
//! PostgreSQL and Redis stores pass. A store of files, of another database or of a message
//! broker follows the same shape.
//!
//! `cargo run --example custom_store`

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use emitter::durable::{
    Claimed, Counts, DeadLetter, Durable, Inserted, NewEmit, Receipt, Setup, Store, StoredEvent,
};
use emitter::{emit, listener, listeners, BackendError, EmitId, Emitter, Event, EventMeta};
use tokio::sync::Notify;

/// Deliveries in a map, shared by its clones: two clones are two workers on one store.
#[derive(Clone, Default)]
pub struct MapStore {
    state: Arc<Mutex<State>>,
    work: Arc<Notify>,
}

#[derive(Default)]
struct State {
    /// The last delivery id and lease token handed out.
    last_id: u64,
    last_lease: u64,
    deliveries: BTreeMap<u64, Delivery>,
    /// Dead letters in the order they died.
    dead: Vec<DeadLetter>,
    /// Idempotency keys and when they expire.
    keys: HashMap<String, SystemTime>,
    key_retention: Duration,
    /// Listeners with a concurrency limit, and their limit.
    concurrency: BTreeMap<&'static str, NonZeroU32>,
}

struct Delivery {
    listener: String,
    event: StoredEvent,
    /// Due at; while leased, when the lease runs out.
    due: SystemTime,
    /// When it was first due: with its id, its place in its listener's emit order.
    first_due: SystemTime,
    /// Claims so far.
    attempts: u32,
    /// Claims since the last failed attempt that ended without an outcome (their lease ran
    /// out); more than 0 makes it a suspect, claimed alone.
    crashes: u32,
    /// The token of the last claim; `None` once released, or released for a retry.
    lease: Option<u64>,
}

impl MapStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn add(&mut self, listener: &str, event: StoredEvent, due: SystemTime) {
        self.last_id += 1;
        let delivery = Delivery {
            listener: listener.to_owned(),
            event,
            due,
            first_due: due,
            attempts: 0,
            crashes: 0,
            lease: None,
        };
        self.deliveries.insert(self.last_id, delivery);
    }

    /// Leases delivery `id` until `until`, as its next attempt; a lease it still had ran out
    /// without an outcome, which counts as a crash.
    fn lease(&mut self, id: u64, until: SystemTime) -> Option<Claimed> {
        self.last_lease += 1;
        let token = self.last_lease;
        let delivery = self.deliveries.get_mut(&id)?;
        delivery.attempts += 1;
        if delivery.lease.is_some() {
            delivery.crashes += 1;
        }
        delivery.lease = Some(token);
        delivery.due = until;
        Some(Claimed {
            receipt: Receipt::new(id, token),
            listener: delivery.listener.clone(),
            event: delivery.event.clone(),
            attempt: delivery.attempts,
            crashes: delivery.crashes,
        })
    }

    /// The delivery `receipt` holds, if its claim is still the last one.
    fn held(&mut self, receipt: &Receipt) -> Option<(u64, &mut Delivery)> {
        let (id, lease) = receipt.parse::<u64, u64>()?;
        let delivery = self.deliveries.get_mut(&id)?;
        (delivery.lease == Some(lease)).then_some((id, delivery))
    }
}

impl Store for MapStore {
    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        let mut state = self.state();
        state.key_retention = setup.key_retention;
        state.concurrency = setup.concurrency.clone();
        Ok(())
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        state.keys.retain(|_, expires| *expires > now);
        let mut inserted = Inserted::default();
        for emit in emits {
            if let Some(key) = &emit.key {
                if state.keys.contains_key(key) {
                    inserted.duplicates += 1;
                    continue;
                }
                let expires = now + state.key_retention;
                state.keys.insert(key.clone(), expires);
            }
            for (index, listener) in emit.listeners.iter().enumerate() {
                if !emit.listeners[..index].contains(listener) {
                    state.add(listener, emit.event.clone(), emit.run_at);
                }
            }
            inserted.stored += 1;
        }
        drop(state);
        self.work.notify_waiters();
        Ok(inserted)
    }

    async fn claim(
        &self,
        _worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        // A due suspect (still leased: its lease ran out; or with crashes since its last
        // failure) is claimed alone, the oldest first.
        let suspect = state
            .deliveries
            .iter()
            .filter(|(_, d)| listeners.contains(&d.listener.as_str()) && d.due <= now)
            .filter(|(_, d)| d.lease.is_some() || d.crashes > 0)
            .map(|(id, d)| (d.due, *id))
            .min();
        if let Some((_, id)) = suspect {
            return Ok(state.lease(id, now + lease).into_iter().collect());
        }
        let mut due: Vec<(SystemTime, u64)> = Vec::new();
        for listener in listeners {
            let mine = state
                .deliveries
                .iter()
                .filter(|(_, d)| d.listener == *listener);
            match state.concurrency.get(listener) {
                // Due ones of all its deliveries.
                None => due.extend(
                    mine.filter(|(_, d)| d.due <= now && d.lease.is_none() && d.crashes == 0)
                        .map(|(id, d)| (d.due, *id)),
                ),
                // Due ones among its first `limit` in emit order: leased ones and those waiting
                // for a retry hold their place.
                Some(limit) => {
                    let mut order: Vec<(SystemTime, u64, SystemTime, bool)> = mine
                        .filter(|(_, d)| d.first_due <= now)
                        .map(|(id, d)| {
                            let suspect = d.lease.is_some() || d.crashes > 0;
                            (d.first_due, *id, d.due, suspect)
                        })
                        .collect();
                    order.sort_unstable();
                    due.extend(
                        order
                            .into_iter()
                            .take(limit.get() as usize)
                            .filter(|(_, _, at, suspect)| *at <= now && !suspect)
                            .map(|(_, id, at, _)| (at, id)),
                    );
                }
            }
        }
        due.sort_unstable();
        let until = now + lease;
        Ok(due
            .into_iter()
            .take(limit)
            .filter_map(|(_, id)| state.lease(id, until))
            .collect())
    }

    async fn extend(&self, receipts: &[Receipt], lease: Duration) -> Result<(), BackendError> {
        let mut state = self.state();
        for receipt in receipts {
            if let Some((_, delivery)) = state.held(receipt) {
                delivery.due = SystemTime::now() + lease;
            }
        }
        Ok(())
    }

    async fn release(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        let mut state = self.state();
        for receipt in receipts {
            if let Some((_, delivery)) = state.held(receipt) {
                delivery.due = SystemTime::now();
                delivery.lease = None;
                delivery.attempts = delivery.attempts.saturating_sub(1);
            }
        }
        drop(state);
        self.work.notify_waiters();
        Ok(())
    }

    async fn unfinished(&self, emits: RangeInclusive<EmitId>) -> Result<u64, BackendError> {
        let state = self.state();
        Ok(state
            .deliveries
            .values()
            .filter(|delivery| emits.contains(&delivery.event.emit_id))
            .count() as u64)
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        let mut state = self.state();
        for receipt in receipts {
            if let Some((id, _)) = state.held(receipt) {
                state.deliveries.remove(&id);
            }
        }
        Ok(())
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        _error: &str,
    ) -> Result<(), BackendError> {
        if let Some((_, delivery)) = self.state().held(receipt) {
            delivery.due = run_at;
            delivery.lease = None;
            delivery.crashes = 0;
        }
        self.work.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        let mut state = self.state();
        let Some((id, _)) = state.held(receipt) else {
            return Ok(());
        };
        if let Some(delivery) = state.deliveries.remove(&id) {
            state.dead.push(DeadLetter {
                id: id.to_string(),
                listener: delivery.listener,
                event: delivery.event,
                attempts: delivery.attempts,
                reason: reason.to_owned(),
                failed_at: SystemTime::now(),
            });
        }
        Ok(())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        Ok(self.state().dead.iter().take(limit).cloned().collect())
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        let mut state = self.state();
        let Some(at) = state.dead.iter().position(|letter| letter.id == id) else {
            return Ok(false);
        };
        let letter = state.dead.remove(at);
        state.add(&letter.listener, letter.event, SystemTime::now());
        drop(state);
        self.work.notify_waiters();
        Ok(true)
    }

    async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        let mut state = self.state();
        let before = state.dead.len();
        state.dead.retain(|letter| letter.id != id);
        Ok(state.dead.len() < before)
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        let now = SystemTime::now();
        let state = self.state();
        let leased = state
            .deliveries
            .values()
            .filter(|delivery| delivery.lease.is_some() && delivery.due > now)
            .count() as u64;
        Ok(Counts {
            waiting: state.deliveries.len() as u64 - leased,
            leased,
            dead: state.dead.len() as u64,
        })
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }
}

#[derive(Event, Debug, Clone)]
pub struct OrderShipped {
    pub order: u64,
}

#[listener(events = [OrderShipped])]
async fn notify_customer(order: u64, meta: EventMeta) {
    println!("order {order} shipped (attempt {})", meta.attempt());
}

/// Ships three orders through an emitter on a `MapStore`, waits until the store holds nothing
/// unfinished, and returns its counts.
pub async fn run() -> Result<Counts, Box<dyn Error>> {
    let backend = Durable::new(MapStore::default());
    let emitter = Emitter::builder()
        .backend(backend.clone())
        .listeners(listeners![notify_customer])
        .start()
        .await?;
    for order in 1..=3u64 {
        emit!(emitter, OrderShipped, order = order)?;
    }
    emitter.wait_idle().await;
    backend.wait_settled().await?;
    let counts = backend.counts().await?;
    emitter.shutdown().await?;
    Ok(counts)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let counts = run().await?;
    println!("left in the store: {counts:?}");
    Ok(())
}
