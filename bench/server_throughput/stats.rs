//! What the listeners saw, and the arithmetic of the results.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use emitter_bench::profile::Stats;

use crate::workers::WorkerReport;

/// What a worker's listener (or its baseline loop) records: how many events, their sum, which
/// numbers (to find duplicates and losses across processes), and when the first and the last
/// came (Unix nanoseconds, comparable across the processes of one machine).
#[derive(Clone)]
pub(crate) struct Tally(Arc<Seen>);

pub(crate) struct Seen {
    pub(crate) events: u64,
    pub(crate) count: AtomicU64,
    pub(crate) sum: AtomicU64,
    /// Numbers at or beyond `events`: not ours.
    pub(crate) strange: AtomicU64,
    pub(crate) first_ns: AtomicU64,
    pub(crate) last_ns: AtomicU64,
    pub(crate) bits: Vec<AtomicU64>,
}

impl Tally {
    pub(crate) fn new(events: u64) -> Tally {
        Tally(Arc::new(Seen {
            events,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            strange: AtomicU64::new(0),
            first_ns: AtomicU64::new(u64::MAX),
            last_ns: AtomicU64::new(0),
            bits: (0..events.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }))
    }

    pub(crate) fn add(&self, n: u64) {
        let seen = &self.0;
        let now = unix_nanos(SystemTime::now());
        seen.count.fetch_add(1, Ordering::Relaxed);
        seen.sum.fetch_add(n, Ordering::Relaxed);
        match usize::try_from(n / 64)
            .ok()
            .and_then(|word| seen.bits.get(word))
        {
            Some(word) if n < seen.events => {
                word.fetch_or(1 << (n % 64), Ordering::Relaxed);
            }
            _ => {
                seen.strange.fetch_add(1, Ordering::Relaxed);
            }
        }
        seen.first_ns.fetch_min(now, Ordering::Relaxed);
        seen.last_ns.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn report(&self, failed: u64, profile: Option<&Stats>) -> WorkerReport {
        let seen = &self.0;
        WorkerReport {
            count: seen.count.load(Ordering::Acquire),
            sum: seen.sum.load(Ordering::Acquire),
            strange: seen.strange.load(Ordering::Acquire),
            failed,
            first_ns: seen.first_ns.load(Ordering::Acquire),
            last_ns: seen.last_ns.load(Ordering::Acquire),
            cpu_ns: 0,
            bits: seen
                .bits
                .iter()
                .map(|word| word.load(Ordering::Acquire))
                .collect(),
            profile: profile.map(Stats::snapshot),
        }
    }
}

pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// `0 + 1 + ... + (n - 1)`: the sum of the numbers of `n` events.
pub(crate) fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

pub(crate) fn median(samples: &mut [f64]) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    match samples.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => samples[len / 2],
        len => (samples[len / 2 - 1] + samples[len / 2]) / 2.0,
    }
}

pub(crate) fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
