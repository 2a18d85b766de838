//! Reading rows back: a claimed delivery, a dead letter, the event they carry.

use rusqlite::types::ValueRef;
use rusqlite::Row;

use crate::durable::{from_unix_millis, Claimed, DeadLetter, Receipt, StoredEvent};
use crate::emit_id::EmitId;

/// Reads the event stored in the six columns from `first` on: event id, emit id, emitted at,
/// payload, trace context, version. `Err` says what is wrong with them.
fn read_event(row: &Row<'_>, first: usize) -> Result<StoredEvent, String> {
    let event_id = match row.get_ref(first) {
        Ok(ValueRef::Text(text)) => {
            String::from_utf8(text.to_vec()).map_err(|_| "its event id is not UTF-8".to_owned())?
        }
        Ok(other) => return Err(format!("its event id is {:?}, not text", other.data_type())),
        Err(error) => return Err(format!("its event id cannot be read: {error}")),
    };
    let emit_id = match row.get_ref(first + 1) {
        Ok(ValueRef::Text(text)) => parse_emit_id(text)?,
        Ok(other) => return Err(format!("its emit id is {:?}, not text", other.data_type())),
        Err(error) => return Err(format!("its emit id cannot be read: {error}")),
    };
    let emitted_at = match row.get_ref(first + 2) {
        Ok(ValueRef::Integer(millis)) => from_unix_millis(millis),
        Ok(other) => {
            return Err(format!(
                "its emit time is {:?}, not an integer",
                other.data_type()
            ))
        }
        Err(error) => return Err(format!("its emit time cannot be read: {error}")),
    };
    let payload = match row.get_ref(first + 3) {
        Ok(ValueRef::Blob(bytes) | ValueRef::Text(bytes)) => bytes.to_vec(),
        Ok(other) => return Err(format!("its payload is {:?}, not bytes", other.data_type())),
        Err(error) => return Err(format!("its payload cannot be read: {error}")),
    };
    let trace = match row.get_ref(first + 4) {
        Ok(ValueRef::Null) => None,
        Ok(ValueRef::Text(text)) => Some(
            String::from_utf8(text.to_vec())
                .map_err(|_| "its trace context is not UTF-8".to_owned())?,
        ),
        Ok(other) => {
            return Err(format!(
                "its trace context is {:?}, not text",
                other.data_type()
            ))
        }
        Err(error) => return Err(format!("its trace context cannot be read: {error}")),
    };
    let version = read_count(row, first + 5, "event version")?;
    Ok(StoredEvent::new(event_id, emit_id, emitted_at, payload)
        .with_version(version)
        .with_trace(trace))
}

pub(super) fn parse_emit_id(text: &[u8]) -> Result<EmitId, String> {
    let shown = String::from_utf8_lossy(text);
    shown
        .parse()
        .map_err(|_| format!("its emit id `{shown}` is not 32 hexadecimal digits"))
}

pub(super) fn read_text(row: &Row<'_>, index: usize, what: &str) -> Result<String, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Text(text)) => {
            String::from_utf8(text.to_vec()).map_err(|_| format!("its {what} is not UTF-8"))
        }
        Ok(other) => Err(format!("its {what} is {:?}, not text", other.data_type())),
        Err(error) => Err(format!("its {what} cannot be read: {error}")),
    }
}

pub(super) fn read_count(row: &Row<'_>, index: usize, what: &str) -> Result<u32, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Integer(count)) => u32::try_from(count)
            .map_err(|_| format!("its {what} {count} is out of range (0 to {})", u32::MAX)),
        Ok(other) => Err(format!(
            "its {what} is {:?}, not an integer",
            other.data_type()
        )),
        Err(error) => Err(format!("its {what} cannot be read: {error}")),
    }
}

/// A claimed row, or what is wrong with it.
pub(super) fn read_claimed(row: &Row<'_>, lease: &str) -> Result<Claimed, String> {
    let id: i64 = row
        .get(0)
        .map_err(|error| format!("its id cannot be read: {error}"))?;
    let listener = read_text(row, 1, "listener")?;
    let attempt = read_count(row, 2, "attempt count")?;
    if attempt == 0 {
        return Err("its attempt count is 0 after a claim".to_owned());
    }
    let crashes = read_count(row, 3, "count of crashes")?;
    let event = read_event(row, 4)?;
    Ok(Claimed {
        receipt: Receipt {
            id: id.to_string(),
            lease: lease.to_owned(),
        },
        listener,
        event,
        attempt,
        crashes,
    })
}

pub(super) fn read_dead_letter(row: &Row<'_>) -> Result<DeadLetter, String> {
    let listener = read_text(row, 1, "listener")?;
    let attempts = read_count(row, 2, "attempt count")?;
    let reason = read_text(row, 3, "reason")?;
    let failed_at = match row.get_ref(4) {
        Ok(ValueRef::Integer(millis)) => from_unix_millis(millis),
        Ok(other) => {
            return Err(format!(
                "its failure time is {:?}, not an integer",
                other.data_type()
            ))
        }
        Err(error) => return Err(format!("its failure time cannot be read: {error}")),
    };
    let event = read_event(row, 5)?;
    Ok(DeadLetter {
        id: String::new(),
        listener,
        event,
        attempts,
        reason,
        failed_at,
    })
}
