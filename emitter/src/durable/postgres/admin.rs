//! The operator's side ([`Admin`]) of the PostgreSQL store: one statement per call (`sql/admin/`),
//! rendered for the store's schema. Listings read a page from the indexes the claims read, so a
//! page costs the same whatever the backlog; bulk writes go [`STEP`] rows per statement, skipping
//! rows other transactions hold.

use std::time::{Duration, SystemTime};

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::params::{duration_ms, text};
use super::statements::{render, Statement};
use super::PostgresStore;
use crate::durable::admin::{
    minute_of, read_cursor, Activity, Admin, Cancel, Delivery, DeliveryDetail, DeliveryState,
    Filter, ListenerCounts, Page, Paused, Query, WorkerInfo,
};
use crate::durable::Heartbeat;
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// How many rows one statement of a bulk write changes at most.
const STEP: i64 = 1000;

/// The latest time a filter's "before" stands for when it has none: later than any due time the
/// store writes (it clamps offsets to about 300 years).
const END_OF_TIME: Duration = Duration::from_secs(400 * 365 * 24 * 3600);

/// Where a listed row sorts: a time in microseconds since the epoch (PostgreSQL's precision),
/// then its id. A cursor is the key of a page's last row, written `time:id`.
type Key = (u128, i64);

fn micros(time: SystemTime) -> u128 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros())
}

fn from_micros(micros: u128) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

fn emit_text(emit_id: Option<EmitId>) -> Option<String> {
    emit_id.map(|id| format!("{:032x}", id.as_u128()))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl PostgresStore {
    /// The statement of `sql/admin/{name}.sql` for this store's schema.
    pub(super) fn admin_statement(&self, name: &'static str, template: &str) -> Statement {
        Statement {
            name,
            text: render(template, &self.inner.schema),
        }
    }

    /// Runs a statement that answers one row, and returns it.
    async fn one(
        &self,
        op: &str,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, BackendError> {
        self.run(op, statement, params)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| self.corrupt(&format!("the statement to {op} answered no row")))
    }

    /// Runs a statement that answers a count (in its first column) until it counts fewer than
    /// a step; returns the sum.
    async fn in_steps(
        &self,
        op: &str,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, BackendError> {
        let mut done = 0;
        loop {
            let row = self.one(op, statement, params).await?;
            let step: i64 = row.try_get(0).map_err(|error| {
                self.corrupt(&format!("the statement to {op} answered no count: {error}"))
            })?;
            done += count(step);
            if step < STEP {
                return Ok(done);
            }
        }
    }

    /// A listed row (see `sql/admin/waiting.sql` for its columns) in `state`, and its key.
    fn listed(&self, row: &Row, state: DeliveryState) -> Result<(Key, Delivery), BackendError> {
        let id: i64 = self.column(row, None, "id")?;
        let at = Some(id);
        let emit_id: String = self.column(row, at, "emit_id")?;
        let attempts: i32 = self.column(row, at, "attempts")?;
        let key: SystemTime = self.column(row, at, "key")?;
        let delivery = Delivery {
            id: id.to_string(),
            state,
            listener: self.column(row, at, "listener")?,
            event_id: self.column(row, at, "event_id")?,
            emit_id: emit_id.parse().map_err(|_| {
                self.corrupt(&format!(
                    "row {id} has emit_id `{emit_id}`, not 128 bits in hex"
                ))
            })?,
            emitted_at: self.column(row, at, "emitted_at")?,
            due: self.column(row, at, "due")?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            worker: self.column(row, at, "worker")?,
            error: self.column(row, at, "error")?,
        };
        Ok(((micros(key), id), delivery))
    }

    /// Runs `statement` (`replay_matching.sql` or `discard_matching.sql`) for the dead letters
    /// `filter` matches, a step at a time.
    async fn dead_in_steps(
        &self,
        op: &str,
        statement: &Statement,
        filter: &Filter,
    ) -> Result<u64, BackendError> {
        let (from, before, emit_id) = Self::dead_filter_params(filter);
        self.in_steps(
            op,
            statement,
            &[
                &from,
                &before,
                &filter.listener,
                &filter.event_id,
                &emit_id,
                &STEP,
            ],
        )
        .await
    }

    fn dead_filter_params(filter: &Filter) -> (SystemTime, SystemTime, Option<String>) {
        (
            filter.after.unwrap_or(SystemTime::UNIX_EPOCH),
            filter
                .before
                .unwrap_or(SystemTime::UNIX_EPOCH + END_OF_TIME),
            emit_text(filter.emit_id),
        )
    }
}

impl Admin for PostgresStore {
    async fn listener_counts(&self) -> Result<Vec<ListenerCounts>, BackendError> {
        let statement = self.admin_statement("admin_counts", include_str!("sql/admin/counts.sql"));
        let rows = self
            .run("count deliveries by listener", &statement, &[])
            .await?;
        rows.iter()
            .map(|row| {
                let number = |name: &str| -> Result<u64, BackendError> {
                    Ok(count(self.column(row, None, name)?))
                };
                Ok(ListenerCounts {
                    listener: self.column(row, None, "listener")?,
                    waiting: number("waiting")?,
                    scheduled: number("scheduled")?,
                    running: number("running")?,
                    dead: number("dead")?,
                    oldest_waiting: self.column(row, None, "oldest")?,
                })
            })
            .collect()
    }

    async fn deliveries(&self, query: &Query) -> Result<Page, BackendError> {
        let statement = match query.state {
            DeliveryState::Waiting => {
                self.admin_statement("admin_waiting", include_str!("sql/admin/waiting.sql"))
            }
            DeliveryState::Scheduled => {
                self.admin_statement("admin_scheduled", include_str!("sql/admin/scheduled.sql"))
            }
            DeliveryState::Running => {
                self.admin_statement("admin_running", include_str!("sql/admin/running.sql"))
            }
            DeliveryState::Dead => {
                self.admin_statement("admin_dead", include_str!("sql/admin/dead.sql"))
            }
        };
        let filter = &query.filter;
        let (after_time, after_id) = match &query.cursor {
            Some(cursor) => {
                let (time, id): Key = read_cursor("PostgreSQL store", cursor)?;
                (from_micros(time), id)
            }
            None => (SystemTime::UNIX_EPOCH, i64::MIN),
        };
        let (from, before, emit_id) = Self::dead_filter_params(filter);
        // The waiting listing takes an open bound as NULL: with a bound it cannot know, a
        // generic plan took the range for selective and sorted all of a listener's rows.
        let (from, before): (&(dyn ToSql + Sync), &(dyn ToSql + Sync)) =
            if query.state == DeliveryState::Waiting {
                (&filter.after, &filter.before)
            } else {
                (&from, &before)
            };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = self
            .run(
                "list deliveries",
                &statement,
                &[
                    &filter.listener,
                    &after_time,
                    &after_id,
                    from,
                    before,
                    &limit,
                    &filter.event_id,
                    &emit_id,
                ],
            )
            .await?;
        let listed = rows
            .iter()
            .map(|row| self.listed(row, query.state))
            .collect::<Result<Vec<_>, _>>()?;
        let next = (listed.len() == query.limit)
            .then(|| listed.last().map(|((time, id), _)| format!("{time}:{id}")))
            .flatten();
        Ok(Page {
            deliveries: listed.into_iter().map(|(_, delivery)| delivery).collect(),
            next,
        })
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryDetail>, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        let statement =
            self.admin_statement("admin_delivery", include_str!("sql/admin/delivery.sql"));
        let rows = self.run("read a delivery", &statement, &[&id]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let state: String = self.column(row, Some(id), "state")?;
        let state = state
            .parse()
            .map_err(|_| self.corrupt(&format!("delivery {id} is in no known state ({state})")))?;
        // Its due time stands in for the key, which a single delivery does not need.
        let emit_id: String = self.column(row, Some(id), "emit_id")?;
        let attempts: i32 = self.column(row, Some(id), "attempts")?;
        let delivery = Delivery {
            id: id.to_string(),
            state,
            listener: self.column(row, Some(id), "listener")?,
            event_id: self.column(row, Some(id), "event_id")?,
            emit_id: emit_id.parse().map_err(|_| {
                self.corrupt(&format!(
                    "row {id} has emit_id `{emit_id}`, not 128 bits in hex"
                ))
            })?,
            emitted_at: self.column(row, Some(id), "emitted_at")?,
            due: self.column(row, Some(id), "due")?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            worker: if state == DeliveryState::Running {
                self.column(row, Some(id), "worker")?
            } else {
                None
            },
            error: self.column(row, Some(id), "error")?,
        };
        Ok(Some(DeliveryDetail {
            delivery,
            payload: self.column(row, Some(id), "payload")?,
            trace: self.column(row, Some(id), "trace")?,
        }))
    }

    async fn cancel(&self, id: &str) -> Result<Cancel, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(Cancel::NotFound);
        };
        let statement = self.admin_statement("admin_cancel", include_str!("sql/admin/cancel.sql"));
        let row = self.one("cancel a delivery", &statement, &[&id]).await?;
        let outcome: String = self.column(&row, Some(id), "outcome")?;
        Ok(match outcome.as_str() {
            "cancelled" => Cancel::Cancelled,
            "running" => Cancel::Running,
            "dead" => Cancel::Dead,
            _ => Cancel::NotFound,
        })
    }

    async fn replay_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let statement = self.admin_statement(
            "admin_replay_matching",
            include_str!("sql/admin/replay_matching.sql"),
        );
        self.dead_in_steps("replay dead letters", &statement, filter)
            .await
    }

    async fn discard_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let statement = self.admin_statement(
            "admin_discard_matching",
            include_str!("sql/admin/discard_matching.sql"),
        );
        self.dead_in_steps("discard dead letters", &statement, filter)
            .await
    }

    async fn pause(&self, listener: &str) -> Result<bool, BackendError> {
        let statement = self.admin_statement("admin_pause", include_str!("sql/admin/pause.sql"));
        let listener = text(listener);
        let rows = self
            .run("pause a listener", &statement, &[&listener])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn resume(&self, listener: &str) -> Result<bool, BackendError> {
        let statement = self.admin_statement("admin_resume", include_str!("sql/admin/resume.sql"));
        let listener = text(listener);
        let row = self
            .one("resume a listener", &statement, &[&listener])
            .await?;
        let resumed: i64 = self.column(&row, None, "resumed")?;
        Ok(resumed > 0)
    }

    async fn paused(&self) -> Result<Vec<Paused>, BackendError> {
        let statement = self.admin_statement("admin_paused", include_str!("sql/admin/paused.sql"));
        let rows = self.run("list paused listeners", &statement, &[]).await?;
        rows.iter()
            .map(|row| {
                Ok(Paused {
                    listener: self.column(row, None, "listener")?,
                    since: self.column(row, None, "since")?,
                })
            })
            .collect()
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        let statement =
            self.admin_statement("admin_workers", include_str!("sql/admin/workers.sql"));
        let rows = self.run("list workers", &statement, &[]).await?;
        let mut workers: Vec<WorkerInfo> = Vec::new();
        for row in &rows {
            let worker: String = self.column(row, None, "worker")?;
            let listener: String = self.column(row, None, "listener")?;
            match workers.last_mut() {
                Some(last) if last.worker == worker => last.listeners.push(listener),
                _ => workers.push(WorkerInfo {
                    worker,
                    listeners: vec![listener],
                    seen_at: self.column(row, None, "seen_at")?,
                    expires_at: self.column(row, None, "expires_at")?,
                }),
            }
        }
        Ok(workers)
    }

    async fn activity(&self, since: SystemTime) -> Result<Vec<Activity>, BackendError> {
        let statement =
            self.admin_statement("admin_activity", include_str!("sql/admin/activity.sql"));
        let from = minute_of(since);
        let rows = self
            .run("read the listeners' activity", &statement, &[&from])
            .await?;
        rows.iter()
            .map(|row| {
                let number = |name: &str| -> Result<u64, BackendError> {
                    Ok(count(self.column(row, None, name)?))
                };
                Ok(Activity {
                    listener: self.column(row, None, "listener")?,
                    minute: self.column(row, None, "minute")?,
                    delivered: number("delivered")?,
                    failed: number("failed")?,
                    retried: number("retried")?,
                })
            })
            .collect()
    }

    async fn discard_listener(&self, listener: &str) -> Result<u64, BackendError> {
        let listener = text(listener);
        let mut discarded = 0;
        for (name, template) in [
            (
                "admin_discard_listener",
                include_str!("sql/admin/discard_listener.sql"),
            ),
            (
                "admin_discard_listener_dead",
                include_str!("sql/admin/discard_listener_dead.sql"),
            ),
        ] {
            let statement = self.admin_statement(name, template);
            discarded += self
                .in_steps(
                    "discard a listener's deliveries",
                    &statement,
                    &[&listener, &STEP],
                )
                .await?;
        }
        Ok(discarded)
    }

    async fn rehome(&self, from: &str, to: &str) -> Result<u64, BackendError> {
        if from == to {
            return Ok(0);
        }
        let (from, to) = (text(from), text(to));
        let mut moved = 0;
        for (name, template) in [
            ("admin_rehome", include_str!("sql/admin/rehome.sql")),
            (
                "admin_rehome_dead",
                include_str!("sql/admin/rehome_dead.sql"),
            ),
        ] {
            let statement = self.admin_statement(name, template);
            moved += self
                .in_steps(
                    "rehome a listener's deliveries",
                    &statement,
                    &[&from, &STEP, &to],
                )
                .await?;
        }
        Ok(moved)
    }
}

impl PostgresStore {
    /// [`Store::heartbeat`](crate::durable::Store::heartbeat): one statement.
    pub(super) async fn record_heartbeat(&self, beat: &Heartbeat) -> Result<(), BackendError> {
        let statement =
            self.admin_statement("admin_heartbeat", include_str!("sql/admin/heartbeat.sql"));
        let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let listeners: Vec<String> = beat
            .listeners
            .iter()
            .map(|listener| text(&listener.listener).into_owned())
            .collect();
        let delivered: Vec<i64> = beat.listeners.iter().map(|l| number(l.delivered)).collect();
        let failed: Vec<i64> = beat.listeners.iter().map(|l| number(l.failed)).collect();
        let retried: Vec<i64> = beat.listeners.iter().map(|l| number(l.retried)).collect();
        let worker = text(&beat.worker);
        let ttl = duration_ms(beat.ttl);
        self.run(
            "record a heartbeat",
            &statement,
            &[&worker, &listeners, &delivered, &failed, &retried, &ttl],
        )
        .await?;
        Ok(())
    }
}
