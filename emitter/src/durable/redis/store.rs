//! The [`Store`](crate::durable::Store) implementation: each call one script (or one transaction).

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::{Duration, SystemTime};

use super::connection::{ran_in_part, redis_error};
use super::entries::{
    delay_millis, duration_millis, entry_order, into_array, into_int, into_text, is_entry_id,
    read_dead_letter, Held,
};
use super::{RedisStore, SCHEMA_VERSION};
use crate::durable::{
    claimable, unix_millis, Backlog, Claimed, Counts, DeadLetter, Heartbeat, Inserted, NewEmit,
    Receipt, Setup, Store, Subscription,
};
use crate::emit_id::EmitId;
use crate::error::{BackendError, BackendErrorKind};

/// The most due delayed deliveries one claim moves to their streams (the rest go next claim).
const MOVES_PER_CLAIM: usize = 1000;

/// The most deliveries one claim takes, whatever the caller asks.
const MAX_CLAIM: usize = 10_000;

/// How often a waiter whose blocking read failed asks whether the server answers again: the
/// worker looks for work this soon after the server is back.
const RETRY: Duration = Duration::from_millis(100);

impl Store for RedisStore {
    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        self.concurrency.set(setup);
        self.key_retention_ms
            .store(duration_millis(setup.key_retention), Ordering::Relaxed);
        let mut listeners: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for route in &setup.routes {
            for listener in &route.listeners {
                if seen.insert(*listener) {
                    listeners.push((*listener).to_owned());
                }
            }
        }
        let mut invocation = self.invocation(&self.scripts.open);
        invocation.arg(SCHEMA_VERSION);
        for listener in &listeners {
            invocation.arg(listener);
        }
        self.eval(&invocation, "open the store").await?;
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) =
            listeners.iter().cloned().collect();
        *self.watched.lock().unwrap_or_else(PoisonError::into_inner) = listeners;
        Ok(())
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        if self.only_appends_to_ready_streams(emits) {
            match self.append_in_transaction(emits).await {
                Ok(()) => {
                    self.work.notify_waiters();
                    return Ok(Inserted {
                        stored: emits.len(),
                        duplicates: 0,
                    });
                }
                Err(error) if !ran_in_part(&error) => {
                    return Err(redis_error(&self.address, "store deliveries", error));
                }
                Err(error) => {
                    // The server ran the transaction but refused some command in it (a key
                    // that changed type since `open`, say): the other appends stand. The
                    // script checks before it writes, so it stores the batch whole or refuses
                    // with the reason; it takes every insert from now until one succeeds.
                    tracing::warn!(
                        "appending deliveries to Redis failed ({error}); checking the keys \
                         with the insert script from now on"
                    );
                    self.ready
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                }
            }
        }
        let retention = self.key_retention_ms.load(Ordering::Relaxed).max(1);
        let mut invocation = self.invocation(&self.scripts.insert);
        invocation.arg(retention).arg(emits.len());
        for emit in emits {
            let mut seen = HashSet::new();
            let listeners: Vec<&str> = emit
                .listeners
                .iter()
                .copied()
                .filter(|listener| seen.insert(*listener))
                .collect();
            invocation
                .arg(if emit.key.is_some() { "1" } else { "0" })
                .arg(emit.key.as_deref().unwrap_or(""))
                .arg(&emit.event.event_id)
                .arg(format!("{:032x}", emit.event.emit_id.as_u128()))
                .arg(unix_millis(emit.event.emitted_at))
                .arg(&emit.event.payload)
                .arg(emit.event.trace.as_deref().unwrap_or(""))
                .arg(emit.event.version)
                .arg(delay_millis(emit.run_at))
                .arg(listeners.len());
            for listener in listeners {
                invocation.arg(listener);
            }
        }
        let reply = self.eval(&invocation, "store deliveries").await?;
        let mut numbers = reply.into_iter().map(into_int);
        let (Some(Ok(stored)), Some(Ok(duplicates))) = (numbers.next(), numbers.next()) else {
            return Err(self.unexpected(
                "store deliveries",
                "no counts of stored and duplicate emits",
            ));
        };
        if stored > 0 {
            self.work.notify_waiters();
        }
        // The script checked these listeners' keys and set up their streams: the next inserts
        // to them may take the plain appends. An emit-only process learns its listeners this
        // way, from the subscriptions its inserts are routed by, not from `open`.
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        for emit in emits {
            for listener in &emit.listeners {
                if !ready.contains(*listener) {
                    ready.insert((*listener).to_owned());
                }
            }
        }
        drop(ready);
        Ok(Inserted {
            stored: usize::try_from(stored).unwrap_or(0),
            duplicates: usize::try_from(duplicates).unwrap_or(0),
        })
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
        if worker.is_empty() || worker.starts_with(':') {
            return Err(BackendError::of(
                BackendErrorKind::Misconfigured,
                format!(
                    "cannot claim deliveries for a worker named `{worker}`: give it a name that \
                     is not empty and does not start with `:` (the store's own consumers do)"
                ),
            ));
        }
        let mut invocation = self.invocation(&self.scripts.claim);
        invocation
            .arg(worker)
            .arg(limit.min(MAX_CLAIM))
            .arg(duration_millis(lease).max(1))
            .arg(self.config.max_deliveries)
            .arg(MOVES_PER_CLAIM);
        for listener in &listeners {
            let window = self.concurrency.of(listener).unwrap_or(0);
            invocation.arg(*listener).arg(window);
        }
        let what = "claim deliveries";
        let mut reply = self.eval(&invocation, what).await?.into_iter();
        let (Some(entries), Some(groups)) = (reply.next(), reply.next()) else {
            return Err(self.unexpected(what, "no claimed entries"));
        };
        let groups = into_array(groups).map_err(|problem| self.unexpected(what, &problem))?;
        {
            let mut delivered = self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut groups = groups.into_iter();
            while let (Some(listener), Some(last)) = (groups.next(), groups.next()) {
                if let (Ok(listener), Ok(last)) = (into_text(listener), into_text(last)) {
                    delivered.insert(listener, last);
                }
            }
        }
        let mut claimed = Vec::new();
        let mut corrupt = Vec::new();
        for batch in into_array(entries).map_err(|problem| self.unexpected(what, &problem))? {
            self.read_claimed(batch, worker, |entry| match entry {
                Ok(entry) => claimed.push(entry),
                Err(bad) => corrupt.push(bad),
            })
            .map_err(|problem| self.unexpected(what, &problem))?;
        }
        // Never handed out: dead-lettered under the lease this claim took. Should that fail, the
        // lease expires and a later claim tries again.
        for (receipt, reason) in corrupt {
            if let Err(error) = self.dead_letter(&receipt, &reason).await {
                tracing::warn!(
                    receipt = receipt.id,
                    "could not dead-letter a corrupt delivery ({reason}): {error}"
                );
            }
        }
        Ok(claimed)
    }

    async fn extend(&self, receipts: &[Receipt], _lease: Duration) -> Result<(), BackendError> {
        // The lease is measured by the claimer (see the module docs): resetting the idle time
        // is all an extension does.
        self.per_receipt(&self.scripts.extend, receipts, "extend leases")
            .await
    }

    async fn release(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        self.per_receipt(&self.scripts.release, receipts, "release deliveries")
            .await?;
        self.work.notify_waiters();
        Ok(())
    }

    async fn unfinished(&self, emits: RangeInclusive<EmitId>) -> Result<u64, BackendError> {
        const PAGE: usize = 1000;
        let what = "count unfinished deliveries";
        let first = format!("{:032x}", emits.start().as_u128());
        let last = format!("{:032x}", emits.end().as_u128());
        let places = self.places(what).await?;
        let mut found = 0u64;
        for (kind, name, mut cursor) in places {
            loop {
                let mut invocation = self.invocation(&self.scripts.unfinished);
                invocation
                    .arg(&first)
                    .arg(&last)
                    .arg(kind)
                    .arg(&name)
                    .arg(&cursor)
                    .arg(PAGE);
                let mut reply = self.eval(&invocation, what).await?.into_iter();
                let (Some(Ok(count)), Some(Ok(next))) =
                    (reply.next().map(into_int), reply.next().map(into_text))
                else {
                    return Err(self.unexpected(what, "no count and cursor"));
                };
                found += u64::try_from(count).unwrap_or(0);
                if next.is_empty() {
                    break;
                }
                cursor = next;
            }
        }
        Ok(found)
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        // By stream and consumer, each in entry order, so that the script checks the leases of
        // a group with one `XPENDING` over the range its entries span.
        type Entries<'a> = Vec<((u64, u64), &'a str, u64)>;
        let mut groups: HashMap<(&str, &str), Entries<'_>> = HashMap::new();
        for held in receipts.iter().filter_map(Held::parse) {
            // An id Redis cannot have made holds nothing.
            let Some(order) = entry_order(held.entry) else {
                continue;
            };
            groups
                .entry((held.listener, held.worker))
                .or_default()
                .push((order, held.entry, held.count));
        }
        if groups.is_empty() {
            return Ok(());
        }
        let mut invocation = self.invocation(&self.scripts.ack);
        for ((listener, consumer), mut entries) in groups {
            entries.sort_unstable();
            entries.dedup();
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                continue;
            };
            invocation
                .arg(listener)
                .arg(consumer)
                .arg(first.1)
                .arg(last.1)
                .arg(entries.len());
            for (_, entry, count) in &entries {
                invocation.arg(*entry).arg(*count);
            }
        }
        self.eval(&invocation, "acknowledge deliveries").await?;
        Ok(())
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        self.release_until(receipt, run_at, error, true, "release a delivery to retry")
            .await
    }

    async fn postpone(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        note: &str,
    ) -> Result<(), BackendError> {
        let doing = "give back a delivery of a newer event version";
        self.release_until(receipt, run_at, note, false, doing)
            .await
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        let Some(held) = Held::parse(receipt) else {
            return Ok(());
        };
        let mut invocation = self.invocation(&self.scripts.dead_letter);
        invocation
            .arg(held.listener)
            .arg(held.entry)
            .arg(held.worker)
            .arg(held.count)
            .arg(reason);
        self.eval(&invocation, "dead-letter a delivery").await?;
        Ok(())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let what = "list dead letters";
        let mut range = ::redis::cmd("XRANGE");
        range
            .arg(self.key("dead"))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(limit);
        let entries = into_array(self.command(&range, what).await?)
            .map_err(|problem| self.unexpected(what, &problem))?;
        entries
            .into_iter()
            .map(|entry| read_dead_letter(entry).map_err(|problem| self.corrupt(what, &problem)))
            .collect()
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        if !is_entry_id(id) {
            return Ok(false);
        }
        let mut invocation = self.invocation(&self.scripts.replay);
        invocation.arg(id);
        let what = "replay a dead letter";
        let reply = self.eval(&invocation, what).await?;
        let replayed = reply
            .into_iter()
            .next()
            .map(into_int)
            .transpose()
            .map_err(|problem| self.unexpected(what, &problem))?
            == Some(1);
        if replayed {
            self.work.notify_waiters();
        }
        Ok(replayed)
    }

    async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        if !is_entry_id(id) {
            return Ok(false);
        }
        let what = "discard a dead letter";
        let mut delete = ::redis::cmd("XDEL");
        delete.arg(self.key("dead")).arg(id);
        let deleted = into_int(self.command(&delete, what).await?)
            .map_err(|problem| self.unexpected(what, &problem))?;
        Ok(deleted > 0)
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        let what = "count deliveries";
        let reply = self
            .eval(&self.invocation(&self.scripts.counts), what)
            .await?;
        let numbers: Vec<u64> = reply
            .into_iter()
            .map(|value| into_int(value).map(|number| u64::try_from(number).unwrap_or(0)))
            .collect::<Result<_, _>>()
            .map_err(|problem| self.unexpected(what, &problem))?;
        let [waiting, leased, dead] = numbers[..] else {
            return Err(self.unexpected(what, "not three counts"));
        };
        Ok(Counts {
            waiting,
            leased,
            dead,
        })
    }

    async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), BackendError> {
        self.record_heartbeat(beat).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let work = self.work.notified();
        tokio::pin!(work);
        work.as_mut().enable();
        // One blocking read per process is enough; other waiters hear from it.
        let Ok(mut waiter) = self.waiter.try_lock() else {
            let _ = tokio::time::timeout(timeout, work).await;
            return;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let blocked = tokio::select! {
            () = &mut work => Ok(()),
            blocked = self.block_for_work(&mut waiter, timeout) => blocked,
        };
        if let Err(error) = blocked {
            // Only a wake-up: the engine's next claim reports the error. Until the timeout, ask
            // now and then whether the server answers again, and return as soon as it does: what
            // was stored, and whose leases ran out, while it was away is waiting.
            tracing::debug!("waiting for deliveries in Redis failed: {error}");
            loop {
                let retry = (tokio::time::Instant::now() + RETRY).min(deadline);
                tokio::select! {
                    () = &mut work => break,
                    () = tokio::time::sleep_until(retry) => {}
                }
                match tokio::time::timeout_at(deadline, self.next_due()).await {
                    Ok(Ok(_)) | Err(_) => break,
                    Ok(Err(error)) => tracing::debug!("Redis still fails: {error}"),
                }
            }
        }
        drop(waiter);
        self.work.notify_waiters();
    }

    async fn subscribe(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> Result<(), BackendError> {
        self.replace_subscriptions(replace, subscriptions)
            .await
            .map(drop)
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        self.read_subscriptions().await
    }

    async fn unsubscribe(&self, listener: &str) -> Result<u64, BackendError> {
        self.replace_subscriptions(&[listener], &[]).await
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BackendError> {
        self.count_backlog().await
    }
}

impl RedisStore {
    /// Releases a held delivery until `run_at` with `error` as its last error (the retry
    /// script), its claim counted as an attempt or not (`counts`).
    async fn release_until(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
        counts: bool,
        doing: &str,
    ) -> Result<(), BackendError> {
        let Some(held) = Held::parse(receipt) else {
            return Ok(());
        };
        let delay = delay_millis(run_at);
        let in_order = self.concurrency.of(held.listener).is_some();
        let mut invocation = self.invocation(&self.scripts.retry);
        invocation
            .arg(held.listener)
            .arg(held.entry)
            .arg(held.worker)
            .arg(held.count)
            .arg(delay)
            .arg(error)
            .arg(if in_order { "1" } else { "0" })
            .arg(if counts { "1" } else { "0" });
        self.eval(&invocation, doing).await?;
        if delay == 0 {
            self.work.notify_waiters();
        }
        Ok(())
    }
}
