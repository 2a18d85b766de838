//! [`Admin`]: the operator's side of a store. What is stored, by state and a page at a time; one
//! delivery in full; cancelling, replaying and discarding; pausing a listener; the workers that
//! run and what their listeners did.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::Store;
use crate::emit_id::EmitId;
use crate::error::{BackendError, BackendErrorKind};

/// What an operator can see and do with a store, beyond what the engine needs of it.
///
/// The SQLite, PostgreSQL and Redis stores implement it; the console (the `emitter` command and
/// the board, `emitter::board` with the feature `board`) works through it. Like [`Store`], every
/// method may be called from several processes at once, while workers run.
///
/// A delivery is in one [`DeliveryState`]: **waiting** (due, not leased, or its lease ran out),
/// **scheduled** (due later: delayed, or waiting for a retry), **running** (leased, the lease
/// not run out) or **dead** (a dead letter). Dead letters keep the id they are listed with,
/// which [`Store::replay`] and [`Store::discard`] take.
///
/// The store contract suite's [`admin_contract!`](crate::admin_contract) checks every guarantee
/// written here, on any store.
pub trait Admin: Store {
    /// Per listener that has anything stored (a delivery or a dead letter): how many deliveries
    /// are in each state, and since when the longest-waiting one is due. Sorted by listener.
    fn listener_counts(
        &self,
    ) -> impl Future<Output = Result<Vec<ListenerCounts>, BackendError>> + Send;

    /// One page of the deliveries in `query.state` that match `query.filter`, after
    /// `query.cursor`, at most `query.limit`. Waiting deliveries come in emit order (the order
    /// they first became due; across listeners, those due in the same millisecond in an order
    /// of the store's), scheduled and running ones by their due time (for a running one, when
    /// its lease runs out), dead letters by when they failed. Each page's [`Page::next`]
    /// continues where it ended, so that pages taken one after the other list each delivery
    /// once while nothing changes (keyset pagination: a page costs about the same at the start
    /// of a million deliveries as at their end). A store may return fewer than `limit`
    /// deliveries only on the last page. A cursor the store did not make fails as
    /// [`BackendErrorKind::InvalidInput`].
    fn deliveries(&self, query: &Query) -> impl Future<Output = Result<Page, BackendError>> + Send;

    /// The delivery or dead letter `id`, with its payload; `None` when there is none (an id this
    /// store did not issue is none).
    fn delivery(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DeliveryDetail>, BackendError>> + Send;

    /// Deletes the waiting or scheduled delivery `id`: it will not run. A running delivery is
    /// not cancelled (its worker holds it), nor is a dead letter (discard it).
    fn cancel(&self, id: &str) -> impl Future<Output = Result<Cancel, BackendError>> + Send;

    /// Replays every dead letter that matches `filter` (its times are when they failed), as
    /// [`Store::replay`] replays one; returns how many. In several steps on a large store: a
    /// dead letter added meanwhile may or may not be replayed.
    fn replay_matching(
        &self,
        filter: &Filter,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Discards every dead letter that matches `filter`, as [`Store::discard`] discards one;
    /// returns how many.
    fn discard_matching(
        &self,
        filter: &Filter,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Pauses `listener`: from the moment this returns, no claim of any handle of the store, in
    /// any process, hands out its deliveries, until [`Admin::resume`]. Its emits are still
    /// stored, and its running deliveries finish. Returns `false` if it was paused already.
    fn pause(&self, listener: &str) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// Lets claims hand out `listener`'s deliveries again. Returns `false` if it was not paused.
    fn resume(&self, listener: &str) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// The paused listeners, sorted by name.
    fn paused(&self) -> impl Future<Output = Result<Vec<Paused>, BackendError>> + Send;

    /// The workers whose last [`Store::heartbeat`] has not expired, sorted by id, each with the
    /// listeners it runs.
    fn workers(&self) -> impl Future<Output = Result<Vec<WorkerInfo>, BackendError>> + Send;

    /// What the listeners did, per minute, from the minute of `since` on, as the workers' heartbeats
    /// reported it; only minutes with something to report, sorted by minute then listener. A store
    /// keeps at least the last hour.
    fn activity(
        &self,
        since: SystemTime,
    ) -> impl Future<Output = Result<Vec<Activity>, BackendError>> + Send;

    /// Deletes every delivery of `listener` that is not running, and its dead letters: for a
    /// listener that no longer exists (an [orphan](ListenerOverview::is_orphan)). Returns how
    /// many.
    fn discard_listener(
        &self,
        listener: &str,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Gives every delivery of `from` that is not running, and its dead letters, to the listener
    /// `to` (a listener renamed by a deploy): they keep their attempts and payload (and where
    /// the store can, their place in emit order). Returns how many.
    fn rehome(
        &self,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Everything about the listeners at once: their counts, whether they are paused, how many
    /// workers run them, and their activity over the last [`OVERVIEW_MINUTES`] minutes; every
    /// listener that has something stored, is paused, or is run by a worker.
    fn overview(&self) -> impl Future<Output = Result<Overview, BackendError>> + Send {
        async move {
            let at = SystemTime::now();
            let counts = self.listener_counts().await?;
            let paused = self.paused().await?;
            let workers = self.workers().await?;
            let since = at - Duration::from_secs(60 * OVERVIEW_MINUTES as u64);
            let activity = self.activity(since).await?;
            Ok(Overview::assemble(at, counts, paused, workers, activity))
        }
    }
}

/// How many minutes of activity [`Admin::overview`] gives each listener.
pub const OVERVIEW_MINUTES: usize = 30;

/// The state of a stored delivery, as an operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Due, and not leased (or its lease ran out): the next claim may take it.
    Waiting,
    /// Due later: emitted with a delay, or waiting for its retry.
    Scheduled,
    /// Leased to a worker, the lease not run out.
    Running,
    /// A dead letter: failed for good, kept until replayed or discarded.
    Dead,
}

impl DeliveryState {
    /// Every state, in the order above.
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Waiting,
        DeliveryState::Scheduled,
        DeliveryState::Running,
        DeliveryState::Dead,
    ];

    /// `waiting`, `scheduled`, `running` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Waiting => "waiting",
            DeliveryState::Scheduled => "scheduled",
            DeliveryState::Running => "running",
            DeliveryState::Dead => "dead",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no [`DeliveryState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStateError(String);

impl fmt::Display for ParseStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a delivery state: use waiting, scheduled, running or dead",
            self.0.escape_debug()
        )
    }
}

impl std::error::Error for ParseStateError {}

impl FromStr for DeliveryState {
    type Err = ParseStateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DeliveryState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| ParseStateError(text.to_owned()))
    }
}

/// Which deliveries (or dead letters) an operation is about: every condition given must hold.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use emitter::durable::admin::Filter;
///
/// let failed_today = Filter::new()
///     .listener("billing.print_invoice")
///     .after(SystemTime::now() - Duration::from_secs(24 * 3600));
/// assert!(!failed_today.is_empty());
/// assert!(Filter::new().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filter {
    /// Only this listener's.
    pub listener: Option<String>,
    /// Only this event's (its id, such as `"user_created"`).
    pub event_id: Option<String>,
    /// Only this emit's.
    pub emit_id: Option<EmitId>,
    /// Only those due at or after this time (dead letters: failed at or after).
    pub after: Option<SystemTime>,
    /// Only those due before this time (dead letters: failed before).
    pub before: Option<SystemTime>,
}

impl Filter {
    /// A filter that matches everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `listener`'s.
    pub fn listener(mut self, listener: impl Into<String>) -> Self {
        self.listener = Some(listener.into());
        self
    }

    /// Only the event `event_id`'s.
    pub fn event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    /// Only the emit `emit_id`'s.
    pub fn emit_id(mut self, emit_id: EmitId) -> Self {
        self.emit_id = Some(emit_id);
        self
    }

    /// Only those due (or failed) at or after `time`.
    pub fn after(mut self, time: SystemTime) -> Self {
        self.after = Some(time);
        self
    }

    /// Only those due (or failed) before `time`.
    pub fn before(mut self, time: SystemTime) -> Self {
        self.before = Some(time);
        self
    }

    /// Whether it matches everything.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether a delivery of `listener`, event `event_id` and emit `emit_id`, due (or failed) at
    /// `time`, matches: for stores that filter as they read.
    pub fn matches(
        &self,
        listener: &str,
        event_id: &str,
        emit_id: EmitId,
        time: SystemTime,
    ) -> bool {
        self.listener.as_deref().is_none_or(|want| want == listener)
            && self.event_id.as_deref().is_none_or(|want| want == event_id)
            && self.emit_id.is_none_or(|want| want == emit_id)
            && self.after.is_none_or(|after| time >= after)
            && self.before.is_none_or(|before| time < before)
    }
}

/// What [`Admin::deliveries`] lists.
///
/// ```
/// use emitter::durable::admin::{DeliveryState, Filter, Query};
///
/// let query = Query::new(DeliveryState::Dead)
///     .filter(Filter::new().event_id("order_paid"))
///     .limit(20);
/// assert_eq!(query.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// The state of the deliveries listed.
    pub state: DeliveryState,
    /// Which of them.
    pub filter: Filter,
    /// Where the page starts: the [`Page::next`] of the page before, or `None` for the first.
    pub cursor: Option<String>,
    /// The most deliveries on the page (default 50; 1 to [`Query::MAX_LIMIT`]).
    pub limit: usize,
}

impl Query {
    /// The most deliveries one page holds.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page of the deliveries in `state`, 50 at most.
    pub fn new(state: DeliveryState) -> Self {
        Self {
            state,
            filter: Filter::default(),
            cursor: None,
            limit: 50,
        }
    }

    /// Only the deliveries `filter` matches.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// The page that starts at `cursor` (a [`Page::next`]).
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    /// At most `limit` deliveries on the page (clamped to 1 to [`Query::MAX_LIMIT`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, Self::MAX_LIMIT);
        self
    }
}

/// One page of deliveries, from [`Admin::deliveries`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The deliveries, in the order of their state (see [`Admin::deliveries`]).
    pub deliveries: Vec<Delivery>,
    /// The cursor of the next page, or `None` when this one is the last.
    pub next: Option<String>,
}

/// A stored delivery, or a dead letter, as listed: everything but its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id in the store: what [`Admin::delivery`], [`Admin::cancel`], and for a dead letter
    /// [`Store::replay`] and [`Store::discard`], take.
    pub id: String,
    /// Its state when it was read.
    pub state: DeliveryState,
    /// The listener it is for.
    pub listener: String,
    /// Its event's id.
    pub event_id: String,
    /// The emit it came from.
    pub emit_id: EmitId,
    /// When the event was emitted.
    pub emitted_at: SystemTime,
    /// Waiting: since when it is due. Scheduled: when it will be. Running: when its lease runs
    /// out. Dead: when it failed.
    pub due: SystemTime,
    /// How many times it was claimed (a running delivery's claim included).
    pub attempts: u32,
    /// Running: the worker that holds its lease.
    pub worker: Option<String>,
    /// The error of its last failed attempt, if the store has one; for a dead letter, why it
    /// was dead-lettered.
    pub error: Option<String>,
}

/// A delivery in full, from [`Admin::delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    /// What the listing shows of it.
    pub delivery: Delivery,
    /// The event, encoded as JSON (or whatever bytes a damaged store holds).
    pub payload: Vec<u8>,
    /// The trace context of its emit (a W3C `traceparent`), if the emitter propagated it.
    pub trace: Option<String>,
}

impl DeliveryDetail {
    /// The payload as indented JSON, or as text (lossy) when it is not JSON.
    pub fn payload_pretty(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.payload)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(&self.payload).into_owned())
    }

    /// What the store knows of the delivery's life, oldest first: its emit, its last failure,
    /// and where it is now. Stores keep a delivery's last error, not every attempt's.
    pub fn history(&self) -> Vec<Step> {
        let delivery = &self.delivery;
        let mut steps = vec![Step::Emitted {
            at: delivery.emitted_at,
        }];
        if let (Some(error), DeliveryState::Waiting | DeliveryState::Scheduled) =
            (&delivery.error, delivery.state)
        {
            steps.push(Step::Failed {
                attempts: delivery.attempts,
                error: error.clone(),
            });
        }
        steps.push(match delivery.state {
            DeliveryState::Waiting => Step::Due { at: delivery.due },
            DeliveryState::Scheduled => Step::Due { at: delivery.due },
            DeliveryState::Running => Step::Leased {
                worker: delivery.worker.clone().unwrap_or_default(),
                attempt: delivery.attempts,
                until: delivery.due,
            },
            DeliveryState::Dead => Step::DeadLettered {
                at: delivery.due,
                attempts: delivery.attempts,
                reason: delivery.error.clone().unwrap_or_default(),
            },
        });
        steps
    }
}

/// One step of a delivery's [history](DeliveryDetail::history).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The event was emitted.
    Emitted {
        /// When.
        at: SystemTime,
    },
    /// Its last failed attempt, after `attempts` claims (0 for a replayed dead letter, whose
    /// reason it keeps).
    Failed {
        /// Claims so far.
        attempts: u32,
        /// The error.
        error: String,
    },
    /// It is (or will be) due for a claim.
    Due {
        /// From when.
        at: SystemTime,
    },
    /// A worker runs it.
    Leased {
        /// The worker.
        worker: String,
        /// Which attempt.
        attempt: u32,
        /// When the lease runs out unless the worker extends it.
        until: SystemTime,
    },
    /// It failed for good.
    DeadLettered {
        /// When.
        at: SystemTime,
        /// After how many attempts.
        attempts: u32,
        /// Why.
        reason: String,
    },
}

/// What [`Admin::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// The delivery was waiting or scheduled; it is deleted.
    Cancelled,
    /// The delivery is running: a worker holds it, and it was left alone.
    Running,
    /// The id is a dead letter's: discard it instead.
    Dead,
    /// No delivery has this id.
    NotFound,
}

/// How many deliveries of one listener are in each state, from [`Admin::listener_counts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    /// The listener.
    pub listener: String,
    /// Due and not leased.
    pub waiting: u64,
    /// Due later.
    pub scheduled: u64,
    /// Leased.
    pub running: u64,
    /// Dead letters.
    pub dead: u64,
    /// Since when the waiting delivery that is due the longest is due.
    pub oldest_waiting: Option<SystemTime>,
}

impl ListenerCounts {
    /// Zero of everything, for `listener`.
    pub fn new(listener: impl Into<String>) -> Self {
        Self {
            listener: listener.into(),
            ..Self::default()
        }
    }

    /// Every delivery and dead letter stored.
    pub fn total(&self) -> u64 {
        self.waiting + self.scheduled + self.running + self.dead
    }

    /// The count in `state`.
    pub fn of(&self, state: DeliveryState) -> u64 {
        match state {
            DeliveryState::Waiting => self.waiting,
            DeliveryState::Scheduled => self.scheduled,
            DeliveryState::Running => self.running,
            DeliveryState::Dead => self.dead,
        }
    }
}

/// A paused listener, from [`Admin::paused`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// The listener.
    pub listener: String,
    /// Since when.
    pub since: SystemTime,
}

/// A worker that runs, from [`Admin::workers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its id (`DurableConfig::worker_id`).
    pub worker: String,
    /// The listeners it runs, sorted.
    pub listeners: Vec<String>,
    /// Its last heartbeat.
    pub seen_at: SystemTime,
    /// When it stops counting as running unless it sends another heartbeat.
    pub expires_at: SystemTime,
}

/// What one listener did in one minute, summed over the workers, from [`Admin::activity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The listener.
    pub listener: String,
    /// The start of the minute.
    pub minute: SystemTime,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Deliveries that failed for good (dead-lettered).
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
}

/// What a worker tells its store with each [`Store::heartbeat`]: that it runs, which listeners,
/// and what they did since its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Heartbeat {
    /// The worker's id.
    pub worker: String,
    /// Its listeners, each with what it did since the last heartbeat.
    pub listeners: Vec<ListenerActivity>,
    /// How long the worker counts as running after this heartbeat; zero for the last heartbeat
    /// of a worker that stops (it no longer counts as running at all).
    pub ttl: Duration,
}

impl Heartbeat {
    /// A heartbeat of `worker`, which counts as running for `ttl`, with its `listeners`.
    pub fn new(worker: impl Into<String>, listeners: Vec<ListenerActivity>, ttl: Duration) -> Self {
        Self {
            worker: worker.into(),
            listeners,
            ttl,
        }
    }
}

/// One listener of a [`Heartbeat`], and what it did since the worker's last one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerActivity {
    /// The listener.
    pub listener: String,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Deliveries that failed for good.
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
}

impl ListenerActivity {
    /// `listener`, which did nothing.
    pub fn new(listener: impl Into<String>) -> Self {
        Self {
            listener: listener.into(),
            ..Self::default()
        }
    }

    /// Whether it did anything.
    pub fn is_idle(&self) -> bool {
        self.delivered == 0 && self.failed == 0 && self.retried == 0
    }
}

/// The start of the minute `time` is in.
pub fn minute_of(time: SystemTime) -> SystemTime {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds - seconds % 60)
}

/// Everything about the listeners of a store at one time, from [`Admin::overview`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// When it was read.
    pub at: SystemTime,
    /// Each listener that has something stored, is paused or is run by a worker, by name.
    pub listeners: Vec<ListenerOverview>,
    /// The workers that run.
    pub workers: Vec<WorkerInfo>,
}

/// One listener of an [`Overview`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerOverview {
    /// Its deliveries by state.
    pub counts: ListenerCounts,
    /// Since when it is paused, if it is.
    pub paused_since: Option<SystemTime>,
    /// How many running workers run it.
    pub workers: usize,
    /// What it did in each of the last [`OVERVIEW_MINUTES`] minutes, oldest first (minutes with
    /// nothing reported are zeros).
    pub activity: Vec<Activity>,
}

impl ListenerOverview {
    /// The listener's name.
    pub fn listener(&self) -> &str {
        &self.counts.listener
    }

    /// Whether it has deliveries or dead letters stored but no running worker runs it: a
    /// listener a deploy removed or renamed (or whose workers are all stopped).
    pub fn is_orphan(&self) -> bool {
        self.workers == 0 && self.counts.total() > 0
    }

    /// Deliveries per minute over the last `minutes` minutes (the current one included).
    pub fn delivered_per_minute(&self, minutes: usize) -> f64 {
        let minutes = minutes.clamp(1, self.activity.len().max(1));
        let sum: u64 = self
            .activity
            .iter()
            .rev()
            .take(minutes)
            .map(|minute| minute.delivered)
            .sum();
        sum as f64 / minutes as f64
    }
}

impl Overview {
    /// Puts the answers of the other [`Admin`] methods together, as [`Admin::overview`] does.
    pub fn assemble(
        at: SystemTime,
        counts: Vec<ListenerCounts>,
        paused: Vec<Paused>,
        workers: Vec<WorkerInfo>,
        activity: Vec<Activity>,
    ) -> Overview {
        let mut listeners: BTreeMap<String, ListenerOverview> = BTreeMap::new();
        fn entry<'a>(
            listeners: &'a mut BTreeMap<String, ListenerOverview>,
            name: &str,
        ) -> &'a mut ListenerOverview {
            listeners
                .entry(name.to_owned())
                .or_insert_with(|| ListenerOverview {
                    counts: ListenerCounts::new(name),
                    paused_since: None,
                    workers: 0,
                    activity: Vec::new(),
                })
        }
        for count in counts {
            let name = count.listener.clone();
            entry(&mut listeners, &name).counts = count;
        }
        for pause in paused {
            entry(&mut listeners, &pause.listener).paused_since = Some(pause.since);
        }
        for worker in &workers {
            for listener in &worker.listeners {
                entry(&mut listeners, listener).workers += 1;
            }
        }
        let last = minute_of(at);
        let minutes: Vec<SystemTime> = (0..OVERVIEW_MINUTES)
            .rev()
            .map(|back| last - Duration::from_secs(60 * back as u64))
            .collect();
        let mut reported: BTreeMap<(String, SystemTime), Activity> = BTreeMap::new();
        for minute in activity {
            if minute.minute >= minutes[0] {
                entry(&mut listeners, &minute.listener);
                reported.insert((minute.listener.clone(), minute.minute), minute);
            }
        }
        for (name, listener) in &mut listeners {
            listener.activity = minutes
                .iter()
                .map(|&minute| {
                    reported
                        .remove(&(name.clone(), minute))
                        .unwrap_or_else(|| Activity {
                            listener: name.clone(),
                            minute,
                            delivered: 0,
                            failed: 0,
                            retried: 0,
                        })
                })
                .collect();
        }
        Overview {
            at,
            listeners: listeners.into_values().collect(),
            workers,
        }
    }

    /// The listeners that are [orphans](ListenerOverview::is_orphan).
    pub fn orphans(&self) -> impl Iterator<Item = &ListenerOverview> {
        self.listeners
            .iter()
            .filter(|listener| listener.is_orphan())
    }
}

/// Reads a cursor that a store wrote as `time:id` (the sort key of a page's last row), for the
/// stores of this crate; `store` names the store in the error.
pub(crate) fn read_cursor<T: FromStr, I: FromStr>(
    store: &str,
    cursor: &str,
) -> Result<(T, I), BackendError> {
    cursor
        .split_once(':')
        .and_then(|(time, id)| Some((time.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| bad_cursor(store, cursor))
}

/// `cursor` is not one of `store`'s.
pub(crate) fn bad_cursor(store: &str, cursor: &str) -> BackendError {
    BackendError::of(
        BackendErrorKind::InvalidInput,
        format!(
            "`{}` is not a cursor of the {store}'s listings: start again from the first page",
            cursor.escape_debug()
        ),
    )
}
