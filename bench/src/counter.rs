//! Counters that listeners add to, each on its own cache line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A counter alone on a cache line (128 bytes covers adjacent-line prefetching), so listeners
/// running on two threads do not slow each other down through false sharing: the baseline runs
/// them on one thread and would not pay that cost.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// One shared counter: cheap to clone, given to an emitter with `.state(counter)`.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<Padded>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        // Relaxed: the reader looks only after `wait_idle` or a join, which synchronize.
        self.0 .0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0 .0.load(Ordering::Relaxed)
    }
}

/// One counter per listener of a workload, indexed by the listener's slot.
#[derive(Debug, Clone)]
pub struct Counters(Arc<[Padded]>);

impl Counters {
    /// `len` counters at zero.
    pub fn new(len: usize) -> Self {
        Counters((0..len).map(|_| Padded::default()).collect())
    }

    /// Adds `n` to counter `slot`.
    pub fn add(&self, slot: usize, n: u64) {
        self.0[slot].0.fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter's value, by slot.
    pub fn values(&self) -> Vec<u64> {
        self.0.iter().map(|c| c.0.load(Ordering::Relaxed)).collect()
    }
}
