//! The statements' parameters: emits as arrays, receipts as numbers, times as offsets.

use std::time::{Duration, SystemTime};

use tokio_postgres::types::{ToSql, Type};

use crate::durable::{from_unix_millis, millis, unix_millis, NewEmit, Receipt};

/// Offsets from now are clamped to this many milliseconds (about 300 years), within what
/// PostgreSQL's `timestamptz` and `interval` hold.
const MAX_OFFSET_MS: i64 = 10_000_000_000_000;

/// One batch of emits as the arrays of the insert statement.
pub(super) struct InsertBatch<'a> {
    event_ids: Vec<&'a str>,
    emit_ids: Vec<String>,
    emitted_at: Vec<SystemTime>,
    payloads: Vec<&'a [u8]>,
    due_in: Vec<i64>,
    keys: Vec<Option<String>>,
    listener_emit: Vec<i64>,
    listeners: Vec<&'a str>,
    retention_ms: i64,
    traces: Vec<Option<&'a str>>,
    versions: Vec<i32>,
}

impl<'a> InsertBatch<'a> {
    pub(super) fn new(emits: &'a [NewEmit], retention_ms: i64) -> Self {
        let now = unix_millis(SystemTime::now());
        let mut batch = InsertBatch {
            event_ids: Vec::with_capacity(emits.len()),
            emit_ids: Vec::with_capacity(emits.len()),
            emitted_at: Vec::with_capacity(emits.len()),
            payloads: Vec::with_capacity(emits.len()),
            due_in: Vec::with_capacity(emits.len()),
            keys: Vec::with_capacity(emits.len()),
            listener_emit: Vec::new(),
            listeners: Vec::new(),
            retention_ms,
            traces: Vec::with_capacity(emits.len()),
            versions: Vec::with_capacity(emits.len()),
        };
        for (n, emit) in (1_i64..).zip(emits) {
            batch.event_ids.push(&emit.event.event_id);
            batch
                .emit_ids
                .push(format!("{:032x}", emit.event.emit_id.as_u128()));
            // Milliseconds, like every store, so that an event reads back equal whichever
            // store kept it.
            batch
                .emitted_at
                .push(from_unix_millis(unix_millis(emit.event.emitted_at)));
            batch.payloads.push(&emit.event.payload);
            batch.traces.push(emit.event.trace.as_deref());
            batch
                .versions
                .push(i32::try_from(emit.event.version).unwrap_or(i32::MAX));
            batch.due_in.push(
                unix_millis(emit.run_at)
                    .saturating_sub(now)
                    .clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS),
            );
            batch
                .keys
                .push(emit.key.as_deref().map(|key| text(key).into_owned()));
            // One delivery per distinct listener.
            for (index, listener) in emit.listeners.iter().enumerate() {
                if !emit.listeners[..index].contains(listener) {
                    batch.listener_emit.push(n);
                    batch.listeners.push(listener);
                }
            }
        }
        batch
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.event_ids,
            &self.emit_ids,
            &self.emitted_at,
            &self.payloads,
            &self.due_in,
            &self.keys,
            &self.listener_emit,
            &self.listeners,
            &self.retention_ms,
            &self.traces,
            &self.versions,
        ]
    }

    /// Whether an emit of the batch has an idempotency key: the batch needs the keyed insert.
    pub(super) fn has_keys(&self) -> bool {
        self.keys.iter().any(Option::is_some)
    }

    /// The parameters of the unkeyed insert.
    pub(super) fn unkeyed_params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.event_ids,
            &self.emit_ids,
            &self.emitted_at,
            &self.payloads,
            &self.due_in,
            &self.listener_emit,
            &self.listeners,
            &self.traces,
            &self.versions,
        ]
    }

    pub(super) fn typed_params(&self) -> [(&(dyn ToSql + Sync), Type); 11] {
        let [a, b, c, d, e, f, g, h, i, j, k] = self.params();
        [
            (a, Type::TEXT_ARRAY),
            (b, Type::TEXT_ARRAY),
            (c, Type::TIMESTAMPTZ_ARRAY),
            (d, Type::BYTEA_ARRAY),
            (e, Type::INT8_ARRAY),
            (f, Type::TEXT_ARRAY),
            (g, Type::INT8_ARRAY),
            (h, Type::TEXT_ARRAY),
            (i, Type::INT8),
            (j, Type::TEXT_ARRAY),
            (k, Type::INT4_ARRAY),
        ]
    }
}

/// PostgreSQL's text cannot hold NUL characters: they become U+FFFD.
pub(super) fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        value.replace('\0', "\u{fffd}").into()
    } else {
        value.into()
    }
}

/// The receipts this store could have issued, as (ids, lease tokens); others match no delivery.
pub(super) fn parse_receipts(receipts: &[Receipt]) -> (Vec<i64>, Vec<i64>) {
    receipts
        .iter()
        .filter_map(Receipt::parse::<i64, i64>)
        .unzip()
}

/// Milliseconds from now on this process's clock until `at` (negative when past), clamped.
pub(super) fn offset_ms(at: SystemTime) -> i64 {
    unix_millis(at)
        .saturating_sub(unix_millis(SystemTime::now()))
        .clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS)
}

pub(super) fn duration_ms(duration: Duration) -> i64 {
    millis(duration).min(MAX_OFFSET_MS)
}
