//! [`RedisStore`]: durable deliveries in Redis Streams, shared by any number of processes.
//!
//! # What it stores where
//!
//! Every key starts with the prefix (default `emitter`; see [`RedisOptions::prefix`]), so one
//! Redis database can hold several independent stores. Schema version 1 ([`Store::open`](crate::durable::Store::open) writes
//! it, and refuses keys of another version, or keys of the wrong type, rather than misread them):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:schema` | string | the schema version, `1` |
//! | `{prefix}:listener:{listener}` | stream | the deliveries addressed to one listener, with one consumer group named after the listener; each worker claims as a consumer named by its worker id |
//! | `{prefix}:listeners` | set | the listeners that have a stream (for [`counts`](crate::durable::Store::counts)) |
//! | `{prefix}:delayed` | sorted set | deliveries due later (delayed emits, retries), scored by their due time in Unix milliseconds |
//! | `{prefix}:dead` | stream | the dead letters, oldest first; an entry's id is the dead letter's id |
//! | `{prefix}:key:{key}` | string | an idempotency key, expiring after the key retention |
//! | `{prefix}:lease` | string | the lease of the last claim, in milliseconds (for [`counts`](crate::durable::Store::counts)) |
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
//!   this process's [`Store::open`](crate::durable::Store::open) skips the script: its `XADD`s (and one `SADD` of the
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
//! [`wait_for_work`](crate::durable::Store::wait_for_work) blocks on `XREAD BLOCK` over the streams of this
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

mod append;
mod connection;
mod entries;
mod options;
mod scripts;
mod store;
mod wait;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use ::redis::aio::ConnectionManager;
use ::redis::{Client, ConnectionAddr, Script, ScriptInvocation, TlsCertificates, Value};
use tokio::sync::Notify;

use crate::durable::{check_schema_version, defaults, Receipt, Secrets};
use crate::error::{BackendError, BackendErrorKind};
use connection::{connection_config, redis_error, validate_prefix};
use entries::{into_array, into_text, Held};
use scripts::Scripts;

pub use options::RedisOptions;

/// The stream of `listener`'s deliveries under `prefix` (the Lua prelude's `listener_key`).
/// Public but hidden from the docs for the benchmarks, whose baseline uses the store's layout.
#[doc(hidden)]
pub fn listener_key(prefix: &str, listener: &str) -> String {
    format!("{prefix}:listener:{listener}")
}

/// The schema version this code writes and reads (`{prefix}:schema`).
const SCHEMA_VERSION: u32 = 1;

/// A [`Store`](crate::durable::Store) in Redis Streams. See the [module documentation](self) for the layout.
///
/// Cheap to share: every call goes through one multiplexed connection that reconnects by itself
/// after the server went away.
pub struct RedisStore {
    connection: ConnectionManager,
    client: Client,
    /// The connection that blocks in `XREAD` for [`Store::wait_for_work`](crate::durable::Store::wait_for_work), made on first use.
    waiter: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Wakes this process's waiters when it stores work, or when the blocking read returned.
    work: Notify,
    address: String,
    options: RedisOptions,
    key_retention_ms: AtomicU64,
    /// The listeners of this process (from [`Store::open`](crate::durable::Store::open)), whose streams a waiter watches.
    watched: Mutex<Vec<String>>,
    /// Where each listener's group was at this worker's last claim.
    delivered: Mutex<HashMap<String, String>>,
    /// The listeners whose stream and group [`Store::open`](crate::durable::Store::open) set up and whose key it found of the
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
            let message = format!("invalid Redis URL or TLS settings: {error}");
            BackendError::of(
                BackendErrorKind::Misconfigured,
                Secrets::of_url(url).scrub(&message),
            )
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
            key_retention_ms: AtomicU64::new(entries::duration_millis(defaults::KEY_RETENTION)),
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
        let kind = match status.as_deref() {
            Some("ok") => return Ok(items.collect()),
            Some("refused") => BackendErrorKind::Conflict,
            Some("corrupt") => BackendErrorKind::Corrupt,
            Some("version") => BackendErrorKind::Conflict,
            _ => return Err(self.unexpected(what, "a reply that is neither `ok` nor a refusal")),
        };
        let detail = items
            .next()
            .map(into_text)
            .transpose()
            .map_err(|problem| self.unexpected(what, &problem))?
            .unwrap_or_default();
        let store = format!(
            "the Redis store at {} (prefix `{}`)",
            self.address, self.options.prefix
        );
        if status.as_deref() == Some("version") {
            check_schema_version(&store, Some(&detail), SCHEMA_VERSION)?;
        }
        Err(BackendError::of(
            kind,
            format!("{store} cannot {what}: {detail}"),
        ))
    }

    async fn command(&self, command: &::redis::Cmd, what: &str) -> Result<Value, BackendError> {
        let mut connection = self.connection.clone();
        command
            .query_async(&mut connection)
            .await
            .map_err(|error| redis_error(&self.address, what, error))
    }

    fn unexpected(&self, what: &str, problem: &str) -> BackendError {
        BackendError::of(
            BackendErrorKind::Other,
            format!(
                "the Redis server at {} gave an unexpected reply to {what}: {problem}",
                self.address
            ),
        )
    }

    fn corrupt(&self, what: &str, problem: &str) -> BackendError {
        BackendError::of(
            BackendErrorKind::Corrupt,
            format!(
                "the Redis store at {} (prefix `{}`) holds corrupt data ({what}): {problem}",
                self.address, self.options.prefix
            ),
        )
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.options.prefix)
    }

    fn listener_key(&self, listener: &str) -> String {
        listener_key(&self.options.prefix, listener)
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
}
