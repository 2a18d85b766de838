//! Times as stores keep them: milliseconds since the Unix epoch.

use std::time::{Duration, SystemTime};

/// Milliseconds since the Unix epoch. Times before the epoch are 0.
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, millis)
}

/// The time `millis` milliseconds after the Unix epoch (negative values give the epoch).
pub(crate) fn from_unix_millis(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// Whole milliseconds of `duration`, at most `i64::MAX`.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
