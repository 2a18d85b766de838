//! Counters of what the emitter did, readable at any time and exported through `metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to the deliveries of one (event, listener) pair.
///
/// Written by the emitter's scheduler (and by delivery tasks for retries and outcomes), read by
/// [`Emitter::metrics`](crate::Emitter::metrics): relaxed atomics, no locks.
#[derive(Debug, Default)]
pub(crate) struct DeliveryStats {
    running: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
}

/// A copy of [`DeliveryStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatsSnapshot {
    pub(crate) running: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) retried: u64,
}

impl DeliveryStats {
    /// A delivery went on as a task.
    pub(crate) fn running(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
        export::gauge("emitter_in_flight", 1.0);
    }

    /// A delivery task ended (or was aborted).
    pub(crate) fn stopped(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        export::gauge("emitter_in_flight", -1.0);
    }

    pub(crate) fn delivered(&self, event_id: &'static str, listener: &'static str) {
        self.delivered_many(1, event_id, listener);
    }

    /// `deliveries` deliveries succeeded, counted in one update.
    pub(crate) fn delivered_many(
        &self,
        deliveries: u64,
        event_id: &'static str,
        listener: &'static str,
    ) {
        self.delivered.fetch_add(deliveries, Ordering::Relaxed);
        export::counter_by(
            "emitter_delivered_total",
            event_id,
            Some(listener),
            deliveries,
        );
    }

    pub(crate) fn failed(&self, event_id: &'static str, listener: &'static str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        export::counter("emitter_failed_total", event_id, Some(listener));
    }

    pub(crate) fn retried(&self, event_id: &'static str, listener: &'static str) {
        self.retried.fetch_add(1, Ordering::Relaxed);
        export::counter("emitter_retried_total", event_id, Some(listener));
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            running: self.running.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }
}

/// Successful deliveries counted where they ran, per (event, listener) pair of the table, until
/// [`flush`](Tally::flush) adds them to the pairs' [`DeliveryStats`] in one update each: the
/// scheduler flushes once per chunk of events rather than touching a shared counter per
/// delivery.
#[derive(Debug)]
pub(crate) struct Tally {
    counts: Vec<u64>,
    /// The pairs whose count is not zero.
    touched: Vec<usize>,
}

impl Tally {
    /// A tally for a table of `pairs` pairs.
    pub(crate) fn new(pairs: usize) -> Self {
        Tally {
            counts: vec![0; pairs],
            touched: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, pair: usize) {
        if let Some(count) = self.counts.get_mut(pair) {
            if *count == 0 {
                self.touched.push(pair);
            }
            *count += 1;
        }
    }

    /// Adds the counts to the table's counters and starts over.
    pub(crate) fn flush(&mut self, table: &crate::table::EventTable) {
        for pair in self.touched.drain(..) {
            let count = std::mem::take(&mut self.counts[pair]);
            if let Some((event_id, listener)) = table.pair(pair) {
                listener
                    .stats
                    .delivered_many(count, event_id, listener.name);
            }
        }
    }
}

/// Counters of one emitter, from [`Emitter::metrics`](crate::Emitter::metrics).
///
/// A delivery is one (event, listener) pair: an event with three listeners makes three. With the
/// cargo feature `metrics`, the same counters are exported through the `metrics` facade as
/// `emitter_emitted_total`, `emitter_rejected_total` (labelled by `event`),
/// `emitter_delivered_total`, `emitter_failed_total`, `emitter_retried_total` (labelled by
/// `event` and `listener`), and the gauges `emitter_queued` and `emitter_in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Events accepted by `emit` (with or without listeners).
    pub emitted: u64,
    /// Events refused by `emit` because the emitter was full.
    pub rejected: u64,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Deliveries that failed on their last attempt.
    pub failed: u64,
    /// Retries scheduled after a failed attempt.
    pub retried: u64,
    /// Deliveries waiting to start: the queue depth.
    pub queued: u64,
    /// Deliveries that did not finish at their first poll (or failed it with attempts left) and
    /// have not finished since, including those waiting to retry.
    pub in_flight: u64,
    /// Events accepted and not yet handled by all their listeners.
    pub pending_events: u64,
}

impl Metrics {
    pub(crate) fn add(&mut self, stats: StatsSnapshot) {
        self.delivered += stats.delivered;
        self.failed += stats.failed;
        self.retried += stats.retried;
        self.in_flight += stats.running;
    }
}

#[cfg(feature = "metrics")]
pub(crate) mod export {
    pub(crate) fn counter(
        name: &'static str,
        event_id: &'static str,
        listener: Option<&'static str>,
    ) {
        match listener {
            Some(listener) => {
                metrics::counter!(name, "event" => event_id, "listener" => listener).increment(1)
            }
            None => metrics::counter!(name, "event" => event_id).increment(1),
        }
    }

    pub(crate) fn counter_by(
        name: &'static str,
        event_id: &'static str,
        listener: Option<&'static str>,
        count: u64,
    ) {
        match listener {
            Some(listener) => metrics::counter!(name, "event" => event_id, "listener" => listener)
                .increment(count),
            None => metrics::counter!(name, "event" => event_id).increment(count),
        }
    }

    pub(crate) fn gauge(name: &'static str, delta: f64) {
        metrics::gauge!(name).increment(delta);
    }
}

#[cfg(not(feature = "metrics"))]
pub(crate) mod export {
    #[inline(always)]
    pub(crate) fn counter(
        _name: &'static str,
        _event_id: &'static str,
        _listener: Option<&'static str>,
    ) {
    }

    #[inline(always)]
    pub(crate) fn counter_by(
        _name: &'static str,
        _event_id: &'static str,
        _listener: Option<&'static str>,
        _count: u64,
    ) {
    }

    #[inline(always)]
    pub(crate) fn gauge(_name: &'static str, _delta: f64) {}
}
