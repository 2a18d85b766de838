//! The Redis baseline: the store's layout, with plain commands on one connection.

use std::time::{Duration, SystemTime};

use emitter::durable::redis::listener_key;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};

use emitter_bench::check;

use crate::produce::{emit_id, Clock, Produced};
use crate::stats::Tally;
use crate::workers::{say_ready, Stop, WorkerReport};
use crate::{
    Tick, CLAIM_LIMIT, EVENT_ID, IDLE_WAIT, INSERT_BATCH, LISTENER, RUN_LIMIT, SETTLE_POLL,
};

pub(crate) async fn redis_produce(
    url: &str,
    namespace: &str,
    events: u64,
) -> Result<Produced, String> {
    let mut conn = redis_connect(url).await?;
    let key = stream_key(namespace);
    let clock = Clock::start();
    let (stored, total) = tokio::time::timeout(RUN_LIMIT, async {
        let mut next = 0;
        while next < events {
            let end = (next + INSERT_BATCH as u64).min(events);
            let at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as i64);
            let mut pipe = redis::pipe();
            for n in next..end {
                let payload = serde_json::to_vec(&Tick { n })
                    .map_err(|error| format!("cannot encode event {n}: {error}"))?;
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("event")
                    .arg(EVENT_ID)
                    .arg("emit")
                    .arg(emit_id(n))
                    .arg("at")
                    .arg(at)
                    .arg("payload")
                    .arg(payload)
                    .arg("attempts")
                    .arg(0);
            }
            let ids: Vec<String> = pipe
                .query_async(&mut conn)
                .await
                .map_err(rd("append entries"))?;
            check("entries appended", ids.len() as u64, end - next)?;
            next = end;
        }
        let stored = clock.elapsed();
        loop {
            let (length, pending): (u64, Value) = redis::pipe()
                .cmd("XLEN")
                .arg(&key)
                .cmd("XPENDING")
                .arg(&key)
                .arg(LISTENER)
                .query_async(&mut conn)
                .await
                .map_err(rd("count the entries"))?;
            let pending = match pending {
                Value::Array(summary) => match summary.first() {
                    Some(Value::Int(pending)) => *pending,
                    _ => -1,
                },
                _ => -1,
            };
            if length == 0 && pending == 0 {
                break;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        Ok::<_, String>((stored, clock.elapsed()))
    })
    .await
    .map_err(|_| format!("the run did not settle within {RUN_LIMIT:?}"))??;
    Ok(Produced {
        started_ns: clock.started_ns,
        stored,
        total,
        profile: None,
    })
}

pub(crate) async fn redis_worker(
    url: &str,
    namespace: &str,
    tally: Tally,
    stop: Stop,
) -> Result<WorkerReport, String> {
    let mut conn = redis_connect(url).await?;
    let key = stream_key(namespace);
    let consumer = format!("baseline-{}", std::process::id());
    say_ready();
    while !stop.is_set() {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(LISTENER)
            .arg(&consumer)
            .arg("COUNT")
            .arg(CLAIM_LIMIT)
            .arg("BLOCK")
            .arg(IDLE_WAIT.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(&mut conn)
            .await
            .map_err(rd("read the stream"))?;
        let entries = stream_entries(reply)?;
        if entries.is_empty() {
            continue;
        }
        let mut ids = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let entry = Entry::read(&fields).map_err(|problem| format!("entry {id}: {problem}"))?;
            let tick: Tick = serde_json::from_slice(&entry.payload)
                .map_err(|error| format!("entry {id} does not decode: {error}"))?;
            tally.add(tick.n);
            ids.push(id);
        }
        let (acked, deleted): (u64, u64) = redis::pipe()
            .cmd("XACK")
            .arg(&key)
            .arg(LISTENER)
            .arg(&ids)
            .cmd("XDEL")
            .arg(&key)
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .map_err(rd("acknowledge entries"))?;
        check("entries acknowledged", acked, ids.len() as u64)?;
        check("entries deleted", deleted, ids.len() as u64)?;
    }
    Ok(tally.report(0, None))
}

pub(crate) fn rd(doing: &'static str) -> impl Fn(redis::RedisError) -> String {
    move |error| format!("cannot {doing}: {error}")
}

/// The store's stream of the listener: `{prefix}:listener:{listener}`.
pub(crate) fn stream_key(prefix: &str) -> String {
    listener_key(prefix, LISTENER)
}

/// One multiplexed connection with the store's response timeout (10 s), above `BLOCK`.
pub(crate) async fn redis_connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(rd("read the Redis URL"))?;
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(rd("connect to Redis"))
}

pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The entries of an `XREADGROUP` reply on one stream (none when it timed out).
pub(crate) fn stream_entries(reply: Value) -> Result<Vec<(String, Fields)>, String> {
    let bad = |what: &str| format!("an unexpected XREADGROUP reply: {what}");
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        Value::Map(streams) => streams
            .into_iter()
            .map(|(key, entries)| Value::Array(vec![key, entries]))
            .collect(),
        other => return Err(bad(&format!("{other:?}"))),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut stream) = stream else {
            return Err(bad("a stream that is not an array"));
        };
        let Some(Value::Array(entries)) = stream.pop() else {
            return Err(bad("a stream without entries"));
        };
        for entry in entries {
            let Value::Array(mut entry) = entry else {
                return Err(bad("an entry that is not an array"));
            };
            let (Some(Value::Array(flat)), Some(id)) = (entry.pop(), entry.pop()) else {
                return Err(bad("an entry without its id and fields"));
            };
            let id = bytes(id).ok_or_else(|| bad("an entry id"))?;
            let id = String::from_utf8(id).map_err(|_| bad("an entry id"))?;
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                let (Some(name), Some(value)) = (bytes(name), bytes(value)) else {
                    return Err(bad("a field"));
                };
                fields.push((name, value));
            }
            out.push((id, fields));
        }
    }
    Ok(out)
}

pub(crate) fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

/// A stream entry's fields, read as the store reads them.
pub(crate) struct Entry {
    pub(crate) payload: Vec<u8>,
}

impl Entry {
    pub(crate) fn read(fields: &Fields) -> Result<Entry, String> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(field, _)| field == name.as_bytes())
                .map(|(_, value)| value.as_slice())
                .ok_or_else(|| format!("it has no `{name}` field"))
        };
        let number = |name: &str| {
            std::str::from_utf8(field(name)?)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| format!("its `{name}` field is not a number"))
        };
        let _event = String::from_utf8_lossy(field("event")?).into_owned();
        std::str::from_utf8(field("emit")?)
            .ok()
            .filter(|hex| hex.len() == 32)
            .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            .ok_or("its `emit` field is not 32 hexadecimal digits")?;
        let _at = number("at")?;
        let _attempts = number("attempts")?;
        Ok(Entry {
            payload: field("payload")?.to_vec(),
        })
    }
}
