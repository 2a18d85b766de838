//! The fast path of inserts: plain `XADD`s in one transaction, when nothing needs the script.

use std::sync::PoisonError;

use ::redis::RedisError;

use super::entries::delay_millis;
use super::RedisStore;
use crate::durable::{unix_millis, NewEmit};

impl RedisStore {
    /// Whether `emits` only append deliveries (no idempotency key, nothing delayed) to the
    /// streams of listeners that [`Store::open`](crate::durable::Store::open) set up, so that
    /// [`append_in_transaction`](Self::append_in_transaction) may store them.
    pub(super) fn only_appends_to_ready_streams(&self, emits: &[NewEmit]) -> bool {
        let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        !ready.is_empty()
            && emits.iter().all(|emit| {
                emit.key.is_none()
                    && delay_millis(emit.run_at) == 0
                    && emit
                        .listeners
                        .iter()
                        .all(|listener| ready.contains(*listener))
            })
    }

    /// Appends one entry per emit and distinct listener, as the insert script would, with plain
    /// `XADD`s in one `MULTI`/`EXEC` transaction (see the module docs for the trade-off).
    pub(super) async fn append_in_transaction(&self, emits: &[NewEmit]) -> Result<(), RedisError> {
        let mut transaction = ::redis::pipe();
        transaction.atomic();
        let mut listeners: Vec<&str> = Vec::new();
        for emit in emits {
            let emit_id = format!("{:032x}", emit.event.emit_id.as_u128());
            let at = unix_millis(emit.event.emitted_at);
            for (index, listener) in emit.listeners.iter().enumerate() {
                if emit.listeners[..index].contains(listener) {
                    continue;
                }
                if !listeners.contains(listener) {
                    listeners.push(listener);
                }
                let append = transaction
                    .cmd("XADD")
                    .arg(self.listener_key(listener))
                    .arg("*")
                    .arg("event")
                    .arg(&emit.event.event_id)
                    .arg("emit")
                    .arg(&emit_id)
                    .arg("at")
                    .arg(at)
                    .arg("payload")
                    .arg(&emit.event.payload)
                    .arg("attempts")
                    .arg(0);
                if emit.event.version != 1 {
                    append.arg("version").arg(emit.event.version);
                }
                if let Some(trace) = &emit.event.trace {
                    append.arg("trace").arg(trace);
                }
                append.ignore();
            }
        }
        if listeners.is_empty() {
            // Emits to no listener: stored, with nothing to append.
            return Ok(());
        }
        // `open` added these already; again in case the server lost its data since, so that
        // `counts` sees the streams.
        transaction
            .cmd("SADD")
            .arg(self.key("listeners"))
            .arg(&listeners)
            .ignore();
        let mut connection = self.connection.clone();
        transaction.query_async::<()>(&mut connection).await
    }
}
