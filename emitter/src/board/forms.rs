//! Reading query strings and forms: the fields, a listing's filter, times written by people.

use std::time::{Duration, SystemTime};

use chrono::DateTime;

use crate::durable::admin::{DeliveryState, Filter};
use crate::emit_id::EmitId;

/// The fields of a query string or a form, in order.
#[derive(Debug, Default)]
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(super) fn parse(text: &str) -> Fields {
        Fields(
            form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`, trimmed, if it is not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The state the fields name (`state`), waiting if none.
    pub(super) fn state(&self) -> Result<DeliveryState, String> {
        self.get("state")
            .map_or(Ok(DeliveryState::Waiting), |state| {
                state.parse().map_err(|error| format!("{error}"))
            })
    }

    /// The filter of a listing or a bulk action: `listener`, `event`, `emit`, `after`,
    /// `before`.
    pub(super) fn filter(&self, now: SystemTime) -> Result<Filter, String> {
        let mut filter = Filter::new();
        if let Some(listener) = self.get("listener") {
            filter = filter.listener(listener);
        }
        if let Some(event) = self.get("event") {
            filter = filter.event_id(event);
        }
        if let Some(emit) = self.get("emit") {
            let emit_id: EmitId = emit.parse().map_err(|error| format!("{error}"))?;
            filter = filter.emit_id(emit_id);
        }
        if let Some(after) = self.get("after") {
            filter = filter.after(parse_time(after, now)?);
        }
        if let Some(before) = self.get("before") {
            filter = filter.before(parse_time(before, now)?);
        }
        Ok(filter)
    }
}

/// A time as people write it: an RFC 3339 instant (`2024-05-01T12:00:00Z`), or how long ago
/// from `now`, an integer and a unit (`90s`, `15m`, `2h`, `3d`).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use emitter::board::parse_time;
///
/// let now = SystemTime::now();
/// assert_eq!(parse_time("15m", now), Ok(now - Duration::from_secs(900)));
/// assert!(parse_time("2024-05-01T12:00:00Z", now).is_ok());
/// assert!(parse_time("yesterday", now).is_err());
/// ```
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.into());
    }
    let unit = text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(text.len(), |(at, _)| at);
    let (number, unit) = text.split_at(unit);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(number) if seconds > 0 => {
            let ago = Duration::from_secs(number.saturating_mul(seconds));
            now.checked_sub(ago)
                .ok_or_else(|| format!("`{text}` is before the Unix epoch"))
        }
        _ => Err(format!(
            "`{}` is not a time: write an RFC 3339 instant (2024-05-01T12:00:00Z) or how long \
             ago (90s, 15m, 2h, 3d)",
            text.escape_debug()
        )),
    }
}
