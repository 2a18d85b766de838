//! Durations written in attributes (`"250ms"`, `"30s"`, `"5m"`, `"1h"`), read at compile time.

use std::fmt;

// Accepted syntax: an integer (digits, `_` allowed after the first) followed by a unit, with
// optional spaces around and between the two:
//     250ms   30s   5m   1h   10_000ms
/// The duration `text` in milliseconds.
pub(crate) fn parse_millis(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(DurationError::Malformed(text.to_owned()));
    }
    let end = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    if unit.starts_with('.') {
        return Err(DurationError::Fraction(text.to_owned()));
    }
    let unit = unit.trim_start();
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(DurationError::NoUnit(number.to_owned())),
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    number
        .replace('_', "")
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(millis_per_unit))
        .ok_or_else(|| DurationError::TooLong(text.to_owned()))
}

/// Why a duration could not be read; `Display` is the compile error's text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Does not start with a number.
    Malformed(String),
    /// A number without a unit, such as `30`.
    NoUnit(String),
    /// A unit other than `ms`, `s`, `m` and `h`.
    UnknownUnit { text: String, unit: String },
    /// A number with a fractional part, such as `1.5s`.
    Fraction(String),
    /// More milliseconds than a `u64` holds.
    TooLong(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Malformed(text) => write!(
                f,
                "expected a duration such as `\"250ms\"`, `\"30s\"`, `\"5m\"` or `\"1h\"`, found `\"{text}\"`"
            ),
            DurationError::NoUnit(number) => write!(
                f,
                "the duration `{number}` has no unit: write `\"{number}s\"` for seconds, or use `ms`, `m` or `h`"
            ),
            DurationError::UnknownUnit { text, unit } => {
                write!(f, "unknown unit `{unit}` in `{text}`: ")?;
                match known_unit_for(unit) {
                    Some(known) => write!(
                        f,
                        "write `\"{}{known}\"`",
                        text.trim_end_matches(unit.as_str()).trim_end()
                    ),
                    None => write!(f, "the units are `ms`, `s`, `m` and `h`"),
                }
            }
            DurationError::Fraction(text) => write!(
                f,
                "the duration `{text}` is not a whole number: write it in a smaller unit, e.g. `\"1500ms\"` rather than `\"1.5s\"`"
            ),
            DurationError::TooLong(text) => write!(
                f,
                "the duration `{text}` is too long: it must fit in a `u64` of milliseconds (about 584 million years)"
            ),
        }
    }
}

/// The unit a user most likely meant by `unit`.
fn known_unit_for(unit: &str) -> Option<&'static str> {
    match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => Some("ms"),
        "s" | "sec" | "secs" | "second" | "seconds" => Some("s"),
        "m" | "min" | "mins" | "minute" | "minutes" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_millis, DurationError};

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("2s"), Ok(2_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
    }

    #[test]
    fn allows_zero_underscores_and_spaces() {
        assert_eq!(parse_millis("0s"), Ok(0));
        assert_eq!(parse_millis("10_000ms"), Ok(10_000));
        assert_eq!(parse_millis(" 30 s "), Ok(30_000));
    }

    #[test]
    fn rejects_what_is_not_a_number_and_a_unit() {
        for text in ["", "s", "ms10", "-1s", "+1s", "_1s"] {
            assert_eq!(
                parse_millis(text),
                Err(DurationError::Malformed(text.trim().to_owned())),
                "{text:?}"
            );
        }
        assert_eq!(parse_millis("30"), Err(DurationError::NoUnit("30".into())));
        assert_eq!(
            parse_millis("1.5s"),
            Err(DurationError::Fraction("1.5s".into()))
        );
    }

    #[test]
    fn rejects_unknown_units_and_suggests_the_meant_one() {
        let error = parse_millis("30sec").unwrap_err();
        assert_eq!(
            error,
            DurationError::UnknownUnit {
                text: "30sec".into(),
                unit: "sec".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "unknown unit `sec` in `30sec`: write `\"30s\"`"
        );
        assert_eq!(
            parse_millis("5S").unwrap_err().to_string(),
            "unknown unit `S` in `5S`: write `\"5s\"`"
        );
        assert_eq!(
            parse_millis("2d").unwrap_err().to_string(),
            "unknown unit `d` in `2d`: the units are `ms`, `s`, `m` and `h`"
        );
    }

    #[test]
    fn rejects_durations_that_overflow_u64_milliseconds() {
        assert_eq!(parse_millis("18446744073709551615ms"), Ok(u64::MAX));
        assert_eq!(
            parse_millis("18446744073709551616ms"),
            Err(DurationError::TooLong("18446744073709551616ms".into()))
        );
        assert_eq!(
            parse_millis("18446744073709552s"),
            Err(DurationError::TooLong("18446744073709552s".into()))
        );
        assert_eq!(
            parse_millis("5124095576030h"),
            Ok(5_124_095_576_030 * 3_600_000)
        );
        assert_eq!(
            parse_millis("5124095576031h"),
            Err(DurationError::TooLong("5124095576031h".into()))
        );
    }
}
