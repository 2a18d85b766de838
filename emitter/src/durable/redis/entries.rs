//! Reading what the server returns: stream entries, their fields, receipts.

use std::time::{Duration, SystemTime};

use ::redis::Value;

use super::RedisStore;
use crate::durable::{from_unix_millis, Claimed, DeadLetter, Receipt, StoredEvent};
use crate::emit_id::EmitId;

impl RedisStore {
    /// Reads a batch of entries the claim script handed out, `[listener, delivery count, [[id,
    /// fields]...]]`, giving each to `take`; an entry whose fields this store did not write
    /// comes as the receipt and reason to dead-letter it with.
    pub(super) fn read_claimed(
        &self,
        batch: Value,
        worker: &str,
        mut take: impl FnMut(ClaimedEntry),
    ) -> Result<(), String> {
        let mut items = into_array(batch)?.into_iter();
        let (Some(listener), Some(count), Some(crashes), Some(entries)) =
            (items.next(), items.next(), items.next(), items.next())
        else {
            return Err(
                "a batch of claimed entries without its listener, counts and entries".into(),
            );
        };
        let listener = into_text(listener)?;
        let count = into_int(count)?;
        let delivered = u32::try_from(count).unwrap_or(u32::MAX);
        let crashes = u32::try_from(into_int(crashes)?).unwrap_or(u32::MAX);
        for entry in into_array(entries)? {
            let mut items = into_array(entry)?.into_iter();
            let (Some(id), Some(fields)) = (items.next(), items.next()) else {
                return Err("a claimed entry without its id and fields".to_owned());
            };
            let id = into_text(id)?;
            let mut fields = Fields::read(fields)?;
            let taken = receipt(&listener, &id, worker, count);
            let read = match delivery_problem(&fields) {
                Some(problem) => Err(problem.to_owned()),
                None => number_field::<u32>(&fields.attempts, "attempts")
                    .and_then(|attempts| Ok((read_event(&mut fields)?, attempts))),
            };
            take(match read {
                Ok((event, attempts)) => Ok(Claimed {
                    receipt: taken,
                    listener: listener.clone(),
                    event,
                    attempt: attempts.saturating_add(delivered),
                    crashes,
                }),
                Err(problem) => {
                    let key = self.listener_key(&listener);
                    Err((
                        taken,
                        format!("corrupt delivery (entry {id} of `{key}`): {problem}"),
                    ))
                }
            });
        }
        Ok(())
    }
}

pub(super) fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How long until `run_at` on this process's clock, in whole milliseconds (0 if it passed).
pub(super) fn delay_millis(run_at: SystemTime) -> u64 {
    run_at
        .duration_since(SystemTime::now())
        .map_or(0, duration_millis)
}

/// Whether `id` has the shape of a stream entry id, `<ms>-<seq>`.
pub(super) fn is_entry_id(id: &str) -> bool {
    let digits =
        |part: &str| (1..=20).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    id.split_once('-')
        .is_some_and(|(millis, seq)| digits(millis) && digits(seq))
}

/// An entry id as the pair of numbers Redis orders entries by; `None` if Redis cannot have made
/// it (a part beyond 64 bits).
pub(super) fn entry_order(id: &str) -> Option<(u64, u64)> {
    let (millis, seq) = id.split_once('-')?;
    Some((millis.parse().ok()?, seq.parse().ok()?))
}

pub(super) fn receipt(listener: &str, entry: &str, worker: &str, count: i64) -> Receipt {
    Receipt {
        id: format!("{entry}/{listener}"),
        lease: format!("{count}/{worker}"),
    }
}

/// A receipt taken apart: which entry of which listener's stream, held by which consumer under
/// which delivery count.
pub(super) struct Held<'a> {
    pub(super) listener: &'a str,
    pub(super) entry: &'a str,
    pub(super) worker: &'a str,
    pub(super) count: u64,
}

impl<'a> Held<'a> {
    /// `None` for a receipt this store did not make: it holds nothing, so acting on it is a no-op.
    pub(super) fn parse(receipt: &'a Receipt) -> Option<Held<'a>> {
        let (entry, listener) = receipt.id.split_once('/')?;
        let (count, worker) = receipt.lease.split_once('/')?;
        if !is_entry_id(entry) || listener.is_empty() || worker.is_empty() {
            return None;
        }
        Some(Held {
            listener,
            entry,
            worker,
            count: count.parse().ok()?,
        })
    }
}

pub(super) fn into_array(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("expected an array, got {other:?}")),
    }
}

pub(super) fn into_bytes(value: Value) -> Result<Vec<u8>, String> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        Value::Okay => Ok(b"OK".to_vec()),
        Value::Int(number) => Ok(number.to_string().into_bytes()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

pub(super) fn into_text(value: Value) -> Result<String, String> {
    String::from_utf8(into_bytes(value)?).map_err(|_| "a string that is not UTF-8".to_owned())
}

pub(super) fn into_int(value: Value) -> Result<i64, String> {
    match value {
        Value::Int(number) => Ok(number),
        other => {
            let text = into_text(other)?;
            text.parse()
                .map_err(|_| format!("expected an integer, got {text:?}"))
        }
    }
}

/// The fields of a stream entry that this store reads (a delivery's or a dead letter's); other
/// fields are ignored.
#[derive(Default)]
pub(super) struct Fields {
    event: Option<Vec<u8>>,
    emit: Option<Vec<u8>>,
    at: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    attempts: Option<Vec<u8>>,
    pub(super) listener: Option<Vec<u8>>,
    reason: Option<Vec<u8>>,
    failed_at: Option<Vec<u8>>,
    trace: Option<Vec<u8>>,
    version: Option<Vec<u8>>,
}

impl Fields {
    /// Takes apart `[name, value, name, value, ...]`.
    fn read(value: Value) -> Result<Fields, String> {
        let items = into_array(value)?;
        if items.len() % 2 != 0 {
            return Err("an entry with an odd number of field names and values".to_owned());
        }
        let mut fields = Fields::default();
        let mut items = items.into_iter();
        while let (Some(name), Some(value)) = (items.next(), items.next()) {
            let slot = match into_bytes(name)?.as_slice() {
                b"event" => &mut fields.event,
                b"emit" => &mut fields.emit,
                b"at" => &mut fields.at,
                b"payload" => &mut fields.payload,
                b"attempts" => &mut fields.attempts,
                b"listener" => &mut fields.listener,
                b"reason" => &mut fields.reason,
                b"failed_at" => &mut fields.failed_at,
                b"trace" => &mut fields.trace,
                b"version" => &mut fields.version,
                _ => continue,
            };
            *slot = Some(into_bytes(value)?);
        }
        Ok(fields)
    }
}

pub(super) fn field<'f>(value: &'f Option<Vec<u8>>, name: &str) -> Result<&'f [u8], String> {
    value
        .as_deref()
        .ok_or_else(|| format!("it has no `{name}` field"))
}

pub(super) fn text_field(value: Option<Vec<u8>>, name: &str) -> Result<String, String> {
    String::from_utf8(value.ok_or_else(|| format!("it has no `{name}` field"))?)
        .map_err(|_| format!("its `{name}` field is not UTF-8"))
}

pub(super) fn number_field<T: std::str::FromStr>(
    value: &Option<Vec<u8>>,
    name: &str,
) -> Result<T, String> {
    std::str::from_utf8(field(value, name)?)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("its `{name}` field is not a number"))
}

/// The event an entry carries (a delivery's or a dead letter's); takes its payload.
pub(super) fn read_event(fields: &mut Fields) -> Result<StoredEvent, String> {
    let emit_id: EmitId = std::str::from_utf8(field(&fields.emit, "emit")?)
        .ok()
        .filter(|hex| hex.len() == 32)
        .and_then(|hex| hex.parse().ok())
        .ok_or("its `emit` field is not 32 hexadecimal digits")?;
    let event_id = match fields.event.take() {
        // An id that is not UTF-8 names no event of any binary: the engine dead-letters it.
        Some(id) => String::from_utf8(id)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        None => return Err("it has no `event` field".to_owned()),
    };
    let trace = match fields.trace.take() {
        None => None,
        Some(trace) => Some(
            String::from_utf8(trace).map_err(|_| "its `trace` field is not UTF-8".to_owned())?,
        ),
    };
    // Entries stored before events had versions have none: they are version 1.
    let version = match fields.version {
        None => 1,
        Some(_) => number_field(&fields.version, "version")?,
    };
    Ok(StoredEvent::new(
        event_id,
        emit_id,
        from_unix_millis(number_field(&fields.at, "at")?),
        fields.payload.take().ok_or("it has no `payload` field")?,
    )
    .with_version(version)
    .with_trace(trace))
}

/// What is wrong with a delivery's fields, in the words of the scripts' `problem`, or `None`.
pub(super) fn delivery_problem(fields: &Fields) -> Option<&'static str> {
    let digits = |value: &Option<Vec<u8>>, most: usize| {
        value.as_deref().is_some_and(|value| {
            (1..=most).contains(&value.len()) && value.iter().all(u8::is_ascii_digit)
        })
    };
    if fields.event.is_none() {
        Some("it has no `event` field")
    } else if !fields
        .emit
        .as_deref()
        .is_some_and(|emit| emit.len() == 32 && emit.iter().all(u8::is_ascii_hexdigit))
    {
        Some("its `emit` field is not 32 hexadecimal digits")
    } else if !digits(&fields.at, 15) {
        Some("its `at` field is not a time in milliseconds")
    } else if fields.payload.is_none() {
        Some("it has no `payload` field")
    } else if !digits(&fields.attempts, 9) {
        Some("its `attempts` field is not a count")
    } else {
        None
    }
}

/// A claimed entry: `Ok` to hand out, or the receipt and dead-letter reason of a corrupt one.
pub(super) type ClaimedEntry = Result<Claimed, (Receipt, String)>;

pub(super) fn read_dead_letter(value: Value) -> Result<DeadLetter, String> {
    let mut items = into_array(value)?.into_iter();
    let (Some(id), Some(fields)) = (items.next(), items.next()) else {
        return Err("an entry without its id and fields".to_owned());
    };
    let id = into_text(id)?;
    let read = |fields: Value| -> Result<DeadLetter, String> {
        let mut fields = Fields::read(fields)?;
        Ok(DeadLetter {
            id: id.clone(),
            listener: text_field(fields.listener.take(), "listener")?,
            event: read_event(&mut fields)?,
            attempts: number_field(&fields.attempts, "attempts")?,
            reason: String::from_utf8_lossy(field(&fields.reason, "reason")?).into_owned(),
            failed_at: from_unix_millis(number_field(&fields.failed_at, "failed_at")?),
        })
    };
    read(fields).map_err(|problem| {
        format!(
            "dead letter {id} is corrupt: {problem}; discard it (`discard(\"{id}\")`) to list \
             the others"
        )
    })
}
