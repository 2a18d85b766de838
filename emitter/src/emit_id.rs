//! [`EmitId`]: the id of one emit, unique across emitters, processes and machines.

use std::fmt;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The unique id of one emit, shared by every delivery of that event.
///
/// Ids are unique within a process and, with overwhelming probability, across processes: the high
/// 64 bits identify the emitter (a hash of the process id, the time and a random seed), the low
/// 64 bits count the emitter's emits from 1. So the emits of one emitter are one range of ids,
/// in emit order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmitId(u128);

impl EmitId {
    /// An id outside every emitter's range, for what is not an emit (a worker's name, say).
    pub(crate) fn unique() -> Self {
        EmitIds::new().next()
    }

    /// Where the id is in its emitter's range: the emitter's `count`-th emit.
    pub(crate) fn count(self) -> u64 {
        self.0 as u64
    }

    /// The id as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// An id from a number previously given by [`EmitId::as_u128`].
    pub fn from_u128(id: u128) -> Self {
        EmitId(id)
    }
}

impl fmt::Display for EmitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EmitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmitId({self})")
    }
}

/// The emit ids of one emitter: its own high 64 bits and a counter.
#[derive(Debug)]
pub(crate) struct EmitIds {
    lane: u64,
    count: AtomicU64,
}

impl EmitIds {
    pub(crate) fn new() -> Self {
        use std::hash::BuildHasher;
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        hasher.write_u128(nanos);
        Self {
            lane: hasher.finish(),
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn next(&self) -> EmitId {
        self.with_count(self.count.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// The id this emitter gave as its `count`-th (see [`EmitId::count`]).
    pub(crate) fn with_count(&self, count: u64) -> EmitId {
        EmitId((u128::from(self.lane) << 64) | u128::from(count))
    }

    /// Every id given so far, first to last; `None` before the first.
    pub(crate) fn given(&self) -> Option<std::ops::RangeInclusive<EmitId>> {
        let count = self.count.load(Ordering::Relaxed);
        let lane = u128::from(self.lane) << 64;
        (count > 0).then(|| EmitId(lane | 1)..=EmitId(lane | u128::from(count)))
    }
}
