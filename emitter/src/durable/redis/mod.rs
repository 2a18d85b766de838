//! [`RedisStore`]: durable deliveries in Redis Streams, shared by any number of processes.
//!
//! Under a key prefix (default `emitter`, see [`RedisConfig`]): one stream per listener with one
//! consumer group, a sorted set of delayed deliveries, a stream of dead letters, idempotency
//! keys with an expiry, and the schema version. Every operation is one Lua script (`lua/`) or,
//! for a batch of plain emits to listeners `open` or an earlier insert set up, one
//! `MULTI`/`EXEC`; leases are the
//! server's idle times (`XPENDING`/`XCLAIM`), measured by the claimer's lease, and due times
//! the server's clock. An entry delivered more than [`RedisConfig::max_deliveries`] times
//! without an outcome is dead-lettered by the claim. A listener with a concurrency limit keeps a
//! retried entry pending in place (its due time in `{prefix}:held:{listener}`), so that it holds
//! back the entries behind it. The crashes of suspects (claims whose lease ran out) are counted in
//! the hash `{prefix}:crashes`, by receipt id, until their delivery has an outcome. A paused
//! listener (`{prefix}:paused`) is not claimed. The operator's side
//! ([`Admin`](crate::durable::Admin), `admin.rs`, `lua/admin/`) reads the same keys a page at a
//! time, and keeps the workers' heartbeats in `{prefix}:workers` and `{prefix}:worker_info` and
//! the listeners' activity in `{prefix}:activity:{minute}`. Schema version 3 (versions 1 and 2
//! are upgraded in place: each only adds keys and fields; so does the hash of crashes). Needs one
//! Redis 6.2+ server (not Cluster). The README's "How each store keeps deliveries" says the rest.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use emitter::durable::redis::RedisConfig;
//! use emitter::durable::Durable;
//! use emitter::Emitter;
//!
//! // The password, if any, is never logged or shown.
//! let store = RedisConfig::new("redis://:secret@127.0.0.1:6379/0").prefix("shop").connect().await?;
//! let emitter = Emitter::builder().backend(Durable::new(store)).start().await?;
//! # emitter.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod admin;
mod append;
mod config;
mod connection;
mod entries;
mod scripts;
mod store;
mod subscriptions;
mod wait;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use ::redis::aio::ConnectionManager;
use ::redis::{Client, Script, ScriptInvocation, Value};
use tokio::sync::Notify;

use crate::durable::{check_schema_version, Limits, Receipt};
use crate::error::{BackendError, BackendErrorKind};
use connection::redis_error;
use entries::{into_array, into_text, Held};
use scripts::Scripts;

pub use config::RedisConfig;

/// The stream of `listener`'s deliveries under `prefix` (the Lua prelude's `listener_key`).
/// Public but hidden from the docs for the benchmarks, whose baseline uses the store's layout.
#[doc(hidden)]
pub fn listener_key(prefix: &str, listener: &str) -> String {
    format!("{prefix}:listener:{listener}")
}

/// The schema version this code writes and reads (`{prefix}:schema`); versions 1 to 3 are
/// upgraded in place (versions 2 to 4 only add fields and keys; 4 the events' `version`).
const SCHEMA_VERSION: u32 = 4;

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
    config: RedisConfig,
    key_retention_ms: AtomicU64,
    /// The listeners of this process (from [`Store::open`](crate::durable::Store::open)), whose streams a waiter watches.
    watched: Mutex<Vec<String>>,
    /// Where each listener's group was at this worker's last claim.
    delivered: Mutex<HashMap<String, String>>,
    /// The listeners whose stream and group [`Store::open`](crate::durable::Store::open) or the
    /// insert script set up and whose key it found of the right type: an insert that only
    /// appends to these may skip the script (see the module docs). Emptied when such an insert
    /// fails on the server, until the script succeeds again.
    ready: Mutex<HashSet<String>>,
    /// The listeners with a concurrency limit, from [`Setup`](crate::durable::Setup).
    concurrency: Limits,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server at `url` with the default configuration:
    /// [`RedisConfig::new`]`(url).connect()`.
    ///
    /// # Errors
    ///
    /// As [`RedisConfig::connect`].
    pub async fn connect(url: &str) -> Result<RedisStore, BackendError> {
        RedisConfig::new(url).connect().await
    }

    /// The server's address, `host:port` (or a socket path), without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The prefix of the store's keys.
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// An invocation of `script` with the prefix as its first argument, as every script expects.
    fn invocation<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.config.prefix);
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
            self.address, self.config.prefix
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
                self.address, self.config.prefix
            ),
        )
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.config.prefix)
    }

    fn listener_key(&self, listener: &str) -> String {
        listener_key(&self.config.prefix, listener)
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
