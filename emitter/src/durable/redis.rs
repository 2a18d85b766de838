//! [`RedisStore`]: durable deliveries in Redis Streams, shared by any number of processes.
//!
//! # What it stores where
//!
//! Every key starts with the prefix (default `emitter`; see [`RedisOptions::prefix`]), so one
//! Redis database can hold several independent stores. Schema version 1 ([`Store::open`] writes
//! it, and refuses keys of another version, or keys of the wrong type, rather than misread them):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:schema` | string | the schema version, `1` |
//! | `{prefix}:listener:{listener}` | stream | the deliveries addressed to one listener, with one consumer group named after the listener; each worker claims as a consumer named by its worker id |
//! | `{prefix}:listeners` | set | the listeners that have a stream (for [`counts`](Store::counts)) |
//! | `{prefix}:delayed` | sorted set | deliveries due later (delayed emits, retries), scored by their due time in Unix milliseconds |
//! | `{prefix}:dead` | stream | the dead letters, oldest first; an entry's id is the dead letter's id |
//! | `{prefix}:key:{key}` | string | an idempotency key, expiring after the key retention |
//! | `{prefix}:lease` | string | the lease of the last claim, in milliseconds (for [`counts`](Store::counts)) |
//! | `{prefix}:seq` | string | a counter that makes members of `{prefix}:delayed` unique |
//!
//! A delivery is a stream entry with the fields `event` (the event's id), `emit` (the emit id, 32
//! hex digits), `at` (the emit time, Unix milliseconds), `payload` (the event's JSON), `attempts`
//! (attempts made before this entry) and, after a failure, `error`. A dead letter has `listener`,
//! `event`, `emit`, `at`, `payload`, `attempts`, `reason` and `failed_at`.
//!
//! ## How the contract maps onto streams
//!
//! - **insert** appends one entry per listener to the listener's stream, or, when the emit is
//!   delayed, adds one member per listener to `{prefix}:delayed`; an idempotency key is set with
//!   `SET NX PX` in the same Lua script, so a batch is stored whole or not at all (Redis runs a
//!   script without interleaving other commands but does not undo one that fails halfway, so
//!   every check, such as a key of the wrong type, comes before the first write), and a key seen
//!   twice in one batch counts as a duplicate. A batch with neither idempotency keys nor delays
//!   whose listeners all had their stream and group set up (and their key's type checked) by
//!   this process's [`Store::open`] skips the script: its `XADD`s (and one `SADD` of the
//!   listeners) go in one `MULTI`/`EXEC` transaction, which costs the server a fraction of the
//!   script's time per delivery (the script's arguments, tables and calls from Lua are most of
//!   its cost). The trade-off: nothing checks the keys before the transaction writes, and Redis
//!   does not undo the commands of a transaction that ran when one of them fails. Redis refuses
//!   a transaction whole, running none of it, when a command in it is malformed or memory runs
//!   out; what is left to fail an `XADD` halfway is a listener's key holding another type, and
//!   `open` checked each of them, so it takes another program writing under this prefix since.
//!   Should it happen, the appends to the other streams stand (their deliveries run again if the
//!   batch is then stored whole), and every insert goes through the script from then until the
//!   next `open`, starting with this batch: the script refuses it, naming the key, until the key
//!   is fixed.
//! - **claim** runs one Lua script: it first moves every due member of `{prefix}:delayed` to its
//!   listener's stream (atomically, so with many workers each moves once), then takes, oldest
//!   entry id first across the named listeners, entries whose lease expired (pending longer than
//!   the lease: their consumer died or stopped extending; `XPENDING IDLE` + `XCLAIM`) and new
//!   entries (`XREADGROUP >`). The attempt is the entry's `attempts` plus the group's delivery
//!   count, which `XREADGROUP` sets to 1 and every `XCLAIM` raises by one. Entry ids are the
//!   server's time when the entry was appended, so "oldest first" holds to the millisecond across
//!   streams, and a delayed delivery queues behind what was appended before a claim moved it.
//!   In the usual case, no expired lease and at most one of the listeners with new entries (one
//!   `XRANGE ... COUNT 1` per listener tells, when there are several), the claim is a single
//!   `XREADGROUP ... COUNT limit`; otherwise it merges the expired entries with the new ones,
//!   read a page at a time (`XRANGE`), and reads the new ones it picked with `XREADGROUP`. Either
//!   way a claim reads the pending entries and at most a page or a claim's worth of new entries
//!   per listener, so its cost does not grow with the backlog. The script hands the entries
//!   over as they are; the client checks their fields (see "Crash loops").
//! - **extend** re-claims the entry for the same consumer with `XCLAIM ... JUSTID`, which resets
//!   its idle time without counting a delivery.
//! - **ack** is `XACK` plus `XDEL`: an acknowledged entry is deleted at once, so a stream holds
//!   only unfinished deliveries and never grows with history (each stream has a single group, so
//!   no other group can still need the entry). Redis frees a deleted entry's memory with the last
//!   entry of its node (about a hundred entries), so a delivery that stays pending for long keeps
//!   its neighbours' memory until it finishes. One script acknowledges a batch: for each
//!   listener and consumer, one `XPENDING` over the range of entry ids its receipts span reads
//!   the delivery counts (a page of twice as many entries as receipts, plus a few: the
//!   consumer's deliveries still running fill the rest; a receipt that did not fit on a full
//!   page is looked up alone), then one `XACK` and one `XDEL` take every entry whose lease still
//!   matches.
//! - **retry** acknowledges and deletes the entry and stores a copy with the attempts so far and
//!   the error, in `{prefix}:delayed` (or straight in the stream if due already).
//! - **dead_letter** acknowledges and deletes the entry and appends it to `{prefix}:dead`;
//!   **replay** appends a dead letter back to its listener's stream with its attempts at zero and
//!   deletes it (`XDEL`); **discard** deletes it.
//! - **counts**: waiting is the entries of every listener stream (`XLEN`) that are not under a
//!   live lease, plus the members of `{prefix}:delayed`; leased is the pending entries (`XPENDING`)
//!   idle for less than the last claim's lease; dead is `XLEN {prefix}:dead`.
//!
//! Each listener has a stream of its own rather than sharing one stream per event with one group
//! per listener: an emit addressed to some of an event's listeners then reaches exactly those,
//! acknowledging can delete an entry at once instead of counting which groups are done with it,
//! and a claim reads a single stream per listener. The price is one copy of the payload per
//! listener.
//!
//! ## Receipts and leases
//!
//! A receipt's id is `{entry id}/{listener}` (the stream and the group follow from the listener),
//! and its lease is `{delivery count}/{worker}`. `ack`, `extend`, `retry` and `dead_letter` act
//! only while the entry is pending for that consumer with that delivery count, checked in the same
//! script that acts: a worker whose lease expired and whose delivery was claimed again (by another
//! worker or by itself) changes nothing. As with the SQL stores, a receipt whose lease expired but
//! that nobody claimed again still acts.
//!
//! A lease is measured by the **claimer**: a pending entry is taken over once it has been idle
//! (neither claimed nor extended) for at least the `lease` the claiming worker passes, not the
//! lease it was claimed with. Workers sharing a store should use the same lease (the engine's
//! [`DurableConfig::lease`](super::DurableConfig::lease)).
//!
//! ## Clocks
//!
//! Lease expiry uses the server's clock only (idle times). Due times are set on the server's
//! clock too: `run_at` is turned into a delay on the worker's clock when the call is made
//! (`run_at - now`), and the script adds it to the server's `TIME`; a clock skew between workers
//! and the server therefore does not move retries. Dead letters' `failed_at` is the server's time.
//!
//! ## Crash loops
//!
//! An entry delivered more than [`RedisOptions::max_deliveries`] times (default 100) without an
//! outcome, because every worker that claimed it died or lost its lease, is dead-lettered by the
//! claim instead of being handed out again. The engine normally dead-letters such a delivery
//! itself much earlier (after the listener's attempts plus its `extra_claims`); this bound is the
//! store's own backstop. An entry whose fields are corrupt (not written by this store) is
//! dead-lettered by the claim with the reason, never handed out: the client checks the fields
//! of what the script claimed and dead-letters a corrupt entry under the lease the claim just
//! took (should that fail, the lease expires and a later claim tries again).
//!
//! # Durability
//!
//! Whatever a call returned `Ok` for is in the server's memory, and survives a restart of the
//! server as far as its persistence allows: with `appendonly yes` and `appendfsync always`
//! nothing acknowledged is lost; with `appendfsync everysec` (Redis's default when the append-only
//! file is on) up to a second of writes may be lost on a crash; with snapshots only, everything
//! since the last snapshot. Replication to replicas is asynchronous: a failover may lose the last
//! writes. The store reconnects by itself when the server comes back; calls made while it is away
//! fail with an error that says it is unreachable.
//!
//! Scripts address keys they compute themselves, so the store needs a single Redis server (with
//! replicas or Sentinel if wanted), not Redis Cluster. Redis 6.2 or newer is needed (`XPENDING
//! IDLE`, exclusive ranges); it is tested with Redis 7.
//!
//! # Waking up
//!
//! [`wait_for_work`](Store::wait_for_work) blocks on `XREAD BLOCK` over the streams of this
//! process's listeners, from where their groups were at this worker's last claim, on a second
//! connection of its own; it returns as soon as any process appends a delivery for them, when the
//! next delayed delivery falls due, or after the timeout. Leases that expire do not wake it: the
//! engine's poll interval finds them.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use emitter::durable::redis::{RedisOptions, RedisStore};
//! use emitter::durable::Durable;
//! use emitter::Emitter;
//!
//! // `rediss://` for TLS (`RedisOptions::tls_root_certificates` for a private authority);
//! // the password, if any, is never logged or shown.
//! let store = RedisStore::connect_with(
//!     "redis://:secret@127.0.0.1:6379/0",
//!     RedisOptions::new().prefix("shop"),
//! )
//! .await?;
//! let emitter = Emitter::builder().backend(Durable::new(store)).start().await?;
//! # emitter.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    Client, ConnectionAddr, ErrorKind, RedisError, Script, ScriptInvocation, ServerErrorKind,
    TlsCertificates, Value,
};
use tokio::sync::Notify;

use super::{
    from_unix_millis, unix_millis, Claimed, Counts, DeadLetter, Inserted, NewEmit, Receipt, Setup,
    Store, StoredEvent,
};
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// The schema version this code writes and reads (`{prefix}:schema`).
const SCHEMA_VERSION: &str = "1";

/// The key prefix unless [`RedisOptions::prefix`] says otherwise.
const DEFAULT_PREFIX: &str = "emitter";

/// Deliveries without an outcome before a claim dead-letters an entry (see the module docs).
const DEFAULT_MAX_DELIVERIES: u32 = 100;

/// Key retention until [`Store::open`] says otherwise: the engine's default.
const DEFAULT_KEY_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

/// The most due delayed deliveries one claim moves to their streams (the rest go next claim).
const MOVES_PER_CLAIM: usize = 1000;

/// The most deliveries one claim takes, whatever the caller asks.
const MAX_CLAIM: usize = 10_000;

/// How much longer than its `BLOCK` a wake-up read may take before it is given up.
const BLOCK_SLACK: Duration = Duration::from_secs(1);

/// Options of [`RedisStore::connect_with`]; [`RedisOptions::new`] (or `default`) gives the
/// defaults documented on each method.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    prefix: String,
    max_deliveries: u32,
    connection_timeout: Duration,
    response_timeout: Duration,
    tls_root_certificates: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            connection_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            tls_root_certificates: None,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("prefix", &self.prefix)
            .field("max_deliveries", &self.max_deliveries)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field(
                "tls_root_certificates",
                &self
                    .tls_root_certificates
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .finish()
    }
}

impl RedisOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prefix of every key the store uses (default `emitter`): 1 to 64 characters among
    /// ASCII letters, digits, `_`, `:`, `.` and `-`. Stores with different prefixes share a
    /// database without seeing each other's deliveries.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many times an entry may be delivered without an outcome (its workers died or lost
    /// their leases) before a claim dead-letters it (default 100; at least 1). Keep it above the
    /// largest listener attempts plus the engine's `extra_claims`, which normally catch a crash
    /// loop first.
    pub fn max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// How long connecting to the server may take (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long the server may take to answer a command (default 10 s). A claim or an insert of
    /// a large batch runs as one script (or transaction), so keep this well above their
    /// duration.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The certificate authorities to trust for a `rediss://` server, in PEM, instead of the
    /// system's (default: the system's, as `rustls-native-certs` finds them). For a server whose
    /// certificate a private authority signed.
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificates = Some(pem.into());
        self
    }
}

/// A [`Store`] in Redis Streams. See the [module documentation](self) for the layout.
///
/// Cheap to share: every call goes through one multiplexed connection that reconnects by itself
/// after the server went away.
pub struct RedisStore {
    connection: ConnectionManager,
    client: Client,
    /// The connection that blocks in `XREAD` for [`Store::wait_for_work`], made on first use.
    waiter: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Wakes this process's waiters when it stores work, or when the blocking read returned.
    work: Notify,
    address: String,
    options: RedisOptions,
    key_retention_ms: AtomicU64,
    /// The listeners of this process (from [`Store::open`]), whose streams a waiter watches.
    watched: Mutex<Vec<String>>,
    /// Where each listener's group was at this worker's last claim.
    delivered: Mutex<HashMap<String, String>>,
    /// The listeners whose stream and group [`Store::open`] set up and whose key it found of the
    /// right type: an insert that only appends to these may skip the script (see the module
    /// docs). Emptied when such an insert fails on the server, until the next `open`.
    ready: Mutex<HashSet<String>>,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

struct Scripts {
    open: Script,
    insert: Script,
    claim: Script,
    extend: Script,
    ack: Script,
    retry: Script,
    dead_letter: Script,
    replay: Script,
    counts: Script,
    next_due: Script,
}

impl Scripts {
    fn new() -> Self {
        let script = |body: &str| Script::new(&[LUA_PRELUDE, body].concat());
        Self {
            open: script(LUA_OPEN),
            insert: script(LUA_INSERT),
            claim: script(LUA_CLAIM),
            extend: script(LUA_EXTEND),
            ack: script(LUA_ACK),
            retry: script(LUA_RETRY),
            dead_letter: script(LUA_DEAD_LETTER),
            replay: script(LUA_REPLAY),
            counts: script(LUA_COUNTS),
            next_due: script(LUA_NEXT_DUE),
        }
    }
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://[user][:password@]host[:port][/db]`, or
    /// `rediss://` for TLS) with the default [`RedisOptions`].
    ///
    /// Fails if the URL is invalid or the server cannot be reached. The URL's password appears
    /// in no error, log line or `Debug` output.
    pub async fn connect(url: &str) -> Result<RedisStore, BackendError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to the server at `url` with `options` (see [`RedisStore::connect`]).
    pub async fn connect_with(
        url: &str,
        options: RedisOptions,
    ) -> Result<RedisStore, BackendError> {
        validate_prefix(&options.prefix)?;
        let client = match &options.tls_root_certificates {
            None => Client::open(url),
            Some(pem) => Client::build_with_tls(
                url,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|error| {
            // The error names what is wrong with the URL, never the URL itself.
            BackendError::with_source(format!("invalid Redis URL or TLS settings: {error}"), error)
        })?;
        let addr = client.get_connection_info().addr();
        let address = addr.to_string();
        if matches!(addr, ConnectionAddr::TcpTls { .. }) {
            // rustls needs a process-wide crypto provider; ours is `ring`. An error means the
            // application installed one already, which is as good.
            let _ = ::rustls::crypto::ring::default_provider().install_default();
        }
        let config =
            connection_config(&options).set_response_timeout(Some(options.response_timeout));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|error| redis_error(&address, "connect", error))?;
        Ok(RedisStore {
            connection,
            client,
            waiter: tokio::sync::Mutex::new(None),
            work: Notify::new(),
            address,
            options,
            key_retention_ms: AtomicU64::new(DEFAULT_KEY_RETENTION_MS),
            watched: Mutex::new(Vec::new()),
            delivered: Mutex::new(HashMap::new()),
            ready: Mutex::new(HashSet::new()),
            scripts: Scripts::new(),
        })
    }

    /// The server's address, `host:port` (or a socket path), without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The prefix of the store's keys.
    pub fn prefix(&self) -> &str {
        &self.options.prefix
    }

    /// An invocation of `script` with the prefix as its first argument, as every script expects.
    fn invocation<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.options.prefix);
        invocation
    }

    /// Runs a script and returns what followed its `'ok'`, or the error it refused with.
    async fn eval(
        &self,
        invocation: &ScriptInvocation<'_>,
        what: &str,
    ) -> Result<Vec<Value>, BackendError> {
        let mut connection = self.connection.clone();
        let reply: Value = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|error| redis_error(&self.address, what, error))?;
        let mut items = into_array(reply)
            .map_err(|problem| self.unexpected(what, &problem))?
            .into_iter();
        let status = items
            .next()
            .map(into_text)
            .transpose()
            .map_err(|problem| self.unexpected(what, &problem))?;
        match status.as_deref() {
            Some("ok") => Ok(items.collect()),
            Some("refused") => {
                let message = items
                    .next()
                    .map(into_text)
                    .transpose()
                    .map_err(|problem| self.unexpected(what, &problem))?
                    .unwrap_or_default();
                Err(BackendError::new(format!(
                    "the Redis store at {} (prefix `{}`) cannot {what}: {message}",
                    self.address, self.options.prefix
                )))
            }
            _ => Err(self.unexpected(what, "a reply that is neither `ok` nor `refused`")),
        }
    }

    async fn command(&self, command: &::redis::Cmd, what: &str) -> Result<Value, BackendError> {
        let mut connection = self.connection.clone();
        command
            .query_async(&mut connection)
            .await
            .map_err(|error| redis_error(&self.address, what, error))
    }

    fn unexpected(&self, what: &str, problem: &str) -> BackendError {
        BackendError::new(format!(
            "the Redis server at {} gave an unexpected reply to {what}: {problem}",
            self.address
        ))
    }

    fn corrupt(&self, what: &str, problem: &str) -> BackendError {
        BackendError::new(format!(
            "the Redis store at {} (prefix `{}`) holds corrupt data ({what}): {problem}",
            self.address, self.options.prefix
        ))
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.options.prefix)
    }

    fn listener_key(&self, listener: &str) -> String {
        format!("{}:listener:{listener}", self.options.prefix)
    }

    /// Runs `script` once for all `receipts`, with four arguments per receipt (listener, entry,
    /// worker, delivery count); receipts this store did not make hold nothing and are skipped.
    async fn per_receipt(
        &self,
        script: &Script,
        receipts: &[Receipt],
        what: &str,
    ) -> Result<(), BackendError> {
        let mut invocation = self.invocation(script);
        let mut any = false;
        for held in receipts.iter().filter_map(Held::parse) {
            invocation
                .arg(held.listener)
                .arg(held.entry)
                .arg(held.worker)
                .arg(held.count);
            any = true;
        }
        if any {
            self.eval(&invocation, what).await?;
        }
        Ok(())
    }

    /// Reads a batch of entries the claim script handed out, `[listener, delivery count, [[id,
    /// fields]...]]`, giving each to `take`; an entry whose fields this store did not write
    /// comes as the receipt and reason to dead-letter it with.
    fn read_claimed(
        &self,
        batch: Value,
        worker: &str,
        mut take: impl FnMut(ClaimedEntry),
    ) -> Result<(), String> {
        let mut items = into_array(batch)?.into_iter();
        let (Some(listener), Some(count), Some(entries)) =
            (items.next(), items.next(), items.next())
        else {
            return Err(
                "a batch of claimed entries without its listener, count and entries".into(),
            );
        };
        let listener = into_text(listener)?;
        let count = into_int(count)?;
        let delivered = u32::try_from(count).unwrap_or(u32::MAX);
        for entry in into_array(entries)? {
            let mut items = into_array(entry)?.into_iter();
            let (Some(id), Some(fields)) = (items.next(), items.next()) else {
                return Err("a claimed entry without its id and fields".to_owned());
            };
            let id = into_text(id)?;
            let mut fields = Fields::read(fields)?;
            let taken = receipt(&listener, &id, worker, count);
            let read = match delivery_problem(&fields) {
                Some(problem) => Err(problem.to_owned()),
                None => number_field::<u32>(&fields.attempts, "attempts")
                    .and_then(|attempts| Ok((read_event(&mut fields)?, attempts))),
            };
            take(match read {
                Ok((event, attempts)) => Ok(Claimed {
                    receipt: taken,
                    listener: listener.clone(),
                    event,
                    attempt: attempts.saturating_add(delivered),
                }),
                Err(problem) => {
                    let key = self.listener_key(&listener);
                    Err((
                        taken,
                        format!("corrupt delivery (entry {id} of `{key}`): {problem}"),
                    ))
                }
            });
        }
        Ok(())
    }

    /// Whether `emits` only append deliveries (no idempotency key, nothing delayed) to the
    /// streams of listeners that [`Store::open`] set up, so that
    /// [`append_in_transaction`](Self::append_in_transaction) may store them.
    fn only_appends_to_ready_streams(&self, emits: &[NewEmit]) -> bool {
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
    async fn append_in_transaction(&self, emits: &[NewEmit]) -> Result<(), RedisError> {
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
                transaction
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
                    .arg(0)
                    .ignore();
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

    /// Blocks until a watched stream has an entry past where this worker last saw its group, the
    /// next delayed delivery is due, or `timeout`.
    async fn block_for_work(
        &self,
        waiter: &mut Option<ConnectionManager>,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let watched = self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if watched.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(());
        }
        let what = "find the next delayed delivery";
        let next_due = self
            .eval(&self.invocation(&self.scripts.next_due), what)
            .await?;
        // Redis refuses absurd timeouts; a day is more than any poll interval.
        let mut block = duration_millis(timeout).min(24 * 3600 * 1000);
        if let Some(due) = next_due.into_iter().next() {
            let due = into_int(due).map_err(|problem| self.unexpected(what, &problem))?;
            if due >= 0 {
                block = block.min(u64::try_from(due).unwrap_or(0));
            }
        }
        if block == 0 {
            return Ok(());
        }
        let connection = match waiter {
            Some(connection) => connection,
            None => {
                // No response timeout: the read blocks on purpose; the caller bounds it.
                let config = connection_config(&self.options).set_response_timeout(None);
                let connection = ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(|error| redis_error(&self.address, "connect", error))?;
                waiter.insert(connection)
            }
        };
        let mut read = ::redis::cmd("XREAD");
        read.arg("BLOCK")
            .arg(block)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS");
        {
            let delivered = self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for listener in &watched {
                read.arg(self.listener_key(listener));
            }
            for listener in &watched {
                read.arg(delivered.get(listener).map_or("$", String::as_str));
            }
        }
        let mut connection = connection.clone();
        let wait = Duration::from_millis(block) + BLOCK_SLACK;
        match tokio::time::timeout(wait, read.query_async::<Value>(&mut connection)).await {
            Ok(Ok(_)) | Err(_) => Ok(()),
            Ok(Err(error)) => Err(redis_error(&self.address, "wait for work", error)),
        }
    }
}

fn connection_config(options: &RedisOptions) -> ConnectionManagerConfig {
    // Few retries: while the server is away a call fails within about a second, saying so, and
    // the next call tries again; the engine retries with its own backoff.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connection_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(1))
}

/// A Redis error as a [`BackendError`] naming the server (never the URL: it may hold a password).
fn redis_error(address: &str, what: &str, error: RedisError) -> BackendError {
    let message = if is_tls_failure(&error) {
        format!(
            "the TLS handshake with the Redis server at {address} failed (could not {what}): \
             {error}; if a private authority signed its certificate, pass it with \
             `RedisOptions::tls_root_certificates`"
        )
    } else if error.is_timeout() {
        format!("the Redis server at {address} did not answer in time (could not {what}): {error}")
    } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped()
    {
        format!("the Redis server at {address} is unreachable (could not {what}): {error}")
    } else {
        format!("the Redis server at {address} failed to {what}: {error}")
    };
    BackendError::with_source(message, error)
}

/// Whether the server ran a transaction but refused some of its commands, so that the others
/// took effect; not when it refused the whole transaction (`EXECABORT`: nothing ran) or was not
/// reached or did not answer (as for a script, whether it ran is then unknown).
fn ran_in_part(error: &RedisError) -> bool {
    error.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort)
        && error.clone().into_server_errors().is_some()
}

/// Whether rustls refused the connection (an untrusted certificate, say): the server answered,
/// so it is not "unreachable".
fn is_tls_failure(error: &RedisError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        // redis-rs keeps the I/O error that rustls's error rides in as an `Arc<dyn Error>`.
        let io = current.downcast_ref::<std::io::Error>().or_else(|| {
            current
                .downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
                .and_then(|shared| shared.downcast_ref::<std::io::Error>())
        });
        let inner = io.and_then(std::io::Error::get_ref);
        if current.is::<::rustls::Error>()
            || inner.is_some_and(|inner| inner.is::<::rustls::Error>())
        {
            return true;
        }
        cause = current.source();
    }
    false
}

fn validate_prefix(prefix: &str) -> Result<(), BackendError> {
    let valid = (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_:.-".contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(BackendError::new(format!(
            "invalid Redis key prefix {prefix:?}: use 1 to 64 characters among ASCII letters, \
             digits, `_`, `:`, `.` and `-`"
        )))
    }
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How long until `run_at` on this process's clock, in whole milliseconds (0 if it passed).
fn delay_millis(run_at: SystemTime) -> u64 {
    run_at
        .duration_since(SystemTime::now())
        .map_or(0, duration_millis)
}

/// Whether `id` has the shape of a stream entry id, `<ms>-<seq>`.
fn is_entry_id(id: &str) -> bool {
    let digits =
        |part: &str| (1..=20).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    id.split_once('-')
        .is_some_and(|(millis, seq)| digits(millis) && digits(seq))
}

/// An entry id as the pair of numbers Redis orders entries by; `None` if Redis cannot have made
/// it (a part beyond 64 bits).
fn entry_order(id: &str) -> Option<(u64, u64)> {
    let (millis, seq) = id.split_once('-')?;
    Some((millis.parse().ok()?, seq.parse().ok()?))
}

fn receipt(listener: &str, entry: &str, worker: &str, count: i64) -> Receipt {
    Receipt {
        id: format!("{entry}/{listener}"),
        lease: format!("{count}/{worker}"),
    }
}

/// A receipt taken apart: which entry of which listener's stream, held by which consumer under
/// which delivery count.
struct Held<'a> {
    listener: &'a str,
    entry: &'a str,
    worker: &'a str,
    count: u64,
}

impl<'a> Held<'a> {
    /// `None` for a receipt this store did not make: it holds nothing, so acting on it is a no-op.
    fn parse(receipt: &'a Receipt) -> Option<Held<'a>> {
        let (entry, listener) = receipt.id.split_once('/')?;
        let (count, worker) = receipt.lease.split_once('/')?;
        if !is_entry_id(entry) || listener.is_empty() || worker.is_empty() {
            return None;
        }
        Some(Held {
            listener,
            entry,
            worker,
            count: count.parse().ok()?,
        })
    }
}

fn into_array(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("expected an array, got {other:?}")),
    }
}

fn into_bytes(value: Value) -> Result<Vec<u8>, String> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.into_bytes()),
        Value::Okay => Ok(b"OK".to_vec()),
        Value::Int(number) => Ok(number.to_string().into_bytes()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

fn into_text(value: Value) -> Result<String, String> {
    String::from_utf8(into_bytes(value)?).map_err(|_| "a string that is not UTF-8".to_owned())
}

fn into_int(value: Value) -> Result<i64, String> {
    match value {
        Value::Int(number) => Ok(number),
        other => {
            let text = into_text(other)?;
            text.parse()
                .map_err(|_| format!("expected an integer, got {text:?}"))
        }
    }
}

/// The fields of a stream entry that this store reads (a delivery's or a dead letter's); other
/// fields are ignored.
#[derive(Default)]
struct Fields {
    event: Option<Vec<u8>>,
    emit: Option<Vec<u8>>,
    at: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    attempts: Option<Vec<u8>>,
    listener: Option<Vec<u8>>,
    reason: Option<Vec<u8>>,
    failed_at: Option<Vec<u8>>,
}

impl Fields {
    /// Takes apart `[name, value, name, value, ...]`.
    fn read(value: Value) -> Result<Fields, String> {
        let items = into_array(value)?;
        if items.len() % 2 != 0 {
            return Err("an entry with an odd number of field names and values".to_owned());
        }
        let mut fields = Fields::default();
        let mut items = items.into_iter();
        while let (Some(name), Some(value)) = (items.next(), items.next()) {
            let slot = match into_bytes(name)?.as_slice() {
                b"event" => &mut fields.event,
                b"emit" => &mut fields.emit,
                b"at" => &mut fields.at,
                b"payload" => &mut fields.payload,
                b"attempts" => &mut fields.attempts,
                b"listener" => &mut fields.listener,
                b"reason" => &mut fields.reason,
                b"failed_at" => &mut fields.failed_at,
                _ => continue,
            };
            *slot = Some(into_bytes(value)?);
        }
        Ok(fields)
    }
}

fn field<'f>(value: &'f Option<Vec<u8>>, name: &str) -> Result<&'f [u8], String> {
    value
        .as_deref()
        .ok_or_else(|| format!("it has no `{name}` field"))
}

fn text_field(value: Option<Vec<u8>>, name: &str) -> Result<String, String> {
    String::from_utf8(value.ok_or_else(|| format!("it has no `{name}` field"))?)
        .map_err(|_| format!("its `{name}` field is not UTF-8"))
}

fn number_field<T: std::str::FromStr>(value: &Option<Vec<u8>>, name: &str) -> Result<T, String> {
    std::str::from_utf8(field(value, name)?)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("its `{name}` field is not a number"))
}

/// The event an entry carries (a delivery's or a dead letter's); takes its payload.
fn read_event(fields: &mut Fields) -> Result<StoredEvent, String> {
    let emit = std::str::from_utf8(field(&fields.emit, "emit")?)
        .ok()
        .filter(|hex| hex.len() == 32)
        .and_then(|hex| u128::from_str_radix(hex, 16).ok())
        .ok_or("its `emit` field is not 32 hexadecimal digits")?;
    let event_id = match fields.event.take() {
        // An id that is not UTF-8 names no event of any binary: the engine dead-letters it.
        Some(id) => String::from_utf8(id)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        None => return Err("it has no `event` field".to_owned()),
    };
    Ok(StoredEvent {
        event_id,
        emit_id: EmitId::from_u128(emit),
        emitted_at: from_unix_millis(number_field(&fields.at, "at")?),
        payload: fields.payload.take().ok_or("it has no `payload` field")?,
    })
}

/// What is wrong with a delivery's fields, in the words of the scripts' `problem`, or `None`.
fn delivery_problem(fields: &Fields) -> Option<&'static str> {
    let digits = |value: &Option<Vec<u8>>, most: usize| {
        value.as_deref().is_some_and(|value| {
            (1..=most).contains(&value.len()) && value.iter().all(u8::is_ascii_digit)
        })
    };
    if fields.event.is_none() {
        Some("it has no `event` field")
    } else if !fields
        .emit
        .as_deref()
        .is_some_and(|emit| emit.len() == 32 && emit.iter().all(u8::is_ascii_hexdigit))
    {
        Some("its `emit` field is not 32 hexadecimal digits")
    } else if !digits(&fields.at, 15) {
        Some("its `at` field is not a time in milliseconds")
    } else if fields.payload.is_none() {
        Some("it has no `payload` field")
    } else if !digits(&fields.attempts, 9) {
        Some("its `attempts` field is not a count")
    } else {
        None
    }
}

/// A claimed entry: `Ok` to hand out, or the receipt and dead-letter reason of a corrupt one.
type ClaimedEntry = Result<Claimed, (Receipt, String)>;

fn read_dead_letter(value: Value) -> Result<DeadLetter, String> {
    let mut items = into_array(value)?.into_iter();
    let (Some(id), Some(fields)) = (items.next(), items.next()) else {
        return Err("an entry without its id and fields".to_owned());
    };
    let id = into_text(id)?;
    let read = |fields: Value| -> Result<DeadLetter, String> {
        let mut fields = Fields::read(fields)?;
        Ok(DeadLetter {
            id: id.clone(),
            listener: text_field(fields.listener.take(), "listener")?,
            event: read_event(&mut fields)?,
            attempts: number_field(&fields.attempts, "attempts")?,
            reason: String::from_utf8_lossy(field(&fields.reason, "reason")?).into_owned(),
            failed_at: from_unix_millis(number_field(&fields.failed_at, "failed_at")?),
        })
    };
    read(fields).map_err(|problem| {
        format!(
            "dead letter {id} is corrupt: {problem}; discard it (`discard(\"{id}\")`) to list \
             the others"
        )
    })
}

impl Store for RedisStore {
    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
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
                    // with the reason; it takes every insert from now until the next `open`.
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
        let mut seen = HashSet::new();
        let listeners: Vec<&str> = listeners
            .iter()
            .copied()
            .filter(|listener| seen.insert(*listener))
            .collect();
        if listeners.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if worker.is_empty() {
            return Err(BackendError::new(
                "cannot claim deliveries for a worker with an empty name: give it a name",
            ));
        }
        let mut invocation = self.invocation(&self.scripts.claim);
        invocation
            .arg(worker)
            .arg(limit.min(MAX_CLAIM))
            .arg(duration_millis(lease).max(1))
            .arg(self.options.max_deliveries)
            .arg(MOVES_PER_CLAIM);
        for listener in &listeners {
            invocation.arg(*listener);
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
        let Some(held) = Held::parse(receipt) else {
            return Ok(());
        };
        let delay = delay_millis(run_at);
        let mut invocation = self.invocation(&self.scripts.retry);
        invocation
            .arg(held.listener)
            .arg(held.entry)
            .arg(held.worker)
            .arg(held.count)
            .arg(delay)
            .arg(error);
        self.eval(&invocation, "release a delivery to retry")
            .await?;
        if delay == 0 {
            self.work.notify_waiters();
        }
        Ok(())
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

    async fn wait_for_work(&self, timeout: Duration) {
        let work = self.work.notified();
        tokio::pin!(work);
        work.as_mut().enable();
        // One blocking read per process is enough; other waiters hear from it.
        let Ok(mut waiter) = self.waiter.try_lock() else {
            let _ = tokio::time::timeout(timeout, work).await;
            return;
        };
        let started = tokio::time::Instant::now();
        let blocked = tokio::select! {
            () = &mut work => Ok(()),
            blocked = self.block_for_work(&mut waiter, timeout) => blocked,
        };
        drop(waiter);
        self.work.notify_waiters();
        if let Err(error) = blocked {
            // Only a wake-up: the engine's next claim reports the error. Sleeping out the
            // timeout keeps an unreachable server from turning the wait into a busy loop.
            tracing::debug!("waiting for deliveries in Redis failed: {error}");
            tokio::time::sleep_until(started + timeout).await;
        }
    }
}

/// Shared by every script. `ARGV[1]` is always the key prefix, validated by the store.
const LUA_PRELUDE: &str = r#"
local prefix = ARGV[1]
local delayed_key = prefix .. ':delayed'
local dead_key = prefix .. ':dead'
local listeners_key = prefix .. ':listeners'
local seq_key = prefix .. ':seq'

local function listener_key(listener)
  return prefix .. ':listener:' .. listener
end

local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function int(number)
  return string.format('%d', number)
end

local function field_map(flat)
  local map = {}
  for i = 1, #flat - 1, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

-- Creates a listener's stream and group unless they exist. A new group starts at 0: every entry
-- of a listener's stream is addressed to that listener. The usual error is that the group exists
-- (BUSYGROUP); any other makes the command that follows fail with the real reason.
local ensured = {}
local function ensure_group(key, listener)
  if not ensured[key] then
    redis.pcall('XGROUP', 'CREATE', key, listener, '0', 'MKSTREAM')
    ensured[key] = true
  end
end

-- Whether `consumer` still holds entry `id` under the claim that delivered it the `count`th time.
local function holds(key, listener, id, consumer, count)
  local reply = redis.pcall('XPENDING', key, listener, id, id, 1, consumer)
  if type(reply) ~= 'table' or reply.err or #reply == 0 then
    return false
  end
  return tonumber(reply[1][4]) == tonumber(count)
end

local function valid_emit(emit)
  return type(emit) == 'string' and #emit == 32 and not string.find(emit, '[^0-9a-fA-F]')
end

local function valid_number(text, digits)
  return type(text) == 'string' and #text <= digits and string.find(text, '^%d+$') ~= nil
end

-- What is wrong with a delivery's fields, or nil.
local function problem(m)
  if type(m.event) ~= 'string' then
    return 'it has no `event` field'
  end
  if not valid_emit(m.emit) then
    return 'its `emit` field is not 32 hexadecimal digits'
  end
  if not valid_number(m.at, 15) then
    return 'its `at` field is not a time in milliseconds'
  end
  if type(m.payload) ~= 'string' then
    return 'it has no `payload` field'
  end
  if not valid_number(m.attempts, 9) then
    return 'its `attempts` field is not a count'
  end
  return nil
end

local function attempts_of(m)
  if valid_number(m.attempts, 9) then
    return tonumber(m.attempts)
  end
  return 0
end

-- Adds a dead letter. Missing or corrupt fields get neutral values (the reason says what was
-- wrong), so that every dead letter can be listed.
local function bury(listener, m, attempts, reason, now)
  local event = m.event
  if type(event) ~= 'string' then
    event = ''
  end
  local emit = m.emit
  if not valid_emit(emit) then
    emit = string.rep('0', 32)
  end
  local at = m.at
  if not valid_number(at, 15) then
    at = '0'
  end
  local payload = m.payload
  if type(payload) ~= 'string' then
    payload = ''
  end
  redis.call('XADD', dead_key, '*', 'listener', listener, 'event', event, 'emit', emit, 'at', at,
    'payload', payload, 'attempts', int(attempts), 'reason', reason, 'failed_at', int(now))
end

-- Appends a delivery to its listener's stream.
local function append(listener, event, emit, at, payload, attempts, err)
  local key = listener_key(listener)
  ensure_group(key, listener)
  redis.call('SADD', listeners_key, listener)
  if err == nil or err == '' then
    redis.call('XADD', key, '*', 'event', event, 'emit', emit, 'at', at, 'payload', payload,
      'attempts', attempts)
  else
    redis.call('XADD', key, '*', 'event', event, 'emit', emit, 'at', at, 'payload', payload,
      'attempts', attempts, 'error', err)
  end
end

-- Keeps a delivery in the delayed set until `due`.
local function delay(listener, due, event, emit, at, payload, attempts, err)
  local seq = redis.call('INCR', seq_key)
  redis.call('ZADD', delayed_key, int(due),
    cmsgpack.pack({ listener, int(seq), event, emit, at, payload, attempts, err or '' }))
end

local function type_problem(key, want)
  local found = redis.call('TYPE', key)['ok']
  if found ~= 'none' and found ~= want then
    return 'key `' .. key .. '` holds a ' .. found .. ', not a ' .. want ..
      ' (does another program use this prefix?)'
  end
  return nil
end

-- Moves due delayed deliveries to their listeners' streams.
local function move_due(now, max)
  local due = redis.call('ZRANGEBYSCORE', delayed_key, '-inf', int(now), 'LIMIT', 0, max)
  for _, member in ipairs(due) do
    local ok, d = pcall(cmsgpack.unpack, member)
    local valid = ok and type(d) == 'table' and #d == 8
    if valid then
      for i = 1, 8 do
        if type(d[i]) ~= 'string' then
          valid = false
        end
      end
    end
    local wrong = valid and type_problem(listener_key(d[1]), 'stream')
    if wrong then
      bury(d[1], { event = d[3], emit = d[4], at = d[5], payload = d[6] }, tonumber(d[7]) or 0,
        'a delayed delivery cannot be moved to its stream: ' .. wrong, now)
    elseif valid then
      append(d[1], d[3], d[4], d[5], d[6], d[7], d[8])
    else
      bury('', { payload = member }, 0,
        'a delayed delivery in `' .. delayed_key .. '` cannot be decoded', now)
    end
    redis.call('ZREM', delayed_key, member)
  end
end

-- Checked before a script's first write: Redis does not undo the writes of a failed script.
local function check_types(listeners)
  local found = type_problem(delayed_key, 'zset') or type_problem(dead_key, 'stream')
    or type_problem(listeners_key, 'set') or type_problem(seq_key, 'string')
  if found then
    return found
  end
  for _, listener in ipairs(listeners) do
    found = type_problem(listener_key(listener), 'stream')
    if found then
      return found
    end
  end
  return nil
end
"#;

/// `ARGV`: prefix, schema version, listeners...
const LUA_OPEN: &str = r#"
local schema_key = prefix .. ':schema'
local found = type_problem(schema_key, 'string')
if found then
  return { 'refused', found }
end
local version = redis.call('GET', schema_key)
if version and version ~= ARGV[2] then
  return { 'refused', 'its keys have schema version ' .. version .. ' and this build reads version '
    .. ARGV[2] .. ': run a build of the same version, or use another prefix' }
end
local names = {}
for i = 3, #ARGV do
  names[#names + 1] = ARGV[i]
end
found = check_types(names)
if found then
  return { 'refused', found }
end
if not version then
  redis.call('SET', schema_key, ARGV[2])
end
for _, listener in ipairs(names) do
  ensure_group(listener_key(listener), listener)
  redis.call('SADD', listeners_key, listener)
end
return { 'ok' }
"#;

/// `ARGV`: prefix, key retention in ms, emit count, then per emit: has key (`0`/`1`), key, event
/// id, emit id, emitted at, payload, delay in ms, listener count, listeners...
const LUA_INSERT: &str = r#"
local retention = ARGV[2]
local emits, names, seen = {}, {}, {}
local i = 4
for e = 1, tonumber(ARGV[3]) do
  local emit = { has_key = ARGV[i] == '1', key = ARGV[i + 1], event = ARGV[i + 2],
    emit = ARGV[i + 3], at = ARGV[i + 4], payload = ARGV[i + 5], delay = tonumber(ARGV[i + 6]),
    listeners = {} }
  local count = tonumber(ARGV[i + 7])
  i = i + 8
  for l = 1, count do
    local listener = ARGV[i]
    emit.listeners[l] = listener
    if not seen[listener] then
      seen[listener] = true
      names[#names + 1] = listener
    end
    i = i + 1
  end
  emits[e] = emit
end
local found = check_types(names)
if found then
  return { 'refused', found }
end
local now = now_ms()
local stored, duplicates = 0, 0
for _, emit in ipairs(emits) do
  local fresh = true
  if emit.has_key then
    fresh = redis.call('SET', prefix .. ':key:' .. emit.key, '1', 'NX', 'PX', retention)
  end
  if fresh then
    stored = stored + 1
    for _, listener in ipairs(emit.listeners) do
      if emit.delay > 0 then
        delay(listener, now + emit.delay, emit.event, emit.emit, emit.at, emit.payload, '0', '')
      else
        append(listener, emit.event, emit.emit, emit.at, emit.payload, '0', '')
      end
    end
  else
    duplicates = duplicates + 1
  end
end
return { 'ok', stored, duplicates }
"#;

/// `ARGV`: prefix, worker, limit, lease in ms, max deliveries, max moves, listeners...
///
/// Returns `{'ok', {{listener, delivery count, {{id, fields}...}}...}, {listener, last delivered
/// id...}}`: the claimed entries in batches, oldest first, not checked (the client dead-letters
/// corrupt ones), and where each listener's group is now.
const LUA_CLAIM: &str = r#"
local worker = ARGV[2]
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local max_deliveries = tonumber(ARGV[5])
local names = {}
for i = 7, #ARGV do
  names[#names + 1] = ARGV[i]
end
local found = check_types(names)
if found then
  return { 'refused', found }
end
local now = now_ms()
move_due(now, tonumber(ARGV[6]))
redis.call('SET', prefix .. ':lease', ARGV[4])

local function parse_id(id)
  local millis, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(millis), tonumber(seq)
end
local function id_less(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  if am ~= bm then
    return am < bm
  end
  return as < bs
end

-- One source per listener: its expired pending entries, and where its group is.
local sources = {}
local any_expired = false
for _, listener in ipairs(names) do
  local key = listener_key(listener)
  local last = nil
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) == 'table' and not groups.err then
    for _, group in ipairs(groups) do
      local info = field_map(group)
      if info['name'] == listener then
        last = info['last-delivered-id']
      end
    end
  end
  local expired = {}
  if last then
    local pending = redis.call('XPENDING', key, listener, 'IDLE', lease, '-', '+', limit)
    for _, entry in ipairs(pending) do
      expired[#expired + 1] = { id = entry[1], count = tonumber(entry[4]) }
      any_expired = true
    end
  else
    ensure_group(key, listener)
    last = '0-0'
  end
  sources[#sources + 1] = { listener = listener, key = key, after = last, last = last, buf = {},
    pos = 1, done = false, expired = expired, epos = 1, new = 0 }
end

-- The claimed entries, in batches of one listener and delivery count: `{listener, count,
-- {{id, fields}...}}`. The client checks their fields (and dead-letters corrupt ones).
local out = {}
local function hand_out(source, count, entry)
  local batch = out[#out]
  if batch == nil or batch[1] ~= source.listener or batch[2] ~= count then
    batch = { source.listener, count, {} }
    out[#out + 1] = batch
  end
  batch[3][#batch[3] + 1] = entry
end

-- Gives the consumer the next `count` new entries of a source's stream: `{{id, fields}...}`.
local function read_new(source, count)
  local reply = redis.call('XREADGROUP', 'GROUP', source.listener, worker, 'COUNT', count,
    'STREAMS', source.key, '>')
  if type(reply) ~= 'table' then
    return {}
  end
  local entries = reply[1][2]
  if #entries > 0 then
    source.last = entries[#entries][1]
  end
  return entries
end

-- Where each listener's group is now, for the waiter.
local function lasts()
  local list = {}
  for _, source in ipairs(sources) do
    list[#list + 1] = source.listener
    list[#list + 1] = source.last
  end
  return list
end

-- The usual case: no lease expired, and at most one listener has new entries. Its oldest
-- `limit` new entries are then the answer, read once.
if not any_expired then
  local with_new = sources
  if #sources > 1 then
    with_new = {}
    for _, source in ipairs(sources) do
      if #redis.call('XRANGE', source.key, '(' .. source.last, '+', 'COUNT', 1) > 0 then
        with_new[#with_new + 1] = source
      end
    end
  end
  if #with_new <= 1 then
    local source = with_new[1]
    if source then
      local entries = read_new(source, limit)
      if #entries > 0 then
        out[1] = { source.listener, 1, entries }
      end
    end
    return { 'ok', out, lasts() }
  end
end

-- Otherwise, oldest entry id first across the listeners' expired entries and new entries, the
-- new ones looked at a page at a time.
local page = math.min(limit, 32)
local function fetch(source)
  source.buf = {}
  source.pos = 1
  if source.done then
    return
  end
  local entries = redis.call('XRANGE', source.key, '(' .. source.after, '+', 'COUNT', page)
  for i, entry in ipairs(entries) do
    source.buf[i] = entry[1]
  end
  if #entries < page then
    source.done = true
  else
    source.after = entries[#entries][1]
  end
end
for _, source in ipairs(sources) do
  fetch(source)
end

local picked = {}
while #picked < limit do
  local best, best_id, best_expired = nil, nil, false
  for _, source in ipairs(sources) do
    if source.pos > #source.buf and not source.done then
      fetch(source)
    end
    local expired = source.expired[source.epos]
    if expired and (best_id == nil or id_less(expired.id, best_id)) then
      best, best_id, best_expired = source, expired.id, true
    end
    local new = source.buf[source.pos]
    if new and (best_id == nil or id_less(new, best_id)) then
      best, best_id, best_expired = source, new, false
    end
  end
  if best == nil then
    break
  end
  if best_expired then
    local expired = best.expired[best.epos]
    best.epos = best.epos + 1
    local claimed = redis.call('XCLAIM', best.key, best.listener, worker, lease, expired.id)
    local entry = claimed[1]
    if type(entry) ~= 'table' or type(entry[2]) ~= 'table' then
      -- Deleted while pending: nothing to deliver.
      redis.call('XACK', best.key, best.listener, expired.id)
    elseif expired.count + 1 > max_deliveries then
      local m = field_map(entry[2])
      bury(best.listener, m, attempts_of(m) + expired.count + 1,
        'delivered ' .. int(expired.count + 1) .. ' times without an outcome: every worker that ' ..
        'claimed it died or lost its lease (a crash loop?); the Redis store dead-letters an ' ..
        'entry after ' .. int(max_deliveries) .. ' deliveries', now)
      redis.call('XACK', best.key, best.listener, expired.id)
      redis.call('XDEL', best.key, expired.id)
    else
      picked[#picked + 1] = { source = best, id = expired.id, count = expired.count + 1,
        entry = entry }
    end
  else
    best.pos = best.pos + 1
    best.new = best.new + 1
    picked[#picked + 1] = { source = best, id = best_id, count = 1 }
  end
end

for _, source in ipairs(sources) do
  source.read = {}
  if source.new > 0 then
    for _, entry in ipairs(read_new(source, source.new)) do
      source.read[entry[1]] = entry
    end
  end
end

for _, pick in ipairs(picked) do
  local entry = pick.entry or pick.source.read[pick.id]
  if entry then
    hand_out(pick.source, pick.count, entry)
  end
end
return { 'ok', out, lasts() }
"#;

/// `ARGV`: prefix, then per receipt: listener, entry id, consumer, delivery count.
const LUA_EXTEND: &str = r#"
for i = 2, #ARGV - 3, 4 do
  local listener, id, consumer = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = listener_key(listener)
  if holds(key, listener, id, consumer, ARGV[i + 3]) then
    redis.call('XCLAIM', key, listener, consumer, 0, id, 'JUSTID')
  end
end
return { 'ok' }
"#;

/// `ARGV`: prefix, then per stream and consumer: listener, consumer, first entry id, last entry
/// id, receipt count, then per receipt (in entry order, each once): entry id, delivery count.
const LUA_ACK: &str = r#"
local done = 0
local i = 2
while i <= #ARGV do
  local listener, consumer, first, last = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local n = tonumber(ARGV[i + 4])
  local from = i + 5
  i = from + 2 * n
  local key = listener_key(listener)
  -- The delivery counts of the consumer's pending entries in the range, in one read. Its own
  -- entries that are not in this batch (still running) may fill the page: receipts not on it
  -- are then looked up one by one.
  local page = 2 * n + 16
  local pending = redis.pcall('XPENDING', key, listener, first, last, page, consumer)
  if type(pending) == 'table' and not pending.err then
    local counts = {}
    for _, entry in ipairs(pending) do
      counts[entry[1]] = tonumber(entry[4])
    end
    local full = #pending >= page
    local ids = {}
    for r = from, i - 1, 2 do
      local id, count = ARGV[r], tonumber(ARGV[r + 1])
      local held = counts[id]
      if held == nil and full then
        if holds(key, listener, id, consumer, count) then
          held = count
        end
      end
      if held == count then
        ids[#ids + 1] = id
      end
    end
    -- In slices: Lua's `unpack` takes a few thousand values at most.
    for s = 1, #ids, 1000 do
      local e = math.min(s + 999, #ids)
      done = done + redis.call('XACK', key, listener, unpack(ids, s, e))
      redis.call('XDEL', key, unpack(ids, s, e))
    end
  end
end
return { 'ok', done }
"#;

/// `ARGV`: prefix, listener, entry id, consumer, delivery count, delay in ms, error.
const LUA_RETRY: &str = r#"
local listener, id, count = ARGV[2], ARGV[3], ARGV[5]
local key = listener_key(listener)
if not holds(key, listener, id, ARGV[4], count) then
  return { 'ok', 0 }
end
local found = check_types({ listener })
if found then
  return { 'refused', found }
end
local now = now_ms()
local entries = redis.call('XRANGE', key, id, id)
if #entries > 0 then
  local m = field_map(entries[1][2])
  local attempts = attempts_of(m) + tonumber(count)
  local wrong = problem(m)
  local wait = tonumber(ARGV[6])
  if wrong then
    bury(listener, m, attempts, 'corrupt delivery (entry ' .. id .. ' of `' .. key .. '`): ' ..
      wrong .. '; its last attempt failed: ' .. ARGV[7], now)
  elseif wait > 0 then
    delay(listener, now + wait, m.event, m.emit, m.at, m.payload, int(attempts), ARGV[7])
  else
    append(listener, m.event, m.emit, m.at, m.payload, int(attempts), ARGV[7])
  end
end
redis.call('XACK', key, listener, id)
redis.call('XDEL', key, id)
return { 'ok', 1 }
"#;

/// `ARGV`: prefix, listener, entry id, consumer, delivery count, reason.
const LUA_DEAD_LETTER: &str = r#"
local listener, id, count = ARGV[2], ARGV[3], ARGV[5]
local key = listener_key(listener)
if not holds(key, listener, id, ARGV[4], count) then
  return { 'ok', 0 }
end
local found = check_types({ listener })
if found then
  return { 'refused', found }
end
local entries = redis.call('XRANGE', key, id, id)
if #entries > 0 then
  local m = field_map(entries[1][2])
  bury(listener, m, attempts_of(m) + tonumber(count), ARGV[6], now_ms())
end
redis.call('XACK', key, listener, id)
redis.call('XDEL', key, id)
return { 'ok', 1 }
"#;

/// `ARGV`: prefix, dead letter id.
const LUA_REPLAY: &str = r#"
local id = ARGV[2]
local found = type_problem(dead_key, 'stream')
if found then
  return { 'refused', found }
end
local entries = redis.call('XRANGE', dead_key, id, id)
if #entries == 0 then
  return { 'ok', 0 }
end
local m = field_map(entries[1][2])
if type(m.listener) ~= 'string' or m.listener == '' then
  return { 'refused', 'dead letter ' .. id .. ' names no listener to send it back to: discard it' }
end
found = check_types({ m.listener })
if found then
  return { 'refused', found }
end
append(m.listener, m.event or '', m.emit or '', m.at or '', m.payload or '', '0', '')
redis.call('XDEL', dead_key, id)
return { 'ok', 1 }
"#;

/// `ARGV`: prefix. Returns `{'ok', waiting, leased, dead}`.
const LUA_COUNTS: &str = r#"
local lease = tonumber(redis.call('GET', prefix .. ':lease') or '30000') or 30000
local waiting = redis.call('ZCARD', delayed_key)
local leased = 0
for _, listener in ipairs(redis.call('SMEMBERS', listeners_key)) do
  local key = listener_key(listener)
  local length = redis.call('XLEN', key)
  local live = 0
  local summary = redis.pcall('XPENDING', key, listener)
  if type(summary) == 'table' and not summary.err then
    local pending = tonumber(summary[1]) or 0
    if pending > 0 then
      local expired = redis.call('XPENDING', key, listener, 'IDLE', lease, '-', '+', pending)
      live = pending - #expired
    end
  end
  leased = leased + live
  waiting = waiting + length - live
end
return { 'ok', waiting, leased, redis.call('XLEN', dead_key) }
"#;

/// `ARGV`: prefix. Returns `{'ok', ms until the next delayed delivery is due, or -1}`.
const LUA_NEXT_DUE: &str = r#"
local first = redis.call('ZRANGE', delayed_key, 0, 0, 'WITHSCORES')
if #first == 0 then
  return { 'ok', -1 }
end
local wait = tonumber(first[2]) - now_ms()
if wait < 0 then
  wait = 0
end
return { 'ok', wait }
"#;
