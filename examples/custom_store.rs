//! A store of your own: durable delivery's `Store` contract, implemented in a page, and the
//! operator's side (`Admin`) in another.
//!
//! `Durable<S>` (retries, leases, dead letters, idempotency keys, delayed emits) works over any
//! type implementing `emitter::durable::Store`. This one keeps its deliveries in a `BTreeMap`
//! in memory: it survives nothing, but it shows every method a store must provide, and
//! `tests/example_custom_store.rs` runs the store contract suite on it
//! (`emitter::store_contract!` and `emitter::admin_contract!`, feature `store-contract`), the
//! same suite as the SQLite, PostgreSQL and Redis stores pass. A store of files, of another
//! database or of a message broker follows the same shape. Implementing `Admin` (listing by
//! state, cancelling, pausing, heartbeats) is what the console (`emitter` command, board) needs.
//!
//! `cargo run --example custom_store`

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use emitter::durable::admin::{
    minute_of, Activity, Admin, Cancel, Delivery as Listed, DeliveryDetail, DeliveryState, Filter,
    ListenerCounts, Page, Paused, Query, WorkerInfo,
};
use emitter::durable::{
    Backlog, Claimed, Counts, DeadLetter, Durable, Heartbeat, Inserted, NewEmit, Receipt, Setup,
    Store, StoredEvent, Subscription,
};
use emitter::{
    emit, listener, listeners, BackendError, BackendErrorKind, EmitId, Emitter, Event, EventMeta,
};
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
    /// Paused listeners, and since when.
    paused: BTreeMap<String, SystemTime>,
    /// Workers by id: their listeners, last heartbeat and expiry.
    workers: BTreeMap<String, WorkerInfo>,
    /// What the listeners did, by (minute, listener): delivered, failed, retried.
    activity: BTreeMap<(SystemTime, String), [u64; 3]>,
    /// The workers' subscriptions, by (event id, listener).
    subscriptions: BTreeMap<(String, String), Subscription>,
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
    /// The worker of the last claim.
    worker: Option<String>,
    /// The error of the last failed attempt.
    error: Option<String>,
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
            worker: None,
            error: None,
        };
        self.deliveries.insert(self.last_id, delivery);
    }

    /// Leases delivery `id` until `until`, as its next attempt; a lease it still had ran out
    /// without an outcome, which counts as a crash.
    fn lease(&mut self, id: u64, worker: &str, until: SystemTime) -> Option<Claimed> {
        self.last_lease += 1;
        let token = self.last_lease;
        let delivery = self.deliveries.get_mut(&id)?;
        delivery.attempts += 1;
        if delivery.lease.is_some() {
            delivery.crashes += 1;
        }
        delivery.lease = Some(token);
        delivery.due = until;
        delivery.worker = Some(worker.to_owned());
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
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        // A due suspect (still leased: its lease ran out; or with crashes since its last
        // failure) is claimed alone, the oldest first, unless its listener is paused.
        let suspect = state
            .deliveries
            .iter()
            .filter(|(_, d)| listeners.contains(&d.listener.as_str()) && d.due <= now)
            .filter(|(_, d)| !state.paused.contains_key(&d.listener))
            .filter(|(_, d)| d.lease.is_some() || d.crashes > 0)
            .map(|(id, d)| (d.due, *id))
            .min();
        if let Some((_, id)) = suspect {
            return Ok(state.lease(id, worker, now + lease).into_iter().collect());
        }
        let mut due: Vec<(SystemTime, u64)> = Vec::new();
        // A paused listener is not claimed, by any clone.
        for listener in listeners
            .iter()
            .filter(|name| !state.paused.contains_key(**name))
        {
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
            .filter_map(|(_, id)| state.lease(id, worker, until))
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
        error: &str,
    ) -> Result<(), BackendError> {
        if let Some((_, delivery)) = self.state().held(receipt) {
            delivery.due = run_at;
            delivery.lease = None;
            delivery.crashes = 0;
            delivery.error = Some(error.to_owned());
        }
        self.work.notify_waiters();
        Ok(())
    }

    async fn postpone(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        note: &str,
    ) -> Result<(), BackendError> {
        if let Some((_, delivery)) = self.state().held(receipt) {
            delivery.due = run_at;
            delivery.lease = None;
            delivery.crashes = 0;
            delivery.attempts = delivery.attempts.saturating_sub(1);
            delivery.error = Some(note.to_owned());
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
        state.revive(letter);
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

    async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        state.workers.retain(|_, worker| worker.expires_at > now);
        let mut listeners: Vec<String> = beat
            .listeners
            .iter()
            .map(|listener| listener.listener.clone())
            .collect();
        listeners.sort();
        state.workers.insert(
            beat.worker.clone(),
            WorkerInfo {
                worker: beat.worker.clone(),
                listeners,
                seen_at: now,
                expires_at: now + beat.ttl,
            },
        );
        let minute = minute_of(now);
        for listener in beat.listeners.iter().filter(|listener| !listener.is_idle()) {
            let sums = state
                .activity
                .entry((minute, listener.listener.clone()))
                .or_default();
            sums[0] += listener.delivered;
            sums[1] += listener.failed;
            sums[2] += listener.retried;
        }
        // An hour of activity is enough for the console.
        let kept = minute - Duration::from_secs(3600);
        state.activity.retain(|(minute, _), _| *minute >= kept);
        Ok(())
    }

    async fn subscribe(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> Result<(), BackendError> {
        let mut state = self.state();
        state
            .subscriptions
            .retain(|(_, listener), _| !replace.contains(&listener.as_str()));
        for subscription in subscriptions {
            let key = (subscription.event_id.clone(), subscription.listener.clone());
            state.subscriptions.insert(key, subscription.clone());
        }
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        Ok(self.state().subscriptions.values().cloned().collect())
    }

    async fn unsubscribe(&self, listener: &str) -> Result<u64, BackendError> {
        let mut state = self.state();
        let before = state.subscriptions.len();
        state.subscriptions.retain(|(_, name), _| name != listener);
        Ok((before - state.subscriptions.len()) as u64)
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BackendError> {
        let mut counts: BTreeMap<(String, String, u32), u64> = BTreeMap::new();
        for delivery in self.state().deliveries.values() {
            let event = &delivery.event;
            let key = (
                delivery.listener.clone(),
                event.event_id.clone(),
                event.version,
            );
            *counts.entry(key).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((listener, event_id, version), unfinished)| {
                Backlog::new(listener, event_id, unfinished).with_version(version)
            })
            .collect())
    }
}

// The operator's side. ----------------------------------------------------------------------

impl State {
    /// Puts a dead letter back among the deliveries, due now, its attempts from zero and its
    /// reason as the last error.
    fn revive(&mut self, letter: DeadLetter) {
        self.add(&letter.listener, letter.event, SystemTime::now());
        if let Some(delivery) = self.deliveries.get_mut(&self.last_id) {
            delivery.error = Some(letter.reason);
        }
    }

    /// The state of a delivery at `now`.
    fn state_of(delivery: &Delivery, now: SystemTime) -> DeliveryState {
        match (delivery.lease, delivery.due > now) {
            (_, false) => DeliveryState::Waiting,
            (None, true) => DeliveryState::Scheduled,
            (Some(_), true) => DeliveryState::Running,
        }
    }

    fn listed(id: u64, delivery: &Delivery, now: SystemTime) -> Listed {
        let state = Self::state_of(delivery, now);
        Listed {
            id: id.to_string(),
            state,
            listener: delivery.listener.clone(),
            event_id: delivery.event.event_id.clone(),
            emit_id: delivery.event.emit_id,
            emitted_at: delivery.event.emitted_at,
            due: delivery.due,
            attempts: delivery.attempts,
            worker: (state == DeliveryState::Running)
                .then(|| delivery.worker.clone())
                .flatten(),
            error: delivery.error.clone(),
        }
    }

    fn dead_listed(letter: &DeadLetter) -> Listed {
        Listed {
            id: letter.id.clone(),
            state: DeliveryState::Dead,
            listener: letter.listener.clone(),
            event_id: letter.event.event_id.clone(),
            emit_id: letter.event.emit_id,
            emitted_at: letter.event.emitted_at,
            due: letter.failed_at,
            attempts: letter.attempts,
            worker: None,
            error: Some(letter.reason.clone()),
        }
    }

    /// The dead letters `filter` matches, as positions in `dead`.
    fn matching_dead(&self, filter: &Filter) -> Vec<usize> {
        (0..self.dead.len())
            .filter(|&at| {
                let letter = &self.dead[at];
                let event = &letter.event;
                filter.matches(
                    &letter.listener,
                    &event.event_id,
                    event.emit_id,
                    letter.failed_at,
                )
            })
            .collect()
    }
}

/// Where a listed delivery sorts: a time (in nanoseconds since the epoch) and its id; a cursor
/// is the key of the last delivery of a page, written `time:id`.
type Key = (u128, u64);

fn key(time: SystemTime, id: &str) -> Key {
    let nanos = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    (nanos, id.parse().unwrap_or(0))
}

fn parse_cursor(cursor: &str) -> Option<Key> {
    let (time, id) = cursor.split_once(':')?;
    Some((time.parse().ok()?, id.parse().ok()?))
}

impl Admin for MapStore {
    async fn listener_counts(&self) -> Result<Vec<ListenerCounts>, BackendError> {
        let now = SystemTime::now();
        let state = self.state();
        let mut counts: BTreeMap<String, ListenerCounts> = BTreeMap::new();
        for delivery in state.deliveries.values() {
            let count = counts
                .entry(delivery.listener.clone())
                .or_insert_with(|| ListenerCounts::new(&delivery.listener));
            match State::state_of(delivery, now) {
                DeliveryState::Waiting => {
                    count.waiting += 1;
                    let oldest = count.oldest_waiting.get_or_insert(delivery.due);
                    *oldest = (*oldest).min(delivery.due);
                }
                DeliveryState::Scheduled => count.scheduled += 1,
                DeliveryState::Running => count.running += 1,
                DeliveryState::Dead => {}
            }
        }
        for letter in &state.dead {
            counts
                .entry(letter.listener.clone())
                .or_insert_with(|| ListenerCounts::new(&letter.listener))
                .dead += 1;
        }
        Ok(counts.into_values().collect())
    }

    async fn deliveries(&self, query: &Query) -> Result<Page, BackendError> {
        let now = SystemTime::now();
        let state = self.state();
        let filter = &query.filter;
        let mut rows: Vec<(Key, Listed)> = if query.state == DeliveryState::Dead {
            state
                .matching_dead(filter)
                .into_iter()
                .map(|at| {
                    let letter = &state.dead[at];
                    (
                        key(letter.failed_at, &letter.id),
                        State::dead_listed(letter),
                    )
                })
                .collect()
        } else {
            state
                .deliveries
                .iter()
                .filter(|(_, d)| State::state_of(d, now) == query.state)
                .filter(|(_, d)| {
                    filter.matches(&d.listener, &d.event.event_id, d.event.emit_id, d.due)
                })
                .map(|(id, d)| {
                    // Scheduled ones by due time, the others in emit order.
                    let time = if query.state == DeliveryState::Scheduled {
                        d.due
                    } else {
                        d.first_due
                    };
                    (key(time, &id.to_string()), State::listed(*id, d, now))
                })
                .collect()
        };
        rows.sort_by_key(|(key, _)| *key);
        let after = match query.cursor.as_deref() {
            None => None,
            Some(cursor) => Some(parse_cursor(cursor).ok_or_else(|| {
                BackendError::of(
                    BackendErrorKind::InvalidInput,
                    format!("`{cursor}` is not a cursor of this store's listings"),
                )
            })?),
        };
        let mut page: Vec<(Key, Listed)> = rows
            .into_iter()
            .filter(|(key, _)| after.is_none_or(|after| *key > after))
            .take(query.limit)
            .collect();
        let next = (page.len() == query.limit)
            .then(|| page.last().map(|(key, _)| format!("{}:{}", key.0, key.1)))
            .flatten();
        Ok(Page {
            deliveries: page.drain(..).map(|(_, listed)| listed).collect(),
            next,
        })
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryDetail>, BackendError> {
        let now = SystemTime::now();
        let state = self.state();
        if let Some(delivery) = id.parse().ok().and_then(|id| state.deliveries.get(&id)) {
            return Ok(Some(DeliveryDetail {
                delivery: State::listed(id.parse().unwrap_or(0), delivery, now),
                payload: delivery.event.payload.clone(),
                trace: delivery.event.trace.clone(),
            }));
        }
        Ok(state
            .dead
            .iter()
            .find(|letter| letter.id == id)
            .map(|letter| DeliveryDetail {
                delivery: State::dead_listed(letter),
                payload: letter.event.payload.clone(),
                trace: letter.event.trace.clone(),
            }))
    }

    async fn cancel(&self, id: &str) -> Result<Cancel, BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        if state.dead.iter().any(|letter| letter.id == id) {
            return Ok(Cancel::Dead);
        }
        let Some((id, delivery)) = id
            .parse::<u64>()
            .ok()
            .and_then(|id| Some((id, state.deliveries.get(&id)?)))
        else {
            return Ok(Cancel::NotFound);
        };
        if State::state_of(delivery, now) == DeliveryState::Running {
            return Ok(Cancel::Running);
        }
        state.deliveries.remove(&id);
        Ok(Cancel::Cancelled)
    }

    async fn replay_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let mut state = self.state();
        let matching = state.matching_dead(filter);
        let mut letters: Vec<DeadLetter> = matching
            .iter()
            .rev()
            .map(|at| state.dead.remove(*at))
            .collect();
        letters.reverse();
        for letter in letters {
            state.revive(letter);
        }
        drop(state);
        self.work.notify_waiters();
        Ok(matching.len() as u64)
    }

    async fn discard_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let mut state = self.state();
        let matching = state.matching_dead(filter);
        for at in matching.iter().rev() {
            state.dead.remove(*at);
        }
        Ok(matching.len() as u64)
    }

    async fn pause(&self, listener: &str) -> Result<bool, BackendError> {
        let mut state = self.state();
        if state.paused.contains_key(listener) {
            return Ok(false);
        }
        state.paused.insert(listener.to_owned(), SystemTime::now());
        Ok(true)
    }

    async fn resume(&self, listener: &str) -> Result<bool, BackendError> {
        let resumed = self.state().paused.remove(listener).is_some();
        self.work.notify_waiters();
        Ok(resumed)
    }

    async fn paused(&self) -> Result<Vec<Paused>, BackendError> {
        Ok(self
            .state()
            .paused
            .iter()
            .map(|(listener, since)| Paused {
                listener: listener.clone(),
                since: *since,
            })
            .collect())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        let now = SystemTime::now();
        Ok(self
            .state()
            .workers
            .values()
            .filter(|worker| worker.expires_at > now)
            .cloned()
            .collect())
    }

    async fn activity(&self, since: SystemTime) -> Result<Vec<Activity>, BackendError> {
        let from = minute_of(since);
        Ok(self
            .state()
            .activity
            .range((from, String::new())..)
            .map(
                |((minute, listener), [delivered, failed, retried])| Activity {
                    listener: listener.clone(),
                    minute: *minute,
                    delivered: *delivered,
                    failed: *failed,
                    retried: *retried,
                },
            )
            .collect())
    }

    async fn discard_listener(&self, listener: &str) -> Result<u64, BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        let before = state.deliveries.len() + state.dead.len();
        state.deliveries.retain(|_, d| {
            d.listener != listener || State::state_of(d, now) == DeliveryState::Running
        });
        state.dead.retain(|letter| letter.listener != listener);
        Ok((before - state.deliveries.len() - state.dead.len()) as u64)
    }

    async fn rehome(&self, from: &str, to: &str) -> Result<u64, BackendError> {
        let now = SystemTime::now();
        let mut state = self.state();
        let mut moved = 0;
        for delivery in state.deliveries.values_mut() {
            if delivery.listener == from && State::state_of(delivery, now) != DeliveryState::Running
            {
                delivery.listener = to.to_owned();
                moved += 1;
            }
        }
        for letter in state
            .dead
            .iter_mut()
            .filter(|letter| letter.listener == from)
        {
            letter.listener = to.to_owned();
            moved += 1;
        }
        drop(state);
        self.work.notify_waiters();
        Ok(moved)
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
