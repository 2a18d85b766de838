//! Times on the command line: read as RFC 3339 instants or "how long ago", written as RFC 3339
//! in UTC and as ages.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::failure::Failure;

/// `2024-05-01T12:00:00Z` (any RFC 3339 offset), or how long before `now`: `90s`, `15m`, `2h`,
/// `3d`.
pub(crate) fn parse(text: &str, now: SystemTime) -> Result<SystemTime, Failure> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc).into());
    }
    let bad = || {
        Failure::usage(format!(
            "`{}` is not a time: write an RFC 3339 instant (2024-05-01T12:00:00Z) or how long \
             ago (90s, 15m, 2h, 3d)",
            text.escape_debug()
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let ago = number.checked_mul(seconds).ok_or_else(bad)?;
    now.checked_sub(Duration::from_secs(ago)).ok_or_else(bad)
}

/// RFC 3339 in UTC, to the millisecond.
pub(crate) fn instant(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration as a person reads it: `45s`, `12m 5s`, `3h 20m`, `2d 4h`.
pub(crate) fn age(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes, seconds) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// How long before `now` `time` was (zero if it is later).
pub(crate) fn since(time: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(time).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_instants_or_ages() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse("90s", now).ok(), Some(now - Duration::from_secs(90)));
        assert_eq!(parse("2h", now).ok(), Some(now - Duration::from_secs(7200)));
        assert_eq!(
            parse("1970-01-01T00:00:10+00:00", now).ok(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
        for bad in ["", "5", "m", "5w", "yesterday", "99999999999999999999d"] {
            let failure = parse(bad, now).expect_err(bad);
            assert!(
                failure.message.contains("is not a time"),
                "{bad}: {failure}"
            );
        }
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        let ages: Vec<String> = [45, 725, 12_000, 180_000]
            .map(|seconds| age(Duration::from_secs(seconds)))
            .into();
        assert_eq!(ages, ["45s", "12m 5s", "3h 20m", "2d 2h"]);
    }
}
