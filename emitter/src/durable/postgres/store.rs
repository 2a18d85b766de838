//! The [`Store`](crate::durable::Store) implementation: one statement per call, on a pooled connection.

use std::future::Future;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_postgres::Row;

use super::errors::chain;
use super::params::{duration_ms, offset_ms, parse_receipts, text, InsertBatch};
use super::statements::Statement;
use super::PostgresStore;
use crate::durable::{
    claimable, Backlog, Claimed, Counts, DeadLetter, Heartbeat, Inserted, NewEmit, Receipt, Setup,
    Store, StoredEvent, Subscription,
};
use crate::emit_id::EmitId;
use crate::error::BackendError;

impl Store for PostgresStore {
    const TRANSACTION: Option<crate::durable::TxKind> = Some(crate::durable::TxKind::Postgres);

    fn begin(
        &self,
    ) -> impl Future<Output = Result<Box<dyn crate::durable::StoreTransaction>, BackendError>> + Send
    {
        self.begin_listener()
    }

    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        self.inner.concurrency.set(setup);
        self.inner
            .key_retention_ms
            .store(duration_ms(setup.key_retention), Ordering::Relaxed);
        self.migrate().await?;
        self.ensure_listening();
        self.until_listening().await;
        Ok(())
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let batch = InsertBatch::new(emits, self.key_retention_ms());
        // Most batches have no keys: their statement skips the keys' work.
        let rows = if batch.has_keys() {
            let params = batch.params();
            self.run("store emits", &self.inner.sql.insert, &params)
                .await?
        } else {
            let params = batch.unkeyed_params();
            self.run("store emits", &self.inner.sql.insert_unkeyed, &params)
                .await?
        };
        let inserted = self.inserted(emits.len(), &rows)?;
        self.purge_keys().await;
        Ok(inserted)
    }

    async fn claim(
        &self,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let Some(names) = claimable(listeners, limit) else {
            return Ok(Vec::new());
        };
        let lease = duration_ms(lease);
        let worker = text(worker);
        // A suspect, when one is due, is claimed alone.
        let mut rows = self
            .run(
                "claim a suspect delivery",
                &self.inner.sql.claim_suspect,
                &[&names, &lease, &worker],
            )
            .await?;
        // Otherwise the due deliveries, suspects excepted.
        if rows.is_empty() {
            let concurrency = self.inner.concurrency.get();
            let (in_order, names): (Vec<&str>, Vec<&str>) = names
                .into_iter()
                .partition(|name| concurrency.contains_key(name));
            // A listener with a concurrency limit is claimed by a statement of its own, which
            // takes turns with the other claimers of that listener.
            for name in in_order {
                let left = limit.saturating_sub(rows.len());
                if left == 0 {
                    break;
                }
                let window = concurrency
                    .get(name)
                    .map_or(1, |limit| i64::from(limit.get()));
                let left = i64::try_from(left).unwrap_or(i64::MAX);
                rows.extend(
                    self.run(
                        "claim deliveries in order",
                        &self.inner.sql.claim_in_order,
                        &[&name, &window, &left, &lease, &worker],
                    )
                    .await?,
                );
            }
            let left = i64::try_from(limit.saturating_sub(rows.len())).unwrap_or(i64::MAX);
            if left > 0 && !names.is_empty() {
                rows.extend(
                    self.run(
                        "claim deliveries",
                        &self.inner.sql.claim,
                        &[&names, &left, &lease, &worker],
                    )
                    .await?,
                );
            }
        }
        let mut claimed = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for row in &rows {
            match self.claimed(row) {
                Ok(claim) => claimed.push(claim),
                Err(error) => {
                    // A row this store cannot read would be claimed again and again, blocking
                    // nothing but failing every claim that meets it: dead-letter it instead,
                    // under the lease just taken. Without its id and lease it cannot be.
                    let (Ok(id), Ok(lease)) =
                        (row.try_get::<_, i64>("id"), row.try_get::<_, i64>("lease"))
                    else {
                        return Err(error);
                    };
                    unreadable.push((Receipt::new(id, lease), error));
                }
            }
        }
        for (receipt, error) in unreadable {
            tracing::error!(
                "delivery {} in schema `{}` is corrupt and was dead-lettered: {error}",
                receipt.id,
                self.inner.schema
            );
            let reason = format!("the PostgreSQL store could not read this delivery: {error}");
            self.dead_letter(&receipt, &reason).await?;
        }
        claimed.sort_by_key(|(due, id, _)| (*due, *id));
        Ok(claimed.into_iter().map(|(_, _, claimed)| claimed).collect())
    }

    async fn extend(&self, receipts: &[Receipt], lease: Duration) -> Result<(), BackendError> {
        let (ids, leases) = parse_receipts(receipts);
        if ids.is_empty() {
            return Ok(());
        }
        let lease = duration_ms(lease);
        self.run(
            "extend leases",
            &self.inner.sql.extend,
            &[&ids, &leases, &lease],
        )
        .await?;
        Ok(())
    }

    async fn release(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        let (ids, leases) = parse_receipts(receipts);
        if ids.is_empty() {
            return Ok(());
        }
        self.run(
            "release deliveries",
            &self.inner.sql.release,
            &[&ids, &leases],
        )
        .await?;
        Ok(())
    }

    async fn unfinished(&self, emits: RangeInclusive<EmitId>) -> Result<u64, BackendError> {
        let first = format!("{:032x}", emits.start().as_u128());
        let last = format!("{:032x}", emits.end().as_u128());
        let rows = self
            .run(
                "count unfinished deliveries",
                &self.inner.sql.unfinished,
                &[&first, &last],
            )
            .await?;
        let count: i64 = rows
            .first()
            .and_then(|row| row.try_get(0).ok())
            .ok_or_else(|| self.corrupt("the count of unfinished deliveries is missing"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        let (ids, leases) = parse_receipts(receipts);
        if ids.is_empty() {
            return Ok(());
        }
        self.run(
            "acknowledge deliveries",
            &self.inner.sql.ack,
            &[&ids, &leases],
        )
        .await?;
        Ok(())
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        let doing = "release a delivery for a retry";
        self.release_until(doing, &self.inner.sql.retry, receipt, run_at, error)
            .await
    }

    async fn postpone(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        note: &str,
    ) -> Result<(), BackendError> {
        let doing = "give back a delivery of a newer event version";
        self.release_until(doing, &self.inner.sql.postpone, receipt, run_at, note)
            .await
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        let Some((id, lease)) = receipt.parse::<i64, i64>() else {
            return Ok(());
        };
        let reason = text(reason);
        self.run(
            "dead-letter a delivery",
            &self.inner.sql.dead_letter,
            &[&id, &lease, &reason],
        )
        .await?;
        Ok(())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .run("list dead letters", &self.inner.sql.dead_letters, &[&limit])
            .await?;
        rows.iter().map(|row| self.dead(row)).collect()
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let rows = self
            .run("replay a dead letter", &self.inner.sql.replay, &[&id])
            .await?;
        let replayed: i64 = rows
            .first()
            .and_then(|row| row.try_get(0).ok())
            .ok_or_else(|| self.corrupt("the replay statement returned no count"))?;
        Ok(replayed > 0)
    }

    async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let rows = self
            .run("discard a dead letter", &self.inner.sql.discard, &[&id])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        let rows = self
            .run("count deliveries", &self.inner.sql.counts, &[])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| self.corrupt("the count statement returned no row"))?;
        let count = |index: usize| -> Result<u64, BackendError> {
            let count: i64 = row
                .try_get(index)
                .map_err(|error| self.corrupt(&format!("a count is unreadable: {error}")))?;
            Ok(u64::try_from(count).unwrap_or(0))
        };
        Ok(Counts {
            waiting: count(0)?,
            leased: count(1)?,
            dead: count(2)?,
        })
    }

    async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), BackendError> {
        self.record_heartbeat(beat).await
    }

    async fn subscribe(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> Result<(), BackendError> {
        let statement =
            self.admin_statement("subscribe", include_str!("sql/subscriptions/subscribe.sql"));
        let replace: Vec<String> = replace.iter().map(|name| text(name).into_owned()).collect();
        let events: Vec<String> = subscriptions
            .iter()
            .map(|s| text(&s.event_id).into_owned())
            .collect();
        let listeners: Vec<String> = subscriptions
            .iter()
            .map(|s| text(&s.listener).into_owned())
            .collect();
        let limits: Vec<i32> = subscriptions
            .iter()
            .map(|s| {
                s.concurrency
                    .map_or(0, |limit| i32::try_from(limit.get()).unwrap_or(i32::MAX))
            })
            .collect();
        let versions: Vec<i32> = subscriptions
            .iter()
            .map(|s| i32::try_from(s.version).unwrap_or(i32::MAX))
            .collect();
        self.run(
            "record subscriptions",
            &statement,
            &[&replace, &events, &listeners, &limits, &versions],
        )
        .await?;
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        let statement = self.admin_statement(
            "subscriptions",
            include_str!("sql/subscriptions/subscriptions.sql"),
        );
        let rows = self.run("read subscriptions", &statement, &[]).await?;
        rows.iter()
            .map(|row| {
                let event_id: String = self.column(row, None, "event_id")?;
                let listener: String = self.column(row, None, "listener")?;
                let limit: Option<i32> = self.column(row, None, "concurrency")?;
                let version: i32 = self.column(row, None, "version")?;
                let seen_at: SystemTime = self.column(row, None, "seen_at")?;
                Ok(Subscription::new(event_id, listener, seen_at)
                    .concurrency(
                        limit
                            .and_then(|limit| u32::try_from(limit).ok())
                            .and_then(NonZeroU32::new),
                    )
                    .with_version(u32::try_from(version).unwrap_or(0)))
            })
            .collect()
    }

    async fn unsubscribe(&self, listener: &str) -> Result<u64, BackendError> {
        let statement = self.admin_statement(
            "unsubscribe",
            include_str!("sql/subscriptions/unsubscribe.sql"),
        );
        let listener = text(listener);
        let rows = self
            .run("delete subscriptions", &statement, &[&listener])
            .await?;
        let deleted: i64 = match rows.first() {
            Some(row) => self.column(row, None, "deleted")?,
            None => 0,
        };
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BackendError> {
        let statement =
            self.admin_statement("backlog", include_str!("sql/subscriptions/backlog.sql"));
        let rows = self
            .run("count deliveries per listener", &statement, &[])
            .await?;
        rows.iter()
            .map(|row| {
                let listener: String = self.column(row, None, "listener")?;
                let event_id: String = self.column(row, None, "event_id")?;
                let version: i32 = self.column(row, None, "version")?;
                let unfinished: i64 = self.column(row, None, "unfinished")?;
                Ok(
                    Backlog::new(listener, event_id, u64::try_from(unfinished).unwrap_or(0))
                        .with_version(u32::try_from(version).unwrap_or(0)),
                )
            })
            .collect()
    }

    fn wait_for_work(&self, timeout: Duration) -> impl Future<Output = ()> + Send {
        self.ensure_listening();
        let work = Arc::clone(&self.inner.work);
        async move {
            // Resolves at once on a notification that came while nobody waited (see `listen`).
            let _ = tokio::time::timeout(timeout, work.notified()).await;
        }
    }
}

impl PostgresStore {
    /// Runs `statement` (`retry.sql`, `postpone.sql`) on a held delivery: released until
    /// `run_at`, with `error` as its last error.
    async fn release_until(
        &self,
        doing: &str,
        statement: &Statement,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        let Some((id, lease)) = receipt.parse::<i64, i64>() else {
            return Ok(());
        };
        let due_in = offset_ms(run_at);
        let error = text(error);
        self.run(doing, statement, &[&id, &lease, &due_in, &error])
            .await?;
        Ok(())
    }

    /// A claimed row: (its due time before the claim, its id, the claim).
    fn claimed(&self, row: &Row) -> Result<(SystemTime, i64, Claimed), BackendError> {
        let id: i64 = self.column(row, None, "id")?;
        let lease: i64 = self.column(row, Some(id), "lease")?;
        let attempt: i32 = self.column(row, Some(id), "attempt")?;
        let attempt = u32::try_from(attempt).map_err(|_| {
            self.corrupt(&format!(
                "delivery {id} has attempt {attempt}, a negative number of claims"
            ))
        })?;
        let due: SystemTime = self.column(row, Some(id), "due")?;
        let crashes: i32 = self.column(row, Some(id), "crashes")?;
        let crashes = u32::try_from(crashes).map_err(|_| {
            self.corrupt(&format!(
                "delivery {id} has {crashes} crashes, a negative number"
            ))
        })?;
        let claimed = Claimed {
            receipt: Receipt {
                id: id.to_string(),
                lease: lease.to_string(),
            },
            listener: self.column(row, Some(id), "listener")?,
            event: self.event(row, id, "delivery")?,
            attempt,
            crashes,
        };
        Ok((due, id, claimed))
    }

    fn dead(&self, row: &Row) -> Result<DeadLetter, BackendError> {
        let id: i64 = self.column(row, None, "id")?;
        let attempts: i32 = self.column(row, Some(id), "attempts")?;
        let attempts = u32::try_from(attempts).map_err(|_| {
            self.corrupt(&format!(
                "dead letter {id} has {attempts} attempts, a negative number"
            ))
        })?;
        Ok(DeadLetter {
            id: id.to_string(),
            listener: self.column(row, Some(id), "listener")?,
            event: self.event(row, id, "dead letter")?,
            attempts,
            reason: self.column(row, Some(id), "reason")?,
            failed_at: self.column(row, Some(id), "failed_at")?,
        })
    }

    fn event(&self, row: &Row, id: i64, kind: &str) -> Result<StoredEvent, BackendError> {
        let emit_id: String = self.column(row, Some(id), "emit_id")?;
        let emit_id = emit_id.parse().map_err(|_| {
            self.corrupt(&format!(
                "{kind} {id} has emit_id `{emit_id}`, which is not 128 bits in hex"
            ))
        })?;
        let version: i32 = self.column(row, Some(id), "version")?;
        let version = u32::try_from(version).map_err(|_| {
            self.corrupt(&format!(
                "{kind} {id} has event version {version}, a negative number"
            ))
        })?;
        Ok(StoredEvent::new(
            self.column::<String>(row, Some(id), "event_id")?,
            emit_id,
            self.column(row, Some(id), "emitted_at")?,
            self.column(row, Some(id), "payload")?,
        )
        .with_version(version)
        .with_trace(self.column(row, Some(id), "trace")?))
    }

    pub(super) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
        &self,
        row: &'a Row,
        id: Option<i64>,
        name: &str,
    ) -> Result<T, BackendError> {
        row.try_get(name).map_err(|error| {
            let row = id.map_or_else(|| "a row".to_owned(), |id| format!("row {id}"));
            self.corrupt(&format!(
                "column `{name}` of {row} is unreadable: {}",
                chain(&error)
            ))
        })
    }
}
