//! A store wrapper that counts and times each call the durable engine makes, for the
//! `--profile` option of the throughput examples.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::{
    Backlog, Claimed, Counts, DeadLetter, Inserted, NewEmit, Receipt, Setup, Store, Subscription,
};
use emitter::BackendError;

/// A store that counts and times each call of the engine, for `--profile`.
#[derive(Clone)]
pub struct Profiled<S> {
    /// The store profiled.
    pub store: S,
    /// What its calls took.
    pub stats: Arc<Stats>,
}

/// The store methods profiled, in the order they are printed.
pub const OPS: [&str; 7] = [
    "insert", "claim", "ack", "extend", "counts", "wait", "other",
];

/// A store method, or a group of them (`Other`: retries and dead letters).
#[derive(Clone, Copy)]
pub enum Op {
    Insert,
    Claim,
    Ack,
    Extend,
    Counts,
    Wait,
    Other,
}

/// Calls, items (rows or receipts) and nanoseconds awaited, per method.
#[derive(Default)]
pub struct Stats {
    ops: [[AtomicU64; 3]; 7],
    /// Claims that returned nothing.
    empty_claims: AtomicU64,
    /// Claims that returned 1 to 7 deliveries.
    small_claims: AtomicU64,
}

impl Stats {
    pub fn record(&self, op: Op, items: usize, started: Instant) {
        let [calls, total, nanos] = &self.ops[op as usize];
        calls.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(items as u64, Ordering::Relaxed);
        nanos.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub async fn time<T>(&self, op: Op, items: usize, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.await;
        self.record(op, items, started);
        result
    }

    pub fn snapshot(&self) -> Profile {
        Profile {
            ops: self
                .ops
                .each_ref()
                .map(|op| op.each_ref().map(|value| value.load(Ordering::Relaxed))),
            empty_claims: self.empty_claims.load(Ordering::Relaxed),
            small_claims: self.small_claims.load(Ordering::Relaxed),
        }
    }
}

/// A [`Stats`] read out, summable across processes.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    ops: [[u64; 3]; 7],
    empty_claims: u64,
    small_claims: u64,
}

impl Profile {
    pub fn add(&mut self, other: &Profile) {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            for (mine, theirs) in mine.iter_mut().zip(theirs) {
                *mine += theirs;
            }
        }
        self.empty_claims += other.empty_claims;
        self.small_claims += other.small_claims;
    }

    /// `insert=calls/items/nanos ... empty_claims=n small_claims=n`.
    pub fn fields(&self) -> String {
        let mut fields: Vec<String> = OPS
            .iter()
            .zip(&self.ops)
            .map(|(name, [calls, items, nanos])| format!("{name}={calls}/{items}/{nanos}"))
            .collect();
        fields.push(format!("empty_claims={}", self.empty_claims));
        fields.push(format!("small_claims={}", self.small_claims));
        fields.join(" ")
    }

    /// Reads one field of [`Profile::fields`]; `false` if it is not one.
    pub fn read(&mut self, name: &str, value: &str) -> bool {
        let int = |text: &str| text.parse::<u64>().ok();
        let slot = match name {
            "empty_claims" => &mut self.empty_claims,
            "small_claims" => &mut self.small_claims,
            _ => {
                let Some(index) = OPS.iter().position(|op| *op == name) else {
                    return false;
                };
                let parts: Option<Vec<u64>> = value.split('/').map(int).collect();
                let Some(&[calls, items, nanos]) = parts.as_deref() else {
                    return false;
                };
                self.ops[index] = [calls, items, nanos];
                return true;
            }
        };
        match int(value) {
            Some(n) => {
                *slot = n;
                true
            }
            None => false,
        }
    }

    pub fn print(&self, events: u64) {
        let mut round_trips = 0;
        for (name, [calls, items, nanos]) in OPS.iter().zip(&self.ops) {
            if *name != "wait" {
                round_trips += calls;
            }
            let millis = *nanos as f64 / 1e6;
            let (per_call, per_item) = if *calls == 0 {
                (0.0, 0.0)
            } else {
                (
                    millis * 1000.0 / *calls as f64,
                    *items as f64 / *calls as f64,
                )
            };
            println!(
                "profile:   {name:<7} calls={calls:<6} items={items:<7} items/call={per_item:<6.1} \
                 awaited_ms={millis:<9.1} us/call={per_call:.0}"
            );
        }
        println!(
            "profile:   claims empty={} with 1..7 deliveries={}; store calls per event, waits \
             excluded: {:.3}",
            self.empty_claims,
            self.small_claims,
            round_trips as f64 / events as f64
        );
    }
}

impl<S: Store> Store for Profiled<S> {
    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        self.store.open(setup).await
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        self.stats
            .time(Op::Insert, emits.len(), self.store.insert(emits))
            .await
    }

    async fn claim(
        &self,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let started = Instant::now();
        let claimed = self.store.claim(worker, listeners, limit, lease).await;
        let rows = claimed.as_ref().map_or(0, Vec::len);
        self.stats.record(Op::Claim, rows, started);
        match rows {
            0 => self.stats.empty_claims.fetch_add(1, Ordering::Relaxed),
            1..=7 => self.stats.small_claims.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        claimed
    }

    async fn extend(&self, receipts: &[Receipt], lease: Duration) -> Result<(), BackendError> {
        self.stats
            .time(
                Op::Extend,
                receipts.len(),
                self.store.extend(receipts, lease),
            )
            .await
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        self.stats
            .time(Op::Ack, receipts.len(), self.store.ack(receipts))
            .await
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        self.stats
            .time(Op::Other, 1, self.store.retry(receipt, run_at, error))
            .await
    }

    async fn postpone(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        note: &str,
    ) -> Result<(), BackendError> {
        self.stats
            .time(Op::Other, 1, self.store.postpone(receipt, run_at, note))
            .await
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        self.stats
            .time(Op::Other, 1, self.store.dead_letter(receipt, reason))
            .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        self.store.dead_letters(limit).await
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        self.store.replay(id).await
    }

    async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        self.store.discard(id).await
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        self.stats.time(Op::Counts, 0, self.store.counts()).await
    }

    async fn release(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        self.stats
            .time(Op::Other, receipts.len(), self.store.release(receipts))
            .await
    }

    async fn unfinished(
        &self,
        emits: std::ops::RangeInclusive<emitter::EmitId>,
    ) -> Result<u64, BackendError> {
        self.stats
            .time(Op::Counts, 0, self.store.unfinished(emits))
            .await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.stats
            .time(Op::Wait, 0, self.store.wait_for_work(timeout))
            .await;
    }

    // Once at start, and once per refresh interval: not profiled.
    async fn subscribe(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> Result<(), BackendError> {
        self.store.subscribe(replace, subscriptions).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        self.store.subscriptions().await
    }

    async fn unsubscribe(&self, listener: &str) -> Result<u64, BackendError> {
        self.store.unsubscribe(listener).await
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BackendError> {
        self.store.backlog().await
    }
}
