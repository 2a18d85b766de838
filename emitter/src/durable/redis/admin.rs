//! The operator's side ([`Admin`]) of the Redis store: one script per step (`lua/admin/`, run
//! after the store's prelude and `lua/admin/prelude.lua`). A script looks at [`BUDGET`] entries
//! at most, so that no call holds the server for long; listings and bulk writes call again from
//! where the last call stopped. Waiting and running deliveries are read per listener stream and
//! merged here.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::SystemTime;

use ::redis::{Script, ScriptInvocation, Value};

use super::entries::{into_array, into_int, into_text};
use super::scripts::PRELUDE;
use super::RedisStore;
use crate::durable::admin::{
    bad_cursor, read_cursor, Activity, Admin, Cancel, Delivery, DeliveryDetail, DeliveryState,
    Filter, ListenerCounts, Page, Paused, Query, WorkerInfo,
};
use crate::durable::{from_unix_millis, unix_millis, Heartbeat};
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// How many entries one script looks at, at most.
const BUDGET: usize = 1000;

/// The operator's scripts.
struct Scripts {
    waiting: Script,
    running: Script,
    scheduled: Script,
    dead: Script,
    show: Script,
    cancel: Script,
    counts: Script,
    delayed_counts: Script,
    dead_counts: Script,
    dead_letters: Script,
    listener_stream: Script,
    listener_delayed: Script,
    pause: Script,
    heartbeat: Script,
    workers: Script,
    activity: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script =
        |body: &str| Script::new(&[PRELUDE, include_str!("lua/admin/prelude.lua"), body].concat());
    Scripts {
        waiting: script(include_str!("lua/admin/waiting.lua")),
        running: script(include_str!("lua/admin/running.lua")),
        scheduled: script(include_str!("lua/admin/scheduled.lua")),
        dead: script(include_str!("lua/admin/dead.lua")),
        show: script(include_str!("lua/admin/show.lua")),
        cancel: script(include_str!("lua/admin/cancel.lua")),
        counts: script(include_str!("lua/admin/counts.lua")),
        delayed_counts: script(include_str!("lua/admin/delayed_counts.lua")),
        dead_counts: script(include_str!("lua/admin/dead_counts.lua")),
        dead_letters: script(include_str!("lua/admin/dead_letters.lua")),
        listener_stream: script(include_str!("lua/admin/listener_stream.lua")),
        listener_delayed: script(include_str!("lua/admin/listener_delayed.lua")),
        pause: script(include_str!("lua/admin/pause.lua")),
        heartbeat: script(include_str!("lua/admin/heartbeat.lua")),
        workers: script(include_str!("lua/admin/workers.lua")),
        activity: script(include_str!("lua/admin/activity.lua")),
    }
});

/// An entry id as the numbers Redis orders entries by.
type EntryId = (u64, u64);

fn parse_entry(id: &str) -> Option<EntryId> {
    let (millis, seq) = id.split_once('-')?;
    Some((millis.parse().ok()?, seq.parse().ok()?))
}

fn entry_text((millis, seq): EntryId) -> String {
    format!("{millis}-{seq}")
}

/// The entry id just before `id`, or `None` before the first possible one.
fn entry_before((millis, seq): EntryId) -> Option<EntryId> {
    match (millis, seq) {
        (_, 1..) => Some((millis, seq - 1)),
        (1.., 0) => Some((millis - 1, u64::MAX)),
        (0, 0) => None,
    }
}

/// A listed delivery's `<entry>/<listener>` id taken apart.
fn stream_entry(id: &str) -> Option<(EntryId, &str)> {
    let (entry, listener) = id.split_once('/')?;
    Some((parse_entry(entry)?, listener))
}

fn millis_arg(time: Option<SystemTime>) -> String {
    time.map(|time| unix_millis(time).to_string())
        .unwrap_or_default()
}

fn texts(value: Value) -> Result<Vec<String>, String> {
    into_array(value)?.into_iter().map(into_text).collect()
}

fn number(text: &str) -> u64 {
    text.parse().unwrap_or(0)
}

impl RedisStore {
    /// Adds the filter's event id, emit id and times, as `filter_at` reads them.
    fn filter_args(invocation: &mut ScriptInvocation<'_>, filter: &Filter) {
        invocation
            .arg(filter.event_id.as_deref().unwrap_or(""))
            .arg(
                filter
                    .emit_id
                    .map(|id| format!("{:032x}", id.as_u128()))
                    .unwrap_or_default(),
            )
            .arg(millis_arg(filter.after))
            .arg(millis_arg(filter.before));
    }

    /// An invocation of a listing script that pages by entry id (`waiting.lua`, `dead.lua`).
    fn listing(
        &self,
        script: &'static Script,
        listener: &str,
        after: &str,
        limit: usize,
        filter: &Filter,
    ) -> ScriptInvocation<'static> {
        let mut invocation = self.invocation(script);
        invocation.arg(listener).arg(after).arg(BUDGET).arg(limit);
        Self::filter_args(&mut invocation, filter);
        invocation
    }

    /// A row as the scripts answer it (see `entry_row` in `lua/admin/prelude.lua`). A row whose
    /// fields the store cannot read is listed all the same, with what is wrong as its error.
    fn row(&self, value: Value, what: &str) -> Result<Delivery, BackendError> {
        let fields = texts(value).map_err(|problem| self.unexpected(what, &problem))?;
        let [id, state, listener, event_id, emit, at, due, attempts, worker, error] =
            <[String; 10]>::try_from(fields)
                .map_err(|_| self.unexpected(what, "a row without its ten fields"))?;
        let state: DeliveryState = state
            .parse()
            .map_err(|problem| self.unexpected(what, &format!("{problem}")))?;
        let emit_id = emit.parse::<EmitId>().ok().filter(|_| emit.len() == 32);
        let error = match emit_id {
            Some(_) => (!error.is_empty()).then_some(error),
            None => Some(format!(
                "the Redis store cannot read this delivery: its `emit` field `{}` is not 32 \
                 hexadecimal digits",
                emit.escape_debug()
            )),
        };
        Ok(Delivery {
            id,
            state,
            listener,
            event_id,
            emit_id: emit_id.unwrap_or(EmitId::from_u128(0)),
            emitted_at: from_unix_millis(at.parse().unwrap_or(0)),
            due: from_unix_millis(due.parse().unwrap_or(0)),
            attempts: attempts.parse().unwrap_or(0),
            worker: (!worker.is_empty()).then_some(worker),
            error,
        })
    }

    fn rows(&self, value: Value, what: &str) -> Result<Vec<Delivery>, BackendError> {
        into_array(value)
            .map_err(|problem| self.unexpected(what, &problem))?
            .into_iter()
            .map(|row| self.row(row, what))
            .collect()
    }

    /// The listeners that have a stream.
    async fn listener_names(&self, what: &str) -> Result<Vec<String>, BackendError> {
        let mut members = ::redis::cmd("SMEMBERS");
        members.arg(self.key("listeners"));
        let mut names = texts(self.command(&members, what).await?)
            .map_err(|problem| self.unexpected(what, &problem))?;
        names.sort();
        Ok(names)
    }

    /// The listeners a listing reads: the one the filter names, or all.
    async fn listed_listeners(
        &self,
        filter: &Filter,
        what: &str,
    ) -> Result<Vec<String>, BackendError> {
        match &filter.listener {
            Some(listener) => Ok(vec![listener.clone()]),
            None => self.listener_names(what).await,
        }
    }

    /// Runs a paged script until it found `limit` rows or looked at everything: `call` makes
    /// the invocation for a position, and the script answers rows, the next position, and
    /// whether it is done.
    async fn paged(
        &self,
        what: &str,
        limit: usize,
        mut position: Vec<String>,
        call: impl Fn(&[String], usize) -> ScriptInvocation<'static>,
    ) -> Result<(Vec<Delivery>, Vec<String>), BackendError> {
        let mut found = Vec::new();
        loop {
            let invocation = call(&position, limit - found.len());
            let mut reply = self.eval(&invocation, what).await?.into_iter();
            let rows = reply
                .next()
                .ok_or_else(|| self.unexpected(what, "no rows"))?;
            found.extend(self.rows(rows, what)?);
            let rest = reply
                .map(into_text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|problem| self.unexpected(what, &problem))?;
            let Some((done, next)) = rest.split_last() else {
                return Err(self.unexpected(what, "no position to go on from"));
            };
            position = next.to_vec();
            if found.len() >= limit || done == "1" {
                return Ok((found, position));
            }
        }
    }

    async fn waiting_page(&self, query: &Query) -> Result<Page, BackendError> {
        let what = "list waiting deliveries";
        let cursor = match &query.cursor {
            Some(cursor) => Some(
                stream_entry(cursor)
                    .map(|(entry, listener)| (entry, listener.to_owned()))
                    .ok_or_else(|| self.bad_cursor(cursor))?,
            ),
            None => None,
        };
        let mut rows: Vec<((EntryId, String), Delivery)> = Vec::new();
        for listener in self.listed_listeners(&query.filter, what).await? {
            // After the cursor: past its entry in its listener's stream and those before it,
            // from its entry on in those after.
            let after = match &cursor {
                None => None,
                Some((entry, of)) if listener <= *of => Some(*entry),
                Some((entry, _)) => entry_before(*entry),
            };
            let start = vec![after.map(entry_text).unwrap_or_default()];
            let (found, _) = self
                .paged(what, query.limit, start, |position, limit| {
                    self.listing(
                        &SCRIPTS.waiting,
                        &listener,
                        &position[0],
                        limit,
                        &query.filter,
                    )
                })
                .await?;
            for delivery in found {
                let key = stream_entry(&delivery.id)
                    .map(|(entry, listener)| (entry, listener.to_owned()))
                    .unwrap_or_default();
                rows.push((key, delivery));
            }
        }
        rows.sort_by(|(a, _), (b, _)| a.cmp(b));
        Ok(Self::page_of(rows, query.limit, |(entry, listener)| {
            format!("{}/{listener}", entry_text(*entry))
        }))
    }

    async fn running_page(&self, query: &Query) -> Result<Page, BackendError> {
        let what = "list running deliveries";
        let cursor: Option<(u64, String)> = match &query.cursor {
            Some(cursor) => Some(read_cursor("Redis store", cursor)?),
            None => None,
        };
        let mut rows: Vec<((u64, EntryId, String), Delivery)> = Vec::new();
        for listener in self.listed_listeners(&query.filter, what).await? {
            let mut invocation = self.invocation(&SCRIPTS.running);
            invocation.arg(&listener);
            Self::filter_args(&mut invocation, &query.filter);
            let reply = self.eval(&invocation, what).await?;
            let found = reply
                .into_iter()
                .next()
                .ok_or_else(|| self.unexpected(what, "no rows"))?;
            for delivery in self.rows(found, what)? {
                let (entry, of) = stream_entry(&delivery.id).unwrap_or_default();
                let key = (
                    u64::try_from(unix_millis(delivery.due)).unwrap_or(0),
                    entry,
                    of.to_owned(),
                );
                rows.push((key, delivery));
            }
        }
        if let Some((due, id)) = &cursor {
            let (entry, listener) = stream_entry(id).ok_or_else(|| self.bad_cursor(id))?;
            let after = (*due, entry, listener.to_owned());
            rows.retain(|(key, _)| *key > after);
        }
        rows.sort_by(|(a, _), (b, _)| a.cmp(b));
        Ok(Self::page_of(
            rows,
            query.limit,
            |(due, entry, listener)| format!("{due}:{}/{listener}", entry_text(*entry)),
        ))
    }

    async fn scheduled_page(&self, query: &Query) -> Result<Page, BackendError> {
        let start = match &query.cursor {
            Some(cursor) => {
                let (at, skip): (u64, u64) = read_cursor("Redis store", cursor)?;
                vec![at.to_string(), skip.to_string()]
            }
            None => vec![String::new(), String::new()],
        };
        let listener = query.filter.listener.clone().unwrap_or_default();
        let (found, position) = self
            .paged(
                "list scheduled deliveries",
                query.limit,
                start,
                |position, limit| {
                    let mut invocation = self.invocation(&SCRIPTS.scheduled);
                    invocation
                        .arg(&listener)
                        .arg(&position[0])
                        .arg(position.get(1).map_or("", String::as_str))
                        .arg(BUDGET)
                        .arg(limit);
                    Self::filter_args(&mut invocation, &query.filter);
                    invocation
                },
            )
            .await?;
        let next = (found.len() >= query.limit).then(|| {
            format!(
                "{}:{}",
                position[0],
                position.get(1).map_or("0", String::as_str)
            )
        });
        Ok(Page {
            deliveries: found,
            next,
        })
    }

    async fn dead_page(&self, query: &Query) -> Result<Page, BackendError> {
        let start = match &query.cursor {
            Some(cursor) => {
                let entry = parse_entry(cursor).ok_or_else(|| self.bad_cursor(cursor))?;
                entry_text(entry)
            }
            None => String::new(),
        };
        let listener = query.filter.listener.clone().unwrap_or_default();
        let (found, _) = self
            .paged(
                "list dead letters",
                query.limit,
                vec![start],
                |position, limit| {
                    self.listing(&SCRIPTS.dead, &listener, &position[0], limit, &query.filter)
                },
            )
            .await?;
        let next = (found.len() >= query.limit)
            .then(|| found.last().map(|delivery| delivery.id.clone()))
            .flatten();
        Ok(Page {
            deliveries: found,
            next,
        })
    }

    /// The first `limit` of `rows` (sorted), and the cursor after the last when it is full.
    fn page_of<K>(
        mut rows: Vec<(K, Delivery)>,
        limit: usize,
        cursor: impl Fn(&K) -> String,
    ) -> Page {
        rows.truncate(limit);
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|(key, _)| cursor(key)))
            .flatten();
        Page {
            deliveries: rows.into_iter().map(|(_, delivery)| delivery).collect(),
            next,
        }
    }

    fn bad_cursor(&self, cursor: &str) -> BackendError {
        bad_cursor("Redis store", cursor)
    }

    /// Runs a bulk script (`dead_letters.lua`, `listener_stream.lua` or `listener_delayed.lua`)
    /// from the start until it is done: `call` makes the invocation for a position; each step
    /// answers how many it changed, the next position and whether it is done.
    async fn in_steps(
        &self,
        what: &str,
        start: &str,
        call: impl Fn(&str) -> ScriptInvocation<'static>,
    ) -> Result<u64, BackendError> {
        let mut changed = 0;
        let mut position = start.to_owned();
        loop {
            let reply = self.eval(&call(&position), what).await?;
            let [count, next, done] = <[Value; 3]>::try_from(reply)
                .map_err(|_| self.unexpected(what, "not a count, a position and a flag"))?;
            changed +=
                u64::try_from(into_int(count).map_err(|p| self.unexpected(what, &p))?).unwrap_or(0);
            position = into_text(next).map_err(|problem| self.unexpected(what, &problem))?;
            if into_text(done).map_err(|problem| self.unexpected(what, &problem))? == "1" {
                return Ok(changed);
            }
        }
    }

    /// `dead_letters.lua` over every dead letter: `op` (`replay`, `discard`, `rehome` to `to`)
    /// on those of `listener` (empty: any) that `filter` matches.
    async fn dead_letters_in_steps(
        &self,
        op: &'static str,
        listener: &str,
        filter: &Filter,
        to: &str,
    ) -> Result<u64, BackendError> {
        let what = match op {
            "replay" => "replay dead letters",
            "rehome" => "rehome dead letters",
            _ => "discard dead letters",
        };
        self.in_steps(what, "", |position| {
            let mut invocation = self.invocation(&SCRIPTS.dead_letters);
            invocation.arg(op).arg(position).arg(BUDGET).arg(listener);
            Self::filter_args(&mut invocation, filter);
            invocation.arg(to);
            invocation
        })
        .await
    }

    /// Discards or rehomes (`op`) every delivery of `listener` that is not running, and its
    /// dead letters.
    async fn listener_in_steps(
        &self,
        op: &'static str,
        listener: &str,
        to: &str,
    ) -> Result<u64, BackendError> {
        let what = if op == "rehome" {
            "rehome a listener's deliveries"
        } else {
            "discard a listener's deliveries"
        };
        let mut changed = 0;
        for (script, start) in [
            (&SCRIPTS.listener_stream, ""),
            (&SCRIPTS.listener_delayed, "0"),
        ] {
            changed += self
                .in_steps(what, start, |position| {
                    let mut invocation = self.invocation(script);
                    invocation
                        .arg(op)
                        .arg(listener)
                        .arg(position)
                        .arg(BUDGET)
                        .arg(to);
                    invocation
                })
                .await?;
        }
        changed += self
            .dead_letters_in_steps(op, listener, &Filter::new(), to)
            .await?;
        Ok(changed)
    }

    /// Runs `script` with one argument, and returns the first value of its answer.
    async fn first_answer(
        &self,
        script: &Script,
        argument: &str,
        what: &str,
    ) -> Result<Option<Value>, BackendError> {
        let mut invocation = self.invocation(script);
        invocation.arg(argument);
        Ok(self.eval(&invocation, what).await?.into_iter().next())
    }

    /// [`Store::heartbeat`](crate::durable::Store::heartbeat): one script.
    pub(super) async fn record_heartbeat(&self, beat: &Heartbeat) -> Result<(), BackendError> {
        let mut invocation = self.invocation(&SCRIPTS.heartbeat);
        invocation
            .arg(&beat.worker)
            .arg(u64::try_from(beat.ttl.as_millis()).unwrap_or(u64::MAX));
        for listener in &beat.listeners {
            invocation
                .arg(&listener.listener)
                .arg(listener.delivered)
                .arg(listener.failed)
                .arg(listener.retried);
        }
        self.eval(&invocation, "record a heartbeat").await?;
        Ok(())
    }
}

impl Admin for RedisStore {
    async fn listener_counts(&self) -> Result<Vec<ListenerCounts>, BackendError> {
        let what = "count deliveries by listener";
        let mut counts: BTreeMap<String, ListenerCounts> = BTreeMap::new();
        let oldest = |count: &mut ListenerCounts, millis: &str| {
            if let Ok(millis) = millis.parse::<i64>() {
                let at = from_unix_millis(millis);
                count.oldest_waiting = Some(count.oldest_waiting.map_or(at, |old| old.min(at)));
            }
        };
        let reply = self.eval(&self.invocation(&SCRIPTS.counts), what).await?;
        for row in into_array(reply.into_iter().next().unwrap_or(Value::Nil))
            .map_err(|problem| self.unexpected(what, &problem))?
        {
            let fields = texts(row).map_err(|problem| self.unexpected(what, &problem))?;
            let [listener, waiting, scheduled, running, first] = <[String; 5]>::try_from(fields)
                .map_err(|_| self.unexpected(what, "a count without its five fields"))?;
            let count = counts
                .entry(listener.clone())
                .or_insert_with(|| ListenerCounts::new(listener));
            count.waiting += number(&waiting);
            count.scheduled += number(&scheduled);
            count.running += number(&running);
            oldest(count, &first);
        }
        let mut index = "0".to_owned();
        while !index.is_empty() {
            let mut invocation = self.invocation(&SCRIPTS.delayed_counts);
            invocation.arg(&index).arg(BUDGET);
            let mut reply = self.eval(&invocation, what).await?.into_iter();
            let (Some(rows), Some(next)) = (reply.next(), reply.next()) else {
                return Err(self.unexpected(what, "no counts of delayed deliveries"));
            };
            for row in into_array(rows).map_err(|problem| self.unexpected(what, &problem))? {
                let fields = texts(row).map_err(|problem| self.unexpected(what, &problem))?;
                let [listener, due, later, earliest] = <[String; 4]>::try_from(fields)
                    .map_err(|_| self.unexpected(what, "a count without its four fields"))?;
                let count = counts
                    .entry(listener.clone())
                    .or_insert_with(|| ListenerCounts::new(listener));
                count.waiting += number(&due);
                count.scheduled += number(&later);
                oldest(count, &earliest);
            }
            index = into_text(next).map_err(|problem| self.unexpected(what, &problem))?;
        }
        let mut after = String::new();
        loop {
            let mut invocation = self.invocation(&SCRIPTS.dead_counts);
            invocation.arg(&after).arg(BUDGET);
            let mut reply = self.eval(&invocation, what).await?.into_iter();
            let (Some(rows), Some(last)) = (reply.next(), reply.next()) else {
                return Err(self.unexpected(what, "no counts of dead letters"));
            };
            for row in into_array(rows).map_err(|problem| self.unexpected(what, &problem))? {
                let fields = texts(row).map_err(|problem| self.unexpected(what, &problem))?;
                let [listener, dead] = <[String; 2]>::try_from(fields)
                    .map_err(|_| self.unexpected(what, "a count without its two fields"))?;
                counts
                    .entry(listener.clone())
                    .or_insert_with(|| ListenerCounts::new(listener))
                    .dead += number(&dead);
            }
            after = into_text(last).map_err(|problem| self.unexpected(what, &problem))?;
            if after.is_empty() {
                break;
            }
        }
        Ok(counts
            .into_values()
            .filter(|count| count.total() > 0)
            .collect())
    }

    async fn deliveries(&self, query: &Query) -> Result<Page, BackendError> {
        match query.state {
            DeliveryState::Waiting => self.waiting_page(query).await,
            DeliveryState::Scheduled => self.scheduled_page(query).await,
            DeliveryState::Running => self.running_page(query).await,
            DeliveryState::Dead => self.dead_page(query).await,
        }
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryDetail>, BackendError> {
        let what = "read a delivery";
        let mut invocation = self.invocation(&SCRIPTS.show);
        invocation.arg(id);
        let mut reply = self.eval(&invocation, what).await?.into_iter();
        let (Some(row), Some(payload), Some(trace)) = (reply.next(), reply.next(), reply.next())
        else {
            return Ok(None);
        };
        let trace = into_text(trace).map_err(|problem| self.unexpected(what, &problem))?;
        Ok(Some(DeliveryDetail {
            delivery: self.row(row, what)?,
            payload: super::entries::into_bytes(payload)
                .map_err(|problem| self.unexpected(what, &problem))?,
            trace: (!trace.is_empty()).then_some(trace),
        }))
    }

    async fn cancel(&self, id: &str) -> Result<Cancel, BackendError> {
        let what = "cancel a delivery";
        let outcome = self
            .first_answer(&SCRIPTS.cancel, id, what)
            .await?
            .map(into_text)
            .transpose()
            .map_err(|problem| self.unexpected(what, &problem))?;
        Ok(match outcome.as_deref() {
            Some("cancelled") => Cancel::Cancelled,
            Some("running") => Cancel::Running,
            Some("dead") => Cancel::Dead,
            _ => Cancel::NotFound,
        })
    }

    async fn replay_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let listener = filter.listener.clone().unwrap_or_default();
        let replayed = self
            .dead_letters_in_steps("replay", &listener, filter, "")
            .await?;
        if replayed > 0 {
            self.work.notify_waiters();
        }
        Ok(replayed)
    }

    async fn discard_matching(&self, filter: &Filter) -> Result<u64, BackendError> {
        let listener = filter.listener.clone().unwrap_or_default();
        self.dead_letters_in_steps("discard", &listener, filter, "")
            .await
    }

    async fn pause(&self, listener: &str) -> Result<bool, BackendError> {
        let what = "pause a listener";
        let added = self
            .first_answer(&SCRIPTS.pause, listener, what)
            .await?
            .map(into_int)
            .transpose()
            .map_err(|problem| self.unexpected(what, &problem))?;
        Ok(added == Some(1))
    }

    async fn resume(&self, listener: &str) -> Result<bool, BackendError> {
        let what = "resume a listener";
        let mut delete = ::redis::cmd("HDEL");
        delete.arg(self.key("paused")).arg(listener);
        let deleted = into_int(self.command(&delete, what).await?)
            .map_err(|problem| self.unexpected(what, &problem))?;
        if deleted > 0 {
            self.work.notify_waiters();
        }
        Ok(deleted > 0)
    }

    async fn paused(&self) -> Result<Vec<Paused>, BackendError> {
        let what = "list paused listeners";
        let mut all = ::redis::cmd("HGETALL");
        all.arg(self.key("paused"));
        let fields = match self.command(&all, what).await? {
            Value::Map(pairs) => pairs
                .into_iter()
                .flat_map(|(name, value)| [name, value])
                .collect(),
            other => into_array(other).map_err(|problem| self.unexpected(what, &problem))?,
        };
        let fields =
            texts(Value::Array(fields)).map_err(|problem| self.unexpected(what, &problem))?;
        let mut paused: Vec<Paused> = fields
            .chunks_exact(2)
            .map(|pair| Paused {
                listener: pair[0].clone(),
                since: from_unix_millis(pair[1].parse().unwrap_or(0)),
            })
            .collect();
        paused.sort_by(|a, b| a.listener.cmp(&b.listener));
        Ok(paused)
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        let what = "list workers";
        let reply = self.eval(&self.invocation(&SCRIPTS.workers), what).await?;
        let mut workers = Vec::new();
        for row in into_array(reply.into_iter().next().unwrap_or(Value::Nil))
            .map_err(|problem| self.unexpected(what, &problem))?
        {
            let mut fields = texts(row)
                .map_err(|problem| self.unexpected(what, &problem))?
                .into_iter();
            let (Some(worker), Some(seen), Some(expires)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(self.unexpected(what, "a worker without its times"));
            };
            let mut listeners: Vec<String> = fields.collect();
            listeners.sort();
            workers.push(WorkerInfo {
                worker,
                listeners,
                seen_at: from_unix_millis(seen.parse().unwrap_or(0)),
                expires_at: from_unix_millis(expires.parse().unwrap_or(0)),
            });
        }
        workers.sort_by(|a, b| a.worker.cmp(&b.worker));
        Ok(workers)
    }

    async fn activity(&self, since: SystemTime) -> Result<Vec<Activity>, BackendError> {
        let what = "read the listeners' activity";
        let mut invocation = self.invocation(&SCRIPTS.activity);
        invocation.arg(unix_millis(since));
        let reply = self.eval(&invocation, what).await?;
        let mut minutes: BTreeMap<(i64, String), [u64; 3]> = BTreeMap::new();
        for row in into_array(reply.into_iter().next().unwrap_or(Value::Nil))
            .map_err(|problem| self.unexpected(what, &problem))?
        {
            let fields = texts(row).map_err(|problem| self.unexpected(what, &problem))?;
            let [minute, kind, listener, count] = <[String; 4]>::try_from(fields)
                .map_err(|_| self.unexpected(what, "a count without its four fields"))?;
            let sums = minutes
                .entry((minute.parse().unwrap_or(0), listener))
                .or_default();
            let slot = match kind.as_str() {
                "d" => 0,
                "f" => 1,
                _ => 2,
            };
            sums[slot] += number(&count);
        }
        Ok(minutes
            .into_iter()
            .map(
                |((minute, listener), [delivered, failed, retried])| Activity {
                    listener,
                    minute: from_unix_millis(minute),
                    delivered,
                    failed,
                    retried,
                },
            )
            .collect())
    }

    async fn discard_listener(&self, listener: &str) -> Result<u64, BackendError> {
        self.listener_in_steps("discard", listener, "").await
    }

    async fn rehome(&self, from: &str, to: &str) -> Result<u64, BackendError> {
        if from == to {
            return Ok(0);
        }
        let moved = self.listener_in_steps("rehome", from, to).await?;
        if moved > 0 {
            self.work.notify_waiters();
        }
        Ok(moved)
    }
}
