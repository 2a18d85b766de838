//! The [`Store`](crate::durable::Store) implementation: one transaction per call, on the blocking pool.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{params, Connection, TransactionBehavior};

use super::connection::sql_error;
use super::rows::{read_claimed, read_dead_letter};
use super::statements::{
    self, ACK, BACKLOG, BURY, BURY_UNREADABLE, COUNT_DEAD, COUNT_DELIVERIES, COUNT_LEASED,
    COUNT_UNFINISHED_OF, DEAD_LETTERS, DELETE_DELIVERY, DISCARD, EXTEND, INSERT_DELIVERY,
    INSERT_KEY, POSTPONE, PURGE_KEYS, RELEASE, REPLAY, RETRY, SUBSCRIBE, SUBSCRIPTIONS,
    UNSUBSCRIBE,
};
use super::{Inner, SqliteStore};
use crate::durable::{
    claimable, defaults, from_unix_millis, millis, unix_millis, Backlog, Claimed, Counts,
    DeadLetter, Heartbeat, Inserted, NewEmit, Receipt, Setup, Store, Subscription,
};
use crate::emit_id::EmitId;
use crate::error::{BackendError, BackendErrorKind};

/// How many listeners one claim statement names; more are claimed in several statements of one
/// transaction (SQLite limits the terms of a compound `SELECT`).
const LISTENERS_PER_CLAIM: usize = 32;

fn now_millis() -> i64 {
    unix_millis(SystemTime::now())
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A token unique to one claim, across processes: a random per-process part and a counter.
fn lease_token() -> String {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        hasher.finish()
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{process:016x}{count:016x}")
}

impl Inner {
    fn key_retention_ms(&self) -> i64 {
        i64::try_from(self.key_retention_ms.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }

    fn insert(&self, conn: &mut Connection, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, "store emits", error);
        let now = now_millis();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let inserted = self.insert_on(&tx, emits)?;
        if now >= self.next_key_purge.load(Ordering::Relaxed) {
            tx.prepare_cached(PURGE_KEYS)
                .and_then(|mut purge| purge.execute([now]))
                .map_err(|error| sql_error(path, "delete expired idempotency keys", error))?;
            self.next_key_purge.store(
                now.saturating_add(millis(defaults::KEY_PURGE_INTERVAL)),
                Ordering::Relaxed,
            );
        }
        tx.commit().map_err(error)?;
        Ok(inserted)
    }

    /// Stores emits on `conn`, in the transaction it is in.
    pub(super) fn insert_on(
        &self,
        conn: &Connection,
        emits: &[NewEmit],
    ) -> Result<Inserted, BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, "store emits", error);
        let now = now_millis();
        let expires_at = now.saturating_add(self.key_retention_ms());
        let mut inserted = Inserted::default();
        {
            let mut keys = conn.prepare_cached(INSERT_KEY).map_err(error)?;
            let mut deliveries = conn.prepare_cached(INSERT_DELIVERY).map_err(error)?;
            for emit in emits {
                if let Some(key) = &emit.key {
                    if keys.execute(params![key, expires_at, now]).map_err(error)? == 0 {
                        inserted.duplicates += 1;
                        continue;
                    }
                }
                let event = &emit.event;
                let emit_id = format!("{:032x}", event.emit_id.as_u128());
                let emitted_at = unix_millis(event.emitted_at);
                let run_at = unix_millis(emit.run_at);
                let mut seen = HashSet::new();
                for listener in &emit.listeners {
                    if !seen.insert(*listener) {
                        continue;
                    }
                    deliveries
                        .execute(params![
                            listener,
                            event.event_id,
                            emit_id,
                            emitted_at,
                            event.payload,
                            event.trace,
                            run_at,
                            event.version
                        ])
                        .map_err(error)?;
                }
                inserted.stored += 1;
            }
        }
        Ok(inserted)
    }

    fn claim(
        &self,
        conn: &mut Connection,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, "claim deliveries", error);
        let token = lease_token();
        let now = now_millis();
        let until = now.saturating_add(millis(lease));
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let mut claimed = Vec::new();
        let mut corrupt = Vec::new();
        let fixed = |limit: usize| {
            vec![
                Value::Text(token.clone()),
                Value::Text(worker.to_owned()),
                Value::Integer(until),
                Value::Integer(now),
                Value::Integer(sql_limit(limit)),
            ]
        };
        // A suspect, when one is due, is claimed alone.
        for chunk in listeners.chunks(LISTENERS_PER_CLAIM) {
            let mut values = fixed(1);
            values.extend(chunk.iter().map(|name| Value::Text((*name).to_owned())));
            let mut statement = tx
                .prepare_cached(&statements::claim_suspect(chunk.len()))
                .map_err(error)?;
            let rows = statement
                .query(rusqlite::params_from_iter(values))
                .map_err(error)?;
            read_rows(rows, &token, &mut claimed, &mut corrupt).map_err(error)?;
            if !claimed.is_empty() {
                break;
            }
        }
        // Otherwise the due deliveries, suspects excepted.
        if claimed.is_empty() {
            let concurrency = self.concurrency.get();
            for chunk in listeners.chunks(LISTENERS_PER_CLAIM) {
                let remaining = limit.saturating_sub(claimed.len() + corrupt.len());
                if remaining == 0 {
                    break;
                }
                let mut values = fixed(remaining);
                let mut limits = Vec::with_capacity(chunk.len());
                for name in chunk {
                    values.push(Value::Text((*name).to_owned()));
                    let limit = concurrency.get(name).map(|limit| limit.get());
                    if let Some(limit) = limit {
                        values.push(Value::Integer(i64::from(limit)));
                    }
                    limits.push(limit);
                }
                let mut statement = tx
                    .prepare_cached(&statements::claim(&limits))
                    .map_err(error)?;
                let rows = statement
                    .query(rusqlite::params_from_iter(values))
                    .map_err(error)?;
                read_rows(rows, &token, &mut claimed, &mut corrupt).map_err(error)?;
            }
        }
        // A row this store cannot read would be claimed again and again, blocking the deliveries
        // behind it: dead-letter it with what is wrong instead (`dead_letters` names it).
        for (id, problem) in corrupt {
            tracing::error!(
                "delivery {id} in the SQLite store {} is corrupt and was dead-lettered: {problem}",
                path.display()
            );
            let reason = format!("the SQLite store could not read this delivery: {problem}");
            bury(&tx, id, None, &reason, now).map_err(error)?;
        }
        tx.commit().map_err(error)?;
        claimed.sort_by_key(|claim| claim.receipt.id.parse::<i64>().ok());
        Ok(claimed)
    }

    /// Runs `statement` once per receipt in one transaction; receipts of no delivery of this
    /// store are skipped. `extra` is bound as `?3`, when given.
    fn per_receipt(
        &self,
        conn: &mut Connection,
        doing: &str,
        statement: &str,
        receipts: &[Receipt],
        extra: Option<i64>,
    ) -> Result<(), BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, doing, error);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        {
            let mut statement = tx.prepare_cached(statement).map_err(error)?;
            for receipt in receipts {
                let Some((id, lease)) = receipt.parse::<i64, String>() else {
                    continue;
                };
                match extra {
                    Some(extra) => statement.execute(params![id, lease, extra]),
                    None => statement.execute(params![id, lease]),
                }
                .map_err(error)?;
            }
        }
        tx.commit().map_err(error)
    }
}

/// Reads claimed rows into `claimed`, and the ids of those this store cannot read, with what is
/// wrong with them, into `corrupt`.
fn read_rows(
    mut rows: rusqlite::Rows<'_>,
    token: &str,
    claimed: &mut Vec<Claimed>,
    corrupt: &mut Vec<(i64, String)>,
) -> Result<(), rusqlite::Error> {
    while let Some(row) = rows.next()? {
        match read_claimed(row, token) {
            Ok(claim) => claimed.push(claim),
            Err(problem) => corrupt.push((row.get(0)?, problem)),
        }
    }
    Ok(())
}

/// Moves delivery `id` to the dead letters, if its lease is `lease`; with `None`, whatever its
/// lease, as one the store cannot read (see `bury_unreadable.sql`). Returns whether it moved.
fn bury(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    lease: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<bool, rusqlite::Error> {
    let moved = match lease {
        Some(lease) => tx
            .prepare_cached(BURY)?
            .execute(params![id, lease, reason, now])?,
        None => tx
            .prepare_cached(BURY_UNREADABLE)?
            .execute(params![id, reason, now])?,
    };
    if moved > 0 {
        tx.prepare_cached(DELETE_DELIVERY)?.execute([id])?;
    }
    Ok(moved > 0)
}

impl Store for SqliteStore {
    const TRANSACTION: Option<crate::durable::TxKind> = Some(crate::durable::TxKind::Sqlite);

    fn begin(
        &self,
    ) -> impl std::future::Future<
        Output = Result<Box<dyn crate::durable::StoreTransaction>, BackendError>,
    > + Send {
        self.begin_listener()
    }

    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        self.inner.concurrency.set(setup);
        let retention = u64::try_from(setup.key_retention.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .key_retention_ms
            .store(retention, Ordering::Relaxed);
        // Expired keys go at the first insert.
        self.inner.next_key_purge.store(0, Ordering::Relaxed);
        Ok(())
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let emits = emits.to_vec();
        let inserted = self
            .run(move |inner, conn| inner.insert(conn, &emits))
            .await?;
        if inserted.stored > 0 {
            self.wake();
        }
        Ok(inserted)
    }

    async fn claim(
        &self,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let Some(listeners) = claimable(listeners, limit) else {
            return Ok(Vec::new());
        };
        let worker = worker.to_owned();
        self.run(move |inner, conn| inner.claim(conn, &worker, &listeners, limit, lease))
            .await
    }

    async fn extend(&self, receipts: &[Receipt], lease: Duration) -> Result<(), BackendError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let receipts = receipts.to_vec();
        self.run(move |inner, conn| {
            let until = now_millis().saturating_add(millis(lease));
            inner.per_receipt(conn, "extend leases", EXTEND, &receipts, Some(until))
        })
        .await
    }

    async fn release(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let receipts = receipts.to_vec();
        self.run(move |inner, conn| {
            inner.per_receipt(
                conn,
                "release deliveries",
                RELEASE,
                &receipts,
                Some(now_millis()),
            )
        })
        .await?;
        self.wake();
        Ok(())
    }

    async fn unfinished(&self, emits: RangeInclusive<EmitId>) -> Result<u64, BackendError> {
        let (first, last) = (
            format!("{:032x}", emits.start().as_u128()),
            format!("{:032x}", emits.end().as_u128()),
        );
        self.run(move |inner, conn| {
            conn.prepare_cached(COUNT_UNFINISHED_OF)
                .and_then(|mut statement| {
                    statement.query_row(params![first, last], |row| row.get::<_, i64>(0))
                })
                .map(|count| u64::try_from(count).unwrap_or(0))
                .map_err(|error| sql_error(&inner.path, "count unfinished deliveries", error))
        })
        .await
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let receipts = receipts.to_vec();
        self.run(move |inner, conn| {
            inner.per_receipt(conn, "acknowledge deliveries", ACK, &receipts, None)
        })
        .await
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        self.release_until(RETRY, "release a delivery to retry", receipt, run_at, error)
            .await
    }

    async fn postpone(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        note: &str,
    ) -> Result<(), BackendError> {
        let doing = "give back a delivery of a newer event version";
        self.release_until(POSTPONE, doing, receipt, run_at, note)
            .await
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        let Some((id, lease)) = receipt.parse::<i64, String>() else {
            return Ok(());
        };
        let reason = reason.to_owned();
        self.run(move |inner, conn| {
            let error = |error| sql_error(&inner.path, "dead-letter a delivery", error);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(error)?;
            bury(&tx, id, Some(&lease), &reason, now_millis()).map_err(error)?;
            tx.commit().map_err(error)
        })
        .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.run(move |inner, conn| {
            let path = &inner.path;
            let error = |error| sql_error(path, "list dead letters", error);
            let mut statement = conn.prepare_cached(DEAD_LETTERS).map_err(error)?;
            let mut rows = statement.query([sql_limit(limit)]).map_err(error)?;
            let mut letters = Vec::new();
            while let Some(row) = rows.next().map_err(error)? {
                let id: i64 = row.get(0).map_err(error)?;
                let mut letter = read_dead_letter(row).map_err(|problem| {
                    BackendError::of(
                        BackendErrorKind::Corrupt,
                        format!(
                            "dead letter {id} in the SQLite store {} is corrupt: {problem}; \
                             discard it (`discard(\"{id}\")`) to list the others",
                            path.display()
                        ),
                    )
                })?;
                letter.id = id.to_string();
                letters.push(letter);
            }
            Ok(letters)
        })
        .await
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let replayed = self
            .run(move |inner, conn| {
                let error = |error| sql_error(&inner.path, "replay a dead letter", error);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(error)?;
                let moved = tx
                    .prepare_cached(REPLAY)
                    .and_then(|mut statement| statement.execute(params![id, now_millis()]))
                    .map_err(error)?;
                if moved > 0 {
                    tx.prepare_cached(DISCARD)
                        .and_then(|mut statement| statement.execute([id]))
                        .map_err(error)?;
                }
                tx.commit().map_err(error)?;
                Ok(moved > 0)
            })
            .await?;
        if replayed {
            self.wake();
        }
        Ok(replayed)
    }

    async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        self.run(move |inner, conn| {
            conn.prepare_cached(DISCARD)
                .and_then(|mut statement| statement.execute([id]))
                .map(|deleted| deleted > 0)
                .map_err(|error| sql_error(&inner.path, "discard a dead letter", error))
        })
        .await
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        self.run(|inner, conn| {
            let path = &inner.path;
            let error = |error| sql_error(path, "count deliveries", error);
            let tx = conn.transaction().map_err(error)?;
            let total: i64 = tx
                .prepare_cached(COUNT_DELIVERIES)
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(error)?;
            let leased: i64 = tx
                .prepare_cached(COUNT_LEASED)
                .and_then(|mut statement| statement.query_row([now_millis()], |row| row.get(0)))
                .map_err(error)?;
            let dead: i64 = tx
                .prepare_cached(COUNT_DEAD)
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(error)?;
            tx.commit().map_err(error)?;
            let count = |value: i64| u64::try_from(value).unwrap_or(0);
            Ok(Counts {
                waiting: count(total - leased),
                leased: count(leased),
                dead: count(dead),
            })
        })
        .await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.work.notified()).await;
    }

    async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), BackendError> {
        let beat = beat.clone();
        self.run(move |inner, conn| inner.heartbeat(conn, &beat))
            .await
    }

    async fn subscribe(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> Result<(), BackendError> {
        let replace: Vec<String> = replace.iter().map(|name| (*name).to_owned()).collect();
        let subscriptions = subscriptions.to_vec();
        self.run(move |inner, conn| {
            let error = |error| sql_error(&inner.path, "record subscriptions", error);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(error)?;
            {
                let mut delete = tx.prepare_cached(UNSUBSCRIBE).map_err(error)?;
                for listener in &replace {
                    delete.execute([listener]).map_err(error)?;
                }
                let mut insert = tx.prepare_cached(SUBSCRIBE).map_err(error)?;
                for subscription in &subscriptions {
                    insert
                        .execute(params![
                            subscription.event_id,
                            subscription.listener,
                            subscription.concurrency.map(NonZeroU32::get),
                            subscription.version,
                            unix_millis(subscription.seen_at),
                        ])
                        .map_err(error)?;
                }
            }
            tx.commit().map_err(error)
        })
        .await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        self.run(|inner, conn| {
            let error = |error| sql_error(&inner.path, "read subscriptions", error);
            let mut statement = conn.prepare_cached(SUBSCRIPTIONS).map_err(error)?;
            let rows = statement
                .query_map([], |row| {
                    let concurrency: Option<i64> = row.get(2)?;
                    Ok(Subscription::new(
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        from_unix_millis(row.get(3)?),
                    )
                    .concurrency(
                        concurrency
                            .and_then(|limit| u32::try_from(limit).ok())
                            .and_then(NonZeroU32::new),
                    )
                    .with_version(u32::try_from(row.get::<_, i64>(4)?).unwrap_or(0)))
                })
                .map_err(error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(error)
        })
        .await
    }

    async fn unsubscribe(&self, listener: &str) -> Result<u64, BackendError> {
        let listener = listener.to_owned();
        self.run(move |inner, conn| {
            conn.prepare_cached(UNSUBSCRIBE)
                .and_then(|mut delete| delete.execute([listener]))
                .map(|deleted| deleted as u64)
                .map_err(|error| sql_error(&inner.path, "delete subscriptions", error))
        })
        .await
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BackendError> {
        self.run(|inner, conn| {
            let error = |error| sql_error(&inner.path, "count deliveries per listener", error);
            let mut statement = conn.prepare_cached(BACKLOG).map_err(error)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(Backlog::new(
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    )
                    .with_version(u32::try_from(row.get::<_, i64>(2)?).unwrap_or(0)))
                })
                .map_err(error)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(error)
        })
        .await
    }
}

impl SqliteStore {
    /// Runs `statement` (`retry.sql`, `postpone.sql`) on a held delivery: released until
    /// `run_at`, with `error` as its last error.
    async fn release_until(
        &self,
        statement: &'static str,
        doing: &'static str,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        let Some((id, lease)) = receipt.parse::<i64, String>() else {
            return Ok(());
        };
        let failure = error.to_owned();
        let run_at = unix_millis(run_at);
        let released = self
            .run(move |inner, conn| {
                conn.prepare_cached(statement)
                    .and_then(|mut statement| {
                        statement.execute(params![id, lease, run_at, failure])
                    })
                    .map_err(|error| sql_error(&inner.path, doing, error))
            })
            .await?;
        if released > 0 {
            self.wake();
        }
        Ok(())
    }
}
