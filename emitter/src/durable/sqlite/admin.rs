//! The operator's side ([`Admin`]) of the SQLite store. Listings read a page from the indexes
//! the claim reads (a listener's range of `emitter_deliveries_order` or `_due`; the partial
//! index of leased rows; the dead letters by failure time), so a page costs the same whatever
//! the backlog; writes go in steps of [`STEP`] rows, each its own transaction, so that workers
//! never wait long for the file's lock.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{params, Connection, Row, TransactionBehavior};

use super::connection::sql_error;
use super::rows::{parse_emit_id, read_count, read_text};
use super::statements::{DISCARD, REPLAY};
use super::{Inner, SqliteStore};
use crate::durable::admin::{
    minute_of, read_cursor, Activity, Admin, Cancel, Delivery, DeliveryDetail, DeliveryState,
    Filter, ListenerCounts, Page, Paused, Query, WorkerInfo,
};
use crate::durable::{from_unix_millis, millis, unix_millis, Heartbeat};
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// The statements of `sql/admin/`, one per file.
mod sql {
    pub(super) const LISTENERS: &str = include_str!("sql/admin/listeners.sql");
    pub(super) const COUNTS: &str = include_str!("sql/admin/counts.sql");
    pub(super) const RUNNING_COUNTS: &str = include_str!("sql/admin/running_counts.sql");
    pub(super) const DEAD_COUNTS: &str = include_str!("sql/admin/dead_counts.sql");
    pub(super) const WAITING: &str = include_str!("sql/admin/waiting.sql");
    pub(super) const SCHEDULED: &str = include_str!("sql/admin/scheduled.sql");
    pub(super) const RUNNING: &str = include_str!("sql/admin/running.sql");
    pub(super) const DEAD: &str = include_str!("sql/admin/dead.sql");
    pub(super) const DELIVERY: &str = include_str!("sql/admin/delivery.sql");
    pub(super) const DEAD_LETTER: &str = include_str!("sql/admin/dead_letter.sql");
    pub(super) const CANCEL: &str = include_str!("sql/admin/cancel.sql");
    pub(super) const IS_DELIVERY: &str = include_str!("sql/admin/is_delivery.sql");
    pub(super) const IS_DEAD_LETTER: &str = include_str!("sql/admin/is_dead_letter.sql");
    pub(super) const MATCHING_DEAD: &str = include_str!("sql/admin/matching_dead.sql");
    pub(super) const PAUSE: &str = include_str!("sql/admin/pause.sql");
    pub(super) const RESUME: &str = include_str!("sql/admin/resume.sql");
    pub(super) const PAUSED: &str = include_str!("sql/admin/paused.sql");
    pub(super) const FORGET_WORKERS: &str = include_str!("sql/admin/forget_workers.sql");
    pub(super) const REGISTER_WORKER: &str = include_str!("sql/admin/register_worker.sql");
    pub(super) const ADD_ACTIVITY: &str = include_str!("sql/admin/add_activity.sql");
    pub(super) const PURGE_ACTIVITY: &str = include_str!("sql/admin/purge_activity.sql");
    pub(super) const WORKERS: &str = include_str!("sql/admin/workers.sql");
    pub(super) const ACTIVITY: &str = include_str!("sql/admin/activity.sql");
    pub(super) const DISCARD_LISTENER: &str = include_str!("sql/admin/discard_listener.sql");
    pub(super) const DISCARD_LISTENER_DEAD: &str =
        include_str!("sql/admin/discard_listener_dead.sql");
    pub(super) const REHOME: &str = include_str!("sql/admin/rehome.sql");
    pub(super) const REHOME_DEAD: &str = include_str!("sql/admin/rehome_dead.sql");
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;

/// How many rows one transaction of a bulk write changes at most.
const STEP: i64 = 1000;

/// How long the store keeps the listeners' activity.
const ACTIVITY_KEPT: Duration = Duration::from_secs(2 * 3600);

/// Where a listed row sorts: a time in Unix milliseconds, then its id. A cursor is the key of a
/// page's last row, written `time:id`.
type Key = (i64, i64);

fn now_millis() -> i64 {
    unix_millis(SystemTime::now())
}

/// The parameters of every listing statement (`sql/admin/waiting.sql` says which is which).
struct Listing {
    now: i64,
    after: Key,
    from: i64,
    before: i64,
    limit: i64,
    event_id: Option<String>,
    emit_id: Option<String>,
}

impl Listing {
    fn new(query: &Query) -> Result<Listing, BackendError> {
        let filter = &query.filter;
        Ok(Listing {
            now: now_millis(),
            after: match &query.cursor {
                Some(cursor) => read_cursor("SQLite store", cursor)?,
                None => (i64::MIN, i64::MIN),
            },
            from: filter.after.map_or(i64::MIN, unix_millis),
            before: filter.before.map_or(i64::MAX, unix_millis),
            limit: i64::try_from(query.limit).unwrap_or(i64::MAX),
            event_id: filter.event_id.clone(),
            emit_id: filter.emit_id.map(|id| format!("{:032x}", id.as_u128())),
        })
    }

    fn params(&self, listener: Option<&str>) -> [Value; 9] {
        let text = |value: Option<&str>| value.map_or(Value::Null, |text| Value::Text(text.into()));
        [
            text(listener),
            Value::Integer(self.now),
            Value::Integer(self.after.0),
            Value::Integer(self.after.1),
            Value::Integer(self.from),
            Value::Integer(self.before),
            Value::Integer(self.limit),
            text(self.event_id.as_deref()),
            text(self.emit_id.as_deref()),
        ]
    }
}

/// Reads a row of a listing (or of `delivery.sql`) in `state`: columns id, listener, event id,
/// emit id, emitted at, due, attempts, worker, error, then the key's time. A row the store cannot
/// read is listed all the same, with what is wrong as its error.
fn read_delivery(row: &Row<'_>, state: DeliveryState) -> rusqlite::Result<(Key, Delivery)> {
    let id: i64 = row.get(0)?;
    let key: i64 = row.get(9)?;
    let time =
        |index: usize| -> rusqlite::Result<SystemTime> { Ok(from_unix_millis(row.get(index)?)) };
    let read = || -> Result<Delivery, String> {
        let emit_id = match row.get_ref(3) {
            Ok(value) => parse_emit_id(value.as_bytes().map_err(|_| "its emit id is not text")?)?,
            Err(error) => return Err(format!("its emit id cannot be read: {error}")),
        };
        Ok(Delivery {
            id: id.to_string(),
            state,
            listener: read_text(row, 1, "listener")?,
            event_id: read_text(row, 2, "event id")?,
            emit_id,
            emitted_at: time(4).map_err(|error| error.to_string())?,
            due: time(5).map_err(|error| error.to_string())?,
            attempts: read_count(row, 6, "attempt count")?,
            worker: row.get(7).map_err(|error| error.to_string())?,
            error: row.get(8).map_err(|error| error.to_string())?,
        })
    };
    let delivery = read().unwrap_or_else(|problem| Delivery {
        id: id.to_string(),
        state,
        listener: row.get(1).unwrap_or_default(),
        event_id: row.get(2).unwrap_or_default(),
        emit_id: EmitId::from_u128(0),
        emitted_at: SystemTime::UNIX_EPOCH,
        due: from_unix_millis(key),
        attempts: 0,
        worker: None,
        error: Some(format!(
            "the SQLite store cannot read this delivery: {problem}"
        )),
    });
    Ok(((key, id), delivery))
}

/// Runs a listing statement with `params`, adding its rows to `rows`.
fn list_into(
    conn: &Connection,
    statement: &str,
    params: [Value; 9],
    state: DeliveryState,
    rows: &mut Vec<(Key, Delivery)>,
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(statement)?;
    let mut found = statement.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = found.next()? {
        rows.push(read_delivery(row, state)?);
    }
    Ok(())
}

/// The listeners that have deliveries.
fn listeners(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(sql::LISTENERS)?;
    let names = statement.query_map([], |row| row.get(0))?;
    names.collect()
}

impl Inner {
    fn error(&self, doing: &'static str) -> impl Fn(rusqlite::Error) -> BackendError + '_ {
        move |error| sql_error(&self.path, doing, error)
    }

    fn page(&self, conn: &mut Connection, query: &Query) -> Result<Page, BackendError> {
        let listing = Listing::new(query)?;
        let error = self.error("list deliveries");
        let tx = conn.transaction().map_err(&error)?;
        let mut rows = Vec::new();
        let wanted = query.filter.listener.as_deref();
        match query.state {
            // A range of one listener's index each, merged.
            DeliveryState::Waiting | DeliveryState::Scheduled => {
                let statement = if query.state == DeliveryState::Waiting {
                    sql::WAITING
                } else {
                    sql::SCHEDULED
                };
                let names = match wanted {
                    Some(listener) => vec![listener.to_owned()],
                    None => listeners(&tx).map_err(&error)?,
                };
                for name in &names {
                    let params = listing.params(Some(name));
                    list_into(&tx, statement, params, query.state, &mut rows).map_err(&error)?;
                }
            }
            DeliveryState::Running => {
                list_into(
                    &tx,
                    sql::RUNNING,
                    listing.params(wanted),
                    query.state,
                    &mut rows,
                )
                .map_err(&error)?;
            }
            DeliveryState::Dead => {
                list_into(
                    &tx,
                    sql::DEAD,
                    listing.params(wanted),
                    query.state,
                    &mut rows,
                )
                .map_err(&error)?;
            }
        }
        tx.commit().map_err(&error)?;
        rows.sort_by_key(|(key, _)| *key);
        rows.truncate(query.limit);
        let next = (rows.len() == query.limit)
            .then(|| rows.last().map(|((time, id), _)| format!("{time}:{id}")))
            .flatten();
        Ok(Page {
            deliveries: rows.into_iter().map(|(_, delivery)| delivery).collect(),
            next,
        })
    }

    fn detail(
        &self,
        conn: &mut Connection,
        id: i64,
    ) -> Result<Option<DeliveryDetail>, BackendError> {
        let error = self.error("read a delivery");
        let now = now_millis();
        let tx = conn.transaction().map_err(&error)?;
        let mut found = None;
        for (statement, dead) in [(sql::DELIVERY, false), (sql::DEAD_LETTER, true)] {
            let mut statement = tx.prepare_cached(statement).map_err(&error)?;
            let mut rows = statement.query([id]).map_err(&error)?;
            let Some(row) = rows.next().map_err(&error)? else {
                continue;
            };
            let leased: bool = row.get(9).map_err(&error)?;
            let due: i64 = row.get(5).map_err(&error)?;
            let state = if dead {
                DeliveryState::Dead
            } else if due > now {
                if leased {
                    DeliveryState::Running
                } else {
                    DeliveryState::Scheduled
                }
            } else {
                DeliveryState::Waiting
            };
            let (_, mut delivery) = read_delivery(row, state).map_err(&error)?;
            if state != DeliveryState::Running {
                delivery.worker = None;
            }
            found = Some(DeliveryDetail {
                delivery,
                payload: row.get(10).map_err(&error)?,
                trace: row.get(11).map_err(&error)?,
            });
            break;
        }
        tx.commit().map_err(&error)?;
        Ok(found)
    }

    fn cancel(&self, conn: &mut Connection, id: i64) -> Result<Cancel, BackendError> {
        let error = self.error("cancel a delivery");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&error)?;
        let count = |statement: &str| -> rusqlite::Result<i64> {
            tx.prepare_cached(statement)?
                .query_row([id], |row| row.get(0))
        };
        let deleted = tx
            .prepare_cached(sql::CANCEL)
            .and_then(|mut statement| statement.execute(params![id, now_millis()]))
            .map_err(&error)?;
        let outcome = if deleted > 0 {
            Cancel::Cancelled
        } else if count(sql::IS_DELIVERY).map_err(&error)? > 0 {
            Cancel::Running
        } else if count(sql::IS_DEAD_LETTER).map_err(&error)? > 0 {
            Cancel::Dead
        } else {
            Cancel::NotFound
        };
        tx.commit().map_err(&error)?;
        Ok(outcome)
    }

    /// Replays (or with `discard`, discards) the next [`STEP`] dead letters after id `after`
    /// that `filter` matches; returns how many, and the last id.
    fn dead_step(
        &self,
        conn: &mut Connection,
        filter: &Filter,
        after: i64,
        discard: bool,
    ) -> Result<(u64, i64), BackendError> {
        let error = self.error(if discard {
            "discard dead letters"
        } else {
            "replay dead letters"
        });
        let now = now_millis();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&error)?;
        let ids: Vec<i64> = {
            let mut statement = tx.prepare_cached(sql::MATCHING_DEAD).map_err(&error)?;
            let ids = statement
                .query_map(
                    params![
                        after,
                        filter.after.map_or(i64::MIN, unix_millis),
                        filter.before.map_or(i64::MAX, unix_millis),
                        filter.listener,
                        filter.event_id,
                        filter.emit_id.map(|id| format!("{:032x}", id.as_u128())),
                        STEP,
                    ],
                    |row| row.get(0),
                )
                .map_err(&error)?;
            ids.collect::<rusqlite::Result<_>>().map_err(&error)?
        };
        for &id in &ids {
            if !discard {
                tx.prepare_cached(REPLAY)
                    .and_then(|mut statement| statement.execute(params![id, now]))
                    .map_err(&error)?;
            }
            tx.prepare_cached(DISCARD)
                .and_then(|mut statement| statement.execute([id]))
                .map_err(&error)?;
        }
        tx.commit().map_err(&error)?;
        Ok((ids.len() as u64, ids.last().copied().unwrap_or(after)))
    }

    /// Runs a bulk statement about `listener` (`?1` listener, `?2` now, `?3` step, `?4` the
    /// other listener, when it has one) until it changes fewer rows than a step.
    fn in_steps(
        &self,
        conn: &mut Connection,
        doing: &'static str,
        statement: &str,
        listener: &str,
        to: Option<&str>,
    ) -> Result<u64, BackendError> {
        let error = self.error(doing);
        let mut changed = 0;
        loop {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&error)?;
            let rows = {
                let mut statement = tx.prepare_cached(statement).map_err(&error)?;
                match to {
                    Some(to) => statement.execute(params![listener, now_millis(), STEP, to]),
                    None => statement.execute(params![listener, now_millis(), STEP]),
                }
                .map_err(&error)?
            };
            tx.commit().map_err(&error)?;
            changed += rows as u64;
            if (rows as i64) < STEP {
                return Ok(changed);
            }
        }
    }

    pub(super) fn heartbeat(
        &self,
        conn: &mut Connection,
        beat: &Heartbeat,
    ) -> Result<(), BackendError> {
        let error = self.error("record a heartbeat");
        let now = now_millis();
        let expires = now.saturating_add(millis(beat.ttl));
        let minute = unix_millis(minute_of(from_unix_millis(now)));
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&error)?;
        {
            tx.prepare_cached(sql::FORGET_WORKERS)
                .and_then(|mut statement| statement.execute(params![beat.worker, now]))
                .map_err(&error)?;
            let mut register = tx.prepare_cached(sql::REGISTER_WORKER).map_err(&error)?;
            let mut add = tx.prepare_cached(sql::ADD_ACTIVITY).map_err(&error)?;
            for listener in &beat.listeners {
                register
                    .execute(params![beat.worker, listener.listener, now, expires])
                    .map_err(&error)?;
                if !listener.is_idle() {
                    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    add.execute(params![
                        minute,
                        listener.listener,
                        count(listener.delivered),
                        count(listener.failed),
                        count(listener.retried)
                    ])
                    .map_err(&error)?;
                }
            }
            tx.prepare_cached(sql::PURGE_ACTIVITY)
                .and_then(|mut statement| {
                    statement.execute([minute.saturating_sub(millis(ACTIVITY_KEPT))])
                })
                .map_err(&error)?;
        }
        tx.commit().map_err(&error)
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl SqliteStore {
    /// Runs a bulk statement in steps on the blocking pool (see [`Inner::in_steps`]).
    async fn steps(
        &self,
        doing: &'static str,
        statements: [&'static str; 2],
        listener: &str,
        to: Option<&str>,
    ) -> Result<u64, BackendError> {
        let listener = listener.to_owned();
        let to = to.map(str::to_owned);
        self.run(move |inner, conn| {
            let mut changed = 0;
            for statement in statements {
                changed += inner.in_steps(conn, doing, statement, &listener, to.as_deref())?;
            }
            Ok(changed)
        })
        .await
    }

    async fn dead_in_steps(&self, filter: &Filter, discard: bool) -> Result<u64, BackendError> {
        let mut done = 0;
        let mut after = i64::MIN;
        loop {
            let filter = filter.clone();
            let (step, last) = self
                .run(move |inner, conn| inner.dead_step(conn, &filter, after, discard))
                .await?;
            done += step;
            if (step as i64) < STEP {
                return Ok(done);
            }
            after = last;
        }
    }
}

impl Admin for SqliteStore {
    async fn listener_counts(&self) -> Result<Vec<ListenerCounts>, BackendError> {
        self.run(|inner, conn| {
            let error = inner.error("count deliveries by listener");
            let now = now_millis();
            let tx = conn.transaction().map_err(&error)?;
            let mut counts: BTreeMap<String, ListenerCounts> = BTreeMap::new();
            let mut running: BTreeMap<String, u64> = BTreeMap::new();
            {
                let mut statement = tx.prepare_cached(sql::RUNNING_COUNTS).map_err(&error)?;
                let mut rows = statement.query([now]).map_err(&error)?;
                while let Some(row) = rows.next().map_err(&error)? {
                    running.insert(
                        row.get(0).map_err(&error)?,
                        count(row.get(1).map_err(&error)?),
                    );
                }
                let mut statement = tx.prepare_cached(sql::COUNTS).map_err(&error)?;
                let mut rows = statement.query([now]).map_err(&error)?;
                while let Some(row) = rows.next().map_err(&error)? {
                    let listener: String = row.get(0).map_err(&error)?;
                    let total = count(row.get(1).map_err(&error)?);
                    let waiting = count(row.get(2).map_err(&error)?);
                    let oldest: Option<i64> = row.get(3).map_err(&error)?;
                    let running = running.get(&listener).copied().unwrap_or(0);
                    counts.insert(
                        listener.clone(),
                        ListenerCounts {
                            listener,
                            waiting,
                            scheduled: total.saturating_sub(waiting + running),
                            running,
                            dead: 0,
                            oldest_waiting: oldest.map(from_unix_millis),
                        },
                    );
                }
                let mut statement = tx.prepare_cached(sql::DEAD_COUNTS).map_err(&error)?;
                let mut rows = statement.query([]).map_err(&error)?;
                while let Some(row) = rows.next().map_err(&error)? {
                    let listener: String = row.get(0).map_err(&error)?;
                    counts
                        .entry(listener.clone())
                        .or_insert_with(|| ListenerCounts::new(listener))
                        .dead = count(row.get(1).map_err(&error)?);
                }
            }
            tx.commit().map_err(&error)?;
            Ok(counts.into_values().collect())
        })
        .await
    }

    async fn deliveries(&self, query: &Query) -> Result<Page, BackendError> {
        let query = query.clone();
        self.run(move |inner, conn| inner.page(conn, &query)).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryDetail>, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        self.run(move |inner, conn| inner.detail(conn, id)).await
    }

    async fn cancel(&self, id: &str) -> Result<Cancel, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(Cancel::NotFound);
        };
        self.run(move |inner, conn| inner.cancel(conn, id)).await
    }

    async fn replay_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let replayed = self.dead_in_steps(filter, false).await?;
        if replayed > 0 {
            self.wake();
        }
        Ok(replayed)
    }

    async fn discard_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        self.dead_in_steps(filter, true).await
    }

    async fn pause(&self, listener: &str) -> Result<bool, BackendError> {
        let listener = listener.to_owned();
        self.run(move |inner, conn| {
            conn.prepare_cached(sql::PAUSE)
                .and_then(|mut statement| statement.execute(params![listener, now_millis()]))
                .map(|added| added > 0)
                .map_err(inner.error("pause a listener"))
        })
        .await
    }

    async fn resume(&self, listener: &str) -> Result<bool, BackendError> {
        let listener = listener.to_owned();
        let resumed = self
            .run(move |inner, conn| {
                conn.prepare_cached(sql::RESUME)
                    .and_then(|mut statement| statement.execute([listener]))
                    .map(|deleted| deleted > 0)
                    .map_err(inner.error("resume a listener"))
            })
            .await?;
        if resumed {
            self.wake();
        }
        Ok(resumed)
    }

    async fn paused(&self) -> Result<Vec<Paused>, BackendError> {
        self.run(|inner, conn| {
            let error = inner.error("list paused listeners");
            let mut statement = conn.prepare_cached(sql::PAUSED).map_err(&error)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(Paused {
                        listener: row.get(0)?,
                        since: from_unix_millis(row.get(1)?),
                    })
                })
                .map_err(&error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&error)
        })
        .await
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        self.run(|inner, conn| {
            let error = inner.error("list workers");
            let mut statement = conn.prepare_cached(sql::WORKERS).map_err(&error)?;
            let mut rows = statement.query([now_millis()]).map_err(&error)?;
            let mut workers: Vec<WorkerInfo> = Vec::new();
            while let Some(row) = rows.next().map_err(&error)? {
                let worker: String = row.get(0).map_err(&error)?;
                let listener: String = row.get(1).map_err(&error)?;
                let seen_at = from_unix_millis(row.get(2).map_err(&error)?);
                let expires_at = from_unix_millis(row.get(3).map_err(&error)?);
                match workers.last_mut() {
                    Some(last) if last.worker == worker => last.listeners.push(listener),
                    _ => workers.push(WorkerInfo {
                        worker,
                        listeners: vec![listener],
                        seen_at,
                        expires_at,
                    }),
                }
            }
            Ok(workers)
        })
        .await
    }

    async fn activity(&self, since: SystemTime) -> Result<Vec<Activity>, BackendError> {
        let from = unix_millis(minute_of(since));
        self.run(move |inner, conn| {
            let error = inner.error("read the listeners' activity");
            let mut statement = conn.prepare_cached(sql::ACTIVITY).map_err(&error)?;
            let rows = statement
                .query_map([from], |row| {
                    Ok(Activity {
                        minute: from_unix_millis(row.get(0)?),
                        listener: row.get(1)?,
                        delivered: count(row.get(2)?),
                        failed: count(row.get(3)?),
                        retried: count(row.get(4)?),
                    })
                })
                .map_err(&error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&error)
        })
        .await
    }

    async fn discard_listener(&self, listener: &str) -> Result<u64, BackendError> {
        self.steps(
            "discard a listener's deliveries",
            [sql::DISCARD_LISTENER, sql::DISCARD_LISTENER_DEAD],
            listener,
            None,
        )
        .await
    }

    async fn rehome(&self, from: &str, to: &str) -> Result<u64, BackendError> {
        if from == to {
            return Ok(0);
        }
        let moved = self
            .steps(
                "rehome a listener's deliveries",
                [sql::REHOME, sql::REHOME_DEAD],
                from,
                Some(to),
            )
            .await?;
        if moved > 0 {
            self.wake();
        }
        Ok(moved)
    }
}
