//! Durable delivery: deliveries stored outside the process, claimed under leases, acknowledged
//! only after their listener succeeded.
//!
//! The model (see the README's "Durable delivery" section):
//!
//! - Each emit is stored once per listener of its event: one **delivery** per (event, listener),
//!   which retries, waits and dead-letters on its own.
//! - A worker **claims** due deliveries under a **lease**; while it runs them it extends the
//!   lease; when the listener succeeds it **acknowledges** (the delivery is deleted). A worker that
//!   dies stops extending, its leases expire, and another worker claims the deliveries again:
//!   delivery is at least once, and the listener sees the attempt number grow.
//! - A failed attempt is **retried** at a later time (the listener's backoff) until its attempts
//!   run out; then the delivery is **dead-lettered** with the reason, to be listed, inspected and
//!   replayed. A payload that cannot be decoded is dead-lettered at once.
//! - An emit can be **delayed** (`run_at`) and can carry an **idempotency key**: a second emit
//!   with a key already stored is dropped. Cron schedules use keys to fire once per tick, however
//!   many workers run them.
//!
//! - A listener that takes the store's transaction (`tx: &SqliteTx`, `tx: &PgTx`) runs in a
//!   transaction on the store's database ([`Store::begin`]), and its delivery is acknowledged in
//!   it, the lease checked there: its writes and the acknowledgement commit together or not at
//!   all, so they apply **exactly once** (README, "Exactly-once effects").
//!
//! [`Durable`] is the engine that does all this for any [`Store`]; a store only keeps deliveries.
//! The stores shipped are `sqlite::SqliteStore` (feature `sqlite`), and, for many processes,
//! `postgres::PostgresStore` (feature `postgres`) and `redis::RedisStore` (feature `redis`).

// The shared plumbing (clocks, ids, limits, defaults, TLS, the schema-version check, cursors)
// serves the stores this crate ships, each a part of it: built without some of them, some of it
// has no user. With every store built (as CI's clippy does), unused code is still an error.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code, unused_imports)
)]

pub mod admin;
mod clock;
pub mod compatibility;
pub(crate) mod defaults;
mod engine;
mod ids;
mod limits;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod redact;
#[cfg(feature = "redis")]
pub mod redis;
mod routing;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod server_config;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "store-contract")]
pub mod testing;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod tls;
mod transaction;
mod version;

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime};

use crate::emit_id::EmitId;
use crate::error::BackendError;

pub use admin::{Admin, Heartbeat, ListenerActivity};
pub(crate) use clock::{from_unix_millis, millis, unix_millis};
pub use compatibility::{Compatibility, Finding};
pub use engine::{Durable, DurableConfig};
pub(crate) use ids::claimable;
pub use ids::ParseEmitIdError;
pub(crate) use limits::Limits;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) use redact::Secrets;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub use tls::Tls;
pub use transaction::{Committed, StoreTransaction, TxFuture, TxKind};
pub(crate) use version::check_schema_version;

/// Where durable deliveries are kept: the contract every durable backend implements.
///
/// The engine ([`Durable`]) calls these methods; a store never runs a listener. Every method may
/// be called concurrently from several tasks, and (for stores shared over a network) from several
/// processes on several machines at once: claiming must hand each due delivery to one claimer
/// only until its lease expires.
///
/// Times are wall-clock [`SystemTime`]s, compared by the store (a database's clock or the
/// worker's: a store documents which).
///
/// A receipt acts (acknowledges, extends, retries, dead-letters) only while its claim is the
/// delivery's last one: once the lease ran out *and* someone claimed the delivery again, the
/// old receipt changes nothing. Receipts the store did not issue change nothing either. Workers
/// sharing a store pass the same `lease`; a store may measure a lease's expiry by the lease the
/// next claimer passes (the Redis store does).
///
/// The store contract suite (feature `store-contract`, [`testing`] and
/// [`store_contract!`](crate::store_contract)) checks every guarantee written here, on any
/// store.
pub trait Store: Send + Sync + 'static {
    /// Creates the schema (tables, streams, consumer groups) if missing, checks or migrates its
    /// version, and records the routes. Called once at start, before any other method.
    fn open(&self, setup: &Setup) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Stores emits: one delivery per listener of each, due at its `run_at`.
    ///
    /// An emit whose idempotency key is already stored (and not expired) is skipped. The batch is
    /// stored atomically where the store can: after an error, none of it may be stored, or all of
    /// it; the engine retries the whole batch, relying on the keys it does not have to dedupe.
    ///
    /// An error after which the batch may have been stored all the same (the statement was sent
    /// and no answer came) is marked [`BackendError::in_doubt`]: the engine tells the emitter's
    /// caller so when it gives up at [`DurableConfig::emit_timeout`]. An unmarked error says
    /// nothing was stored.
    fn insert(
        &self,
        emits: &[NewEmit],
    ) -> impl Future<Output = Result<Inserted, BackendError>> + Send;

    /// Claims up to `limit` deliveries that are due (`run_at` passed) and not leased (or whose
    /// lease expired), for the listeners named in `listeners`, leasing them to `worker` for
    /// `lease`. Each claim counts as one attempt.
    ///
    /// A listener with a concurrency limit `N` ([`Setup::concurrency`]) has at most `N`
    /// deliveries in progress (leased, or waiting for a retry) at once, across every handle of
    /// the store, and they are its first `N` unfinished deliveries in emit order: the order in
    /// which they first became due, then the order they were stored. So a delivery waiting for
    /// its retry holds back the listener's later ones, and with `N = 1` deliveries run one at a
    /// time in emit order, retries included. A delayed delivery takes its place in that order
    /// when it becomes due.
    ///
    /// A due **suspect** (see [`Claimed::crashes`]: a delivery whose lease ran out before its
    /// outcome, or that has such a claim since its last failed attempt) is claimed alone: a
    /// claim returns either one suspect and nothing else, or deliveries none of which is a
    /// suspect. While a suspect is due, claims return suspects, the oldest first, one each. So
    /// a delivery that kills its worker is run apart from the others, and only it gathers
    /// crashes.
    fn claim(
        &self,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Claimed>, BackendError>> + Send;

    /// Extends the leases of deliveries still running, so that a slow listener keeps its claim.
    /// A receipt whose lease was lost (it expired and someone else claimed it) is ignored.
    fn extend(
        &self,
        receipts: &[Receipt],
        lease: Duration,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Acknowledges deliveries whose listener succeeded: they are done and removed.
    fn ack(&self, receipts: &[Receipt]) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Releases a failed delivery to be claimed again at `run_at`, recording the error. Its
    /// count of crashes ([`Claimed::crashes`]) starts again from 0: the attempt had an outcome.
    fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Gives a claimed delivery back without running it, to be claimed again at `run_at`,
    /// recording `note` as its last error: its event was stored by a newer build than the
    /// worker's ([`StoredEvent::version`]), and is left for a worker that knows its version. The
    /// claim does not count as an attempt (the next claim has the attempt number this one had),
    /// and its count of crashes starts again from 0 (the claim had an outcome). A stale receipt
    /// is ignored.
    fn postpone(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        note: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Moves a delivery to the dead letters with the reason.
    fn dead_letter(
        &self,
        receipt: &Receipt,
        reason: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The dead letters, oldest first, up to `limit`.
    fn dead_letters(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, BackendError>> + Send;

    /// Moves a dead letter back to the deliveries, due now, with its attempts counted from zero.
    /// Returns `false` when there is no dead letter with this id.
    fn replay(&self, id: &str) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// Deletes a dead letter for good. Returns `false` when there is no dead letter with this id.
    fn discard(&self, id: &str) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// How many deliveries wait, run and lie dead.
    fn counts(&self) -> impl Future<Output = Result<Counts, BackendError>> + Send;

    /// Gives claimed deliveries back without an outcome: their worker is shutting down and
    /// cancelled them. Each is due again at once, for any worker, and the cancelled claim does
    /// not count as an attempt (the next claim has the attempt number it had) and leaves its
    /// count of crashes as it was (a released suspect is a suspect still). A stale receipt is
    /// ignored.
    fn release(
        &self,
        receipts: &[Receipt],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// How many unfinished deliveries (waiting, delayed, leased or waiting for a retry; not
    /// dead) the store holds of the emits whose ids are in `emits`. An emitter's emits are one
    /// range of ids, so this says whether everything it emitted was handled.
    fn unfinished(
        &self,
        emits: RangeInclusive<EmitId>,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Resolves when new deliveries may be due (a notification from another process, say), or
    /// after `timeout`. Only a wake-up: the engine claims after it whatever happened, and never
    /// relies on it for correctness. The default sleeps for `timeout`.
    fn wait_for_work(&self, timeout: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(timeout)
    }

    /// The transaction this store opens for listeners that take one (`tx: &PgTx`,
    /// `tx: &SqliteTx`): their writes and the acknowledgement of their delivery commit together.
    /// `None` (the default) for a store that opens none: the emitter then refuses to start with
    /// such a listener.
    const TRANSACTION: Option<TxKind> = None;

    /// Opens a transaction on the store's database for one delivery of a listener that takes
    /// one. Called only when [`TRANSACTION`](Self::TRANSACTION) is `Some`; the default refuses.
    fn begin(
        &self,
    ) -> impl Future<Output = Result<Box<dyn StoreTransaction>, BackendError>> + Send {
        async {
            Err(BackendError::new(
                "this store opens no transactions for listeners",
            ))
        }
    }

    /// Records that `beat.worker` runs `beat.listeners` for the next `beat.ttl`, and adds what
    /// they did since its last heartbeat to the current minute's activity: the operator's view
    /// of the workers ([`Admin::workers`], [`Admin::activity`]). The engine sends one when it
    /// starts and every [`DurableConfig::heartbeat`]. The default keeps nothing: a store
    /// without [`Admin`] has no use for it.
    fn heartbeat(&self, beat: &Heartbeat) -> impl Future<Output = Result<(), BackendError>> + Send {
        let _ = beat;
        async { Ok(()) }
    }

    /// Records what a worker runs: every subscription of the listeners named in `replace` (the
    /// worker's listeners and their aliases) is replaced by `subscriptions` in one step, and
    /// others' are left as they are. The engine calls it at the start of a worker (a process
    /// with [`DurableConfig::deliver`]); emitting processes route their emits by
    /// [`subscriptions`](Self::subscriptions), so that an emit reaches the listeners of a
    /// worker that the emitting binary does not link.
    fn subscribe(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Every subscription the store holds, in (event id, listener) order.
    fn subscriptions(&self)
        -> impl Future<Output = Result<Vec<Subscription>, BackendError>> + Send;

    /// Deletes every subscription of `listener` (a listener no worker runs any more), and
    /// returns how many there were. Emits stop being routed to it; its stored deliveries stay.
    fn unsubscribe(&self, listener: &str)
        -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// How many unfinished deliveries (waiting, delayed, leased or waiting for a retry; not
    /// dead) the store holds per listener name, event id and event version, in that order: what
    /// the start-up [compatibility check](compatibility) compares with the binary's listeners
    /// and events.
    fn backlog(&self) -> impl Future<Output = Result<Vec<Backlog>, BackendError>> + Send;
}

/// A listener's subscription to an event, as a worker recorded it in the store
/// ([`Store::subscribe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// The event's id.
    pub event_id: String,
    /// The listener's name.
    pub listener: String,
    /// The listener's concurrency limit, if it has one.
    pub concurrency: Option<NonZeroU32>,
    /// The newest version of the event that the subscribing worker's binary reads
    /// ([`Event::VERSION`](crate::Event::VERSION) there): an event emitted at a newer version
    /// waits for a worker of a newer build.
    pub version: u32,
    /// When a worker recorded it (to the millisecond; a store may take the time from its own
    /// clock, as the PostgreSQL and Redis stores do).
    pub seen_at: SystemTime,
}

impl Subscription {
    /// `listener` subscribed to `event_id` (version 1), seen at `seen_at`, without a
    /// concurrency limit.
    pub fn new(
        event_id: impl Into<String>,
        listener: impl Into<String>,
        seen_at: SystemTime,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            listener: listener.into(),
            concurrency: None,
            version: 1,
            seen_at,
        }
    }

    /// The same subscription with a concurrency limit.
    pub fn concurrency(mut self, limit: Option<NonZeroU32>) -> Self {
        self.concurrency = limit;
        self
    }

    /// The same subscription by a worker that reads the event up to `version`.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
}

/// How many unfinished deliveries of one event a store holds for one listener name
/// ([`Store::backlog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backlog {
    /// The listener name the deliveries are stored under.
    pub listener: String,
    /// The event's id.
    pub event_id: String,
    /// The version of the event's shape the deliveries were stored with
    /// ([`StoredEvent::version`]).
    pub version: u32,
    /// How many: waiting, delayed, leased or waiting for a retry.
    pub unfinished: u64,
}

impl Backlog {
    /// `unfinished` deliveries of `event_id` (version 1) for `listener`.
    pub fn new(listener: impl Into<String>, event_id: impl Into<String>, unfinished: u64) -> Self {
        Self {
            listener: listener.into(),
            event_id: event_id.into(),
            version: 1,
            unfinished,
        }
    }

    /// The same count, of deliveries stored at event version `version`.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
}

/// What a store is told at [`Store::open`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Setup {
    /// Every event of the emitter's table, with the names of its listeners in this process (and
    /// their aliases, whose deliveries they claim).
    pub routes: Vec<Route>,
    /// How long idempotency keys are remembered.
    pub key_retention: Duration,
    /// The listeners with a concurrency limit, and their limit: [`Store::claim`] keeps it
    /// across every handle of the store. Every process sharing a store gives the same limits
    /// (the same binary does); a listener not named here has none.
    pub concurrency: BTreeMap<&'static str, NonZeroU32>,
}

impl Setup {
    /// A setup with these routes and key retention and no concurrency limit, for stores' own
    /// tests and tools.
    pub fn new(routes: Vec<Route>, key_retention: Duration) -> Self {
        Self {
            routes,
            key_retention,
            concurrency: BTreeMap::new(),
        }
    }

    /// Limits `listener` to `limit` deliveries in progress at once, in emit order.
    pub fn concurrency(mut self, listener: &'static str, limit: NonZeroU32) -> Self {
        self.concurrency.insert(listener, limit);
        self
    }
}

/// An event and the listeners it is delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The event's id.
    pub event_id: &'static str,
    /// The names of its listeners.
    pub listeners: Vec<&'static str>,
}

/// An emit, encoded, as the engine hands it to [`Store::insert`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewEmit {
    /// The event and its metadata.
    pub event: StoredEvent,
    /// The listeners to deliver it to: one delivery each.
    pub listeners: Vec<&'static str>,
    /// When the deliveries are due.
    pub run_at: SystemTime,
    /// The idempotency key: a second emit with the same key is skipped.
    pub key: Option<String>,
}

impl NewEmit {
    /// An emit of `event` to `listeners`, due at `run_at`, with an optional idempotency key.
    /// Stores and their tests use this to insert what the engine would.
    pub fn new(
        event: StoredEvent,
        listeners: Vec<&'static str>,
        run_at: SystemTime,
        key: Option<String>,
    ) -> Self {
        Self {
            event,
            listeners,
            run_at,
            key,
        }
    }
}

/// What [`Store::insert`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Emits stored.
    pub stored: usize,
    /// Emits skipped because their idempotency key was already stored.
    pub duplicates: usize,
}

/// An emitted event as it is stored: the envelope every delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredEvent {
    /// The event's id, for example `"user_created"`.
    pub event_id: String,
    /// The id of the emit.
    pub emit_id: EmitId,
    /// When it was emitted.
    pub emitted_at: SystemTime,
    /// The event, encoded as JSON.
    pub payload: Vec<u8>,
    /// The version of the event's shape the payload has (its type's
    /// [`Event::VERSION`](crate::Event::VERSION) when it was emitted; 1 for events stored
    /// before versions were).
    pub version: u32,
    /// The trace context of the emit in W3C `traceparent` form
    /// (`00-<trace id>-<parent span id>-<flags>`), when the emitter propagates spans: a worker
    /// in any process makes its delivery spans children of it.
    pub trace: Option<String>,
}

impl StoredEvent {
    /// An event `event_id` of emit `emit_id`, emitted at `emitted_at`, encoded as `payload`, of
    /// version 1, without a trace context.
    pub fn new(
        event_id: impl Into<String>,
        emit_id: EmitId,
        emitted_at: SystemTime,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            emit_id,
            emitted_at,
            payload,
            version: 1,
            trace: None,
        }
    }

    /// The same event with its payload of version `version`.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The same event with the trace context `trace` (a W3C `traceparent`).
    pub fn with_trace(mut self, trace: Option<String>) -> Self {
        self.trace = trace;
        self
    }
}

/// A delivery claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// How to acknowledge, retry or dead-letter it.
    pub receipt: Receipt,
    /// The listener to run.
    pub listener: String,
    /// The event.
    pub event: StoredEvent,
    /// Which attempt this claim is, from 1.
    pub attempt: u32,
    /// How many claims of this delivery since its last failed attempt (or since it was stored)
    /// ended without an outcome: their lease ran out, because the worker died or lost its lease
    /// while running it. A released claim neither counts nor resets the count; a retry resets
    /// it. More than 0 makes the delivery a **suspect** (it may be what kills its workers):
    /// [`Store::claim`] hands a suspect out alone, and the engine runs it alone.
    pub crashes: u32,
}

/// A store's handle to one claimed delivery: which delivery, and which claim of it (so that a
/// worker whose lease expired cannot acknowledge or fail someone else's claim).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The delivery's id in the store.
    pub id: String,
    /// The claim: a token the store chose when it leased the delivery.
    pub lease: String,
}

/// A delivery that failed for good, kept until it is replayed or discarded.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its id, for [`Durable::replay`] and [`Durable::discard`].
    pub id: String,
    /// The listener that failed.
    pub listener: String,
    /// The event.
    pub event: StoredEvent,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why it was dead-lettered: the last failure, or why the payload could not be decoded.
    pub reason: String,
    /// When it was dead-lettered.
    pub failed_at: SystemTime,
}

impl DeadLetter {
    /// The event as JSON text (lossy if the payload is not UTF-8, which a corrupt one may be).
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.event.payload).into_owned()
    }
}

/// How many deliveries a store holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting to be claimed: due now or later.
    pub waiting: u64,
    /// Claimed, with a lease not yet expired.
    pub leased: u64,
    /// Dead-lettered.
    pub dead: u64,
}

impl Counts {
    /// Deliveries not finished: waiting or leased.
    pub fn unfinished(&self) -> u64 {
        self.waiting + self.leased
    }
}
