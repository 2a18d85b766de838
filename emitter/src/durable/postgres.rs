//! [`PostgresStore`]: durable deliveries in PostgreSQL, shared by any number of processes on any
//! number of machines.
//!
//! # What it stores where
//!
//! Five objects in one schema of the database (default `emitter`; see
//! [`PostgresConfig::schema`]), created by [`Store::open`] (or [`PostgresStore::migrate`]) when
//! missing:
//!
//! ```sql
//! -- Schema version 1.
//! CREATE TABLE emitter.schema_version (
//!     version    integer PRIMARY KEY,               -- one row per migration applied
//!     applied_at timestamptz NOT NULL DEFAULT now()
//! );
//! CREATE TABLE emitter.deliveries (
//!     id          bigserial PRIMARY KEY,  -- kept as the dead letter's id, and back on replay
//!     event_id    text NOT NULL,
//!     emit_id     uuid NOT NULL,          -- the EmitId's 128 bits
//!     emitted_at  timestamptz NOT NULL,   -- to the millisecond
//!     payload     bytea NOT NULL,         -- the event as JSON, byte for byte
//!     listener    text NOT NULL,
//!     attempt     integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),  -- claims so far
//!     run_at      timestamptz NOT NULL,   -- due at; while leased: when the lease expires
//!     lease       bigint,                 -- the token of the last claim; NULL when released
//!     lease_until timestamptz,            -- when that claim expires; NULL when released
//!     worker      text,                   -- who claimed it last (for inspection)
//!     last_error  text                    -- the last failure, kept across retries
//! );
//! CREATE INDEX deliveries_due ON emitter.deliveries (run_at, id);
//! CREATE SEQUENCE emitter.leases;         -- lease tokens
//! CREATE TABLE emitter.dead_letters (
//!     id, event_id, emit_id, emitted_at, payload, listener,  -- as above
//!     attempts integer NOT NULL, reason text NOT NULL, failed_at timestamptz NOT NULL
//! );
//! CREATE TABLE emitter.idempotency_keys (key text PRIMARY KEY, expires_at timestamptz NOT NULL);
//! ```
//!
//! A claim is one statement: it picks due deliveries with `FOR UPDATE SKIP LOCKED` (concurrent
//! claimers skip each other's rows instead of waiting for them, and never get the same one),
//! counts the attempt, and sets `lease_until` *and* `run_at` to the lease's expiry, so that
//! "due, and not leased or lease expired" is the range `run_at <= now()` of the `deliveries_due`
//! index whatever the number of running deliveries. An insert is one statement too: the emits
//! go in as arrays (`unnest`), their idempotency keys are claimed with `INSERT ... ON CONFLICT`
//! in the same statement, and `pg_notify` wakes the workers when it commits.
//!
//! The version is in `schema_version`. [`Store::open`] creates or migrates the schema in one
//! transaction under `pg_advisory_xact_lock`, so that workers starting together do not race; a
//! schema of a newer version of this store is refused with an error rather than misread.
//!
//! # Clocks
//!
//! Due times and leases are the **database's clock** (`now()`), so that workers on several
//! machines agree on who holds a lease however their own clocks drift. A time the engine gives
//! (an emit's `run_at`, a retry's) is read as an offset from the worker's clock at the call and
//! applied to the database's: "in 5 seconds" means 5 seconds on the database's clock. Only the
//! recorded `emitted_at` is the emitting process's clock.
//!
//! # Durability
//!
//! What a call returned `Ok` for is committed: it survives the server's restart or crash, as far
//! as the server's own settings (`fsync`, `synchronous_commit`, replication) promise. Each method
//! is one statement, atomic on its own; a batch of emits is stored whole or not at all.
//!
//! # Wake-ups
//!
//! Inserts and replays `NOTIFY` the channel `<schema>_deliveries` when they commit.
//! [`Store::wait_for_work`] listens on it over a connection of its own (reconnecting, with a
//! backoff, whenever that connection drops), so a worker hears about new work from any process
//! at once instead of at its next poll.
//!
//! # Transactional emits
//!
//! [`PostgresStore::insert_in`] stores emits on the caller's connection or transaction, so that
//! they exist if and only if the caller's transaction commits: the outbox pattern, without an
//! outbox.
//!
//! # Connections
//!
//! A small pool of connections (default 4, [`PostgresConfig::pool_size`]) serves the methods;
//! a connection that broke is dropped and replaced on a later call, so the store comes back by
//! itself when the server does. (A pooled connection found dead at its next use, its server
//! restarted meanwhile, is not an error: the statement, which cannot have run, runs once more
//! on a new connection.) While the server is unreachable every method fails with an error that
//! says so and names the server's `host:port` (never the password); a call that gets no answer
//! within [`PostgresConfig::operation_timeout`] fails too. TLS is through rustls ([`Tls`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use emitter::durable::postgres::{PostgresConfig, PostgresStore, Tls};
//! use emitter::durable::Durable;
//! use emitter::Emitter;
//!
//! let store = PostgresStore::connect("postgres://app:secret@db.internal/app").await?;
//! // Or, with options:
//! let store = PostgresConfig::new("postgres://app:secret@db.internal/app")
//!     .schema("events")
//!     .tls(Tls::Require)
//!     .pool_size(8)
//!     .connect()
//!     .await?;
//! let emitter = Emitter::builder().backend(Durable::new(store)).start().await?;
//! # emitter.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, GenericClient, NoTls, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    from_unix_millis, unix_millis, Claimed, Counts, DeadLetter, Inserted, NewEmit, Receipt, Setup,
    Store, StoredEvent,
};
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// The `tokio-postgres` this store is built on, for [`PostgresStore::insert_in`]'s clients.
pub use tokio_postgres;

/// The schema version this code creates and understands.
const SCHEMA_VERSION: i32 = 1;
/// The default schema.
const DEFAULT_SCHEMA: &str = "emitter";
/// The longest schema name: the notification channel `<schema>_deliveries` must fit in
/// PostgreSQL's 63-byte identifiers.
const MAX_SCHEMA_LEN: usize = 48;
/// Idempotency keys are kept this long until [`Store::open`] says otherwise (the engine's
/// default).
const DEFAULT_KEY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The first key of the advisory lock that serializes migrations ("emit" in ASCII); the second
/// is a hash of the schema name.
const MIGRATION_LOCK: i32 = 0x656d_6974;
/// How often expired idempotency keys are deleted, at most.
const KEY_PURGE_EVERY_MS: i64 = 60_000;
/// How many expired keys one purge deletes, at most (more wait for the next one).
const KEY_PURGE_BATCH: i64 = 10_000;
/// Offsets from now are clamped to this many milliseconds (about 300 years), within what
/// PostgreSQL's `timestamptz` and `interval` hold.
const MAX_OFFSET_MS: i64 = 10_000_000_000_000;
/// The longest wait between two attempts of the notification listener to reconnect.
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How the store secures its connections. The default follows the URL's `sslmode`:
/// `require` means [`Tls::Require`], anything else [`Tls::Disable`].
///
/// Certificates are always verified (there is no "encrypt but trust anyone" mode): against the
/// Mozilla roots that `webpki-roots` ships, or against a CA file of your own for servers with
/// private certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// Plain TCP: for a server on the same host or a private network.
    Disable,
    /// TLS, required, with the server's certificate verified against the Mozilla roots
    /// (`webpki-roots`): for managed databases with public certificates.
    Require,
    /// TLS, required, with the server's certificate verified against the certificates of this
    /// PEM file (a private CA, or the server's own self-signed certificate).
    CaFile(PathBuf),
}

/// How to reach PostgreSQL and lay out the store: a builder for [`PostgresStore`].
///
/// ```no_run
/// # async fn run() -> Result<(), emitter::BackendError> {
/// use std::time::Duration;
/// use emitter::durable::postgres::{PostgresConfig, Tls};
///
/// let store = PostgresConfig::new("postgres://app:secret@db.internal:5432/app")
///     .schema("billing_events")
///     .tls(Tls::CaFile("/etc/ssl/db-ca.pem".into()))
///     .pool_size(8)
///     .operation_timeout(Duration::from_secs(10))
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// Its `Debug` output shows where it connects, never the password.
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    /// The schema holding the store's tables (default `emitter`).
    schema: String,
    /// How connections are secured (default: from the URL's `sslmode`).
    tls: Option<Tls>,
    /// How many connections serve the methods (default 4).
    pool_size: usize,
    /// How long one method may wait for the server (default 30 s).
    operation_timeout: Duration,
    /// How long idempotency keys are kept until `open` says otherwise (default 7 days).
    key_retention: Duration,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.url.parse::<tokio_postgres::Config>() {
            Ok(config) => describe_target(&config),
            Err(_) => "<an invalid URL, not shown>".to_owned(),
        };
        f.debug_struct("PostgresConfig")
            .field("server", &target)
            .field("schema", &self.schema)
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .field("operation_timeout", &self.operation_timeout)
            .field("key_retention", &self.key_retention)
            .finish()
    }
}

impl PostgresConfig {
    /// A configuration for the server at `url`, a libpq connection string: a URL such as
    /// `postgres://user:password@host:5432/database?sslmode=require`, or key-value pairs such as
    /// `host=localhost user=app dbname=app`. The URL is read by [`PostgresConfig::connect`].
    ///
    /// When the URL sets no `connect_timeout`, connecting gives up after 10 seconds.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            tls: None,
            pool_size: 4,
            operation_timeout: Duration::from_secs(30),
            key_retention: DEFAULT_KEY_RETENTION,
        }
    }

    /// The schema that holds the store's tables (default `emitter`): lower-case ASCII letters,
    /// digits and `_`, not starting with a digit, at most 48 characters. Stores in different
    /// schemas of one database are independent.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// How connections are secured (default: [`Tls::Require`] when the URL says
    /// `sslmode=require`, else [`Tls::Disable`]).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How many connections serve the store's methods (default 4, at least 1). Calls beyond that
    /// wait for a connection. [`Store::wait_for_work`] uses one more, of its own.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long one method may wait for a connection and the server's answer (default 30 s);
    /// after that it fails, and the connection it used is closed. A server that hangs (a network
    /// partition, say) then fails calls instead of stalling the workers.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How long idempotency keys are kept until [`Store::open`] sets it from the engine's
    /// configuration (default 7 days). For a store used without the engine.
    pub fn key_retention(mut self, retention: Duration) -> Self {
        self.key_retention = retention;
        self
    }

    /// Checks the configuration, connects to the server once to see that it answers, and
    /// returns the store. The schema is created or migrated by [`Store::open`] (the engine calls
    /// it when the emitter starts) or [`PostgresStore::migrate`].
    ///
    /// # Errors
    ///
    /// When the URL cannot be read, the schema name is invalid, the CA file cannot be read, or
    /// the server cannot be reached or refuses the connection.
    pub async fn connect(self) -> Result<PostgresStore, BackendError> {
        let secrets = secrets_of(&self.url);
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|error| {
            BackendError::new(scrub(
                &format!("invalid PostgreSQL URL: {}", chain(&error)),
                &secrets,
            ))
        })?;
        validate_schema(&self.schema)?;
        let tls = match self.tls.clone() {
            Some(tls) => tls,
            None if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require => {
                Tls::Require
            }
            None => Tls::Disable,
        };
        let connector = match &tls {
            Tls::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Connector::Plain
            }
            Tls::Require | Tls::CaFile(_) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Connector::Rustls(rustls_connector(&tls)?)
            }
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 3600) {
            // libpq's default of two hours would leave the wake-up connection dead for that long
            // after a network partition.
            config.keepalives_idle(Duration::from_secs(60));
        }
        let mut secrets = secrets;
        if let Some(password) = config.get_password() {
            secrets.push(String::from_utf8_lossy(password).into_owned());
        }
        secrets.retain(|secret| secret.len() >= 4);
        let connect = Connect {
            address: describe_address(&config).into(),
            config,
            connector,
            secrets: Arc::new(secrets),
        };
        let schema = self.schema;
        let inner = Inner {
            sql: Sql::new(&schema),
            channel: channel_of(&schema),
            schema,
            pool: Pool::new(connect.clone(), self.pool_size),
            connect,
            timeout: self.operation_timeout,
            key_retention_ms: AtomicI64::new(duration_ms(self.key_retention)),
            next_key_purge: AtomicI64::new(0),
            work: Arc::new(Notify::new()),
            listener: Mutex::new(None),
        };
        let store = PostgresStore {
            inner: Arc::new(inner),
        };
        // One connection now, so that a wrong address or password fails here, not at start.
        store
            .attempt("connect", async {
                let mut pooled = store.inner.pool.get().await?;
                pooled.done(&Ok(()), true);
                Ok(())
            })
            .await?;
        Ok(store)
    }
}

/// A [`Store`] in PostgreSQL: see the [module documentation](self) for the schema, the clocks,
/// the durability it promises and how workers are woken.
///
/// Cheap to clone: clones share the connections. Keep a clone for
/// [`PostgresStore::insert_in`] while the engine owns another.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.inner.connect.address)
            .field("schema", &self.inner.schema)
            .field("pool_size", &self.inner.pool.size)
            .finish_non_exhaustive()
    }
}

struct Inner {
    schema: String,
    /// The notification channel of inserts: `<schema>_deliveries`.
    channel: String,
    sql: Sql,
    connect: Connect,
    pool: Pool,
    timeout: Duration,
    key_retention_ms: AtomicI64,
    /// When expired keys are next deleted (milliseconds on this process's clock).
    next_key_purge: AtomicI64,
    /// Woken by notifications on the channel.
    work: Arc<Notify>,
    /// The task that listens for notifications, once started.
    listener: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = listener.take() {
            task.abort();
        }
    }
}

impl PostgresStore {
    /// Connects to the server at `url` with the default configuration (schema `emitter`, TLS
    /// from the URL's `sslmode`, 4 connections): [`PostgresConfig::new`]`(url).connect()`.
    ///
    /// # Errors
    ///
    /// As [`PostgresConfig::connect`].
    pub async fn connect(url: &str) -> Result<PostgresStore, BackendError> {
        PostgresConfig::new(url).connect().await
    }

    /// The schema that holds the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Creates the schema and its tables if missing, or migrates them to this version, in one
    /// transaction that holds an advisory lock, so that processes starting together do not
    /// race. [`Store::open`] does this; call it yourself to migrate at deploy time.
    ///
    /// # Errors
    ///
    /// When the server is unreachable, the user may not create the schema, or the schema holds
    /// a newer version of the store (or a damaged version table).
    pub async fn migrate(&self) -> Result<(), BackendError> {
        let inner = &self.inner;
        let version = self
            .attempt("create or migrate the schema", async {
                let mut retried = false;
                loop {
                    let mut pooled = inner.pool.get().await?;
                    let result = migrate(pooled.conn()?, &inner.schema).await;
                    if pooled.done(&result, retried) {
                        retried = true;
                        continue;
                    }
                    return result;
                }
            })
            .await?;
        match version {
            Ok(_) => Ok(()),
            Err(Migration::Newer(found)) => Err(BackendError::new(format!(
                "the schema `{}` of the PostgreSQL database at {} is at version {found} of the \
                 emitter store, newer than this emitter understands (version {SCHEMA_VERSION}): \
                 upgrade emitter in this program, or give it another schema",
                inner.schema, inner.connect.address
            ))),
            Err(Migration::Empty) => Err(BackendError::new(format!(
                "the schema `{}` of the PostgreSQL database at {} has an empty \
                 `schema_version` table, so its version is unknown: the schema is damaged; \
                 restore the table's rows, or give this store another schema",
                inner.schema, inner.connect.address
            ))),
        }
    }

    /// Stores emits on `client`, the caller's connection or transaction: the same statement as
    /// [`Store::insert`], run in the caller's transaction, so that the emits are stored if and
    /// only if it commits (workers are notified at the commit). Keys are deduplicated as by
    /// `insert`; the schema must exist (see [`PostgresStore::migrate`]).
    ///
    /// ```no_run
    /// # async fn run(store: emitter::durable::postgres::PostgresStore,
    /// #     emits: Vec<emitter::durable::NewEmit>) -> Result<(), Box<dyn std::error::Error>> {
    /// use emitter::durable::postgres::tokio_postgres;
    ///
    /// let (mut client, connection) =
    ///     tokio_postgres::connect("postgres://app@localhost/app", tokio_postgres::NoTls).await?;
    /// tokio::spawn(connection);
    /// let transaction = client.transaction().await?;
    /// transaction.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
    /// store.insert_in(&transaction, &emits).await?;
    /// transaction.commit().await?; // the emits exist from here on, and workers are woken
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the statement fails: the connection broke, the schema is missing, or the caller's
    /// transaction is aborted (then nothing was stored).
    pub async fn insert_in(
        &self,
        client: &(impl GenericClient + Sync),
        emits: &[NewEmit],
    ) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let batch = InsertBatch::new(emits, self.key_retention_ms());
        let params = batch.typed_params();
        let rows = client
            .query_typed(&self.inner.sql.insert, &params)
            .await
            .map_err(|error| {
                describe_failure(
                    "could not store emits on the given connection",
                    None,
                    &self.inner.connect.secrets,
                    &Failure::Db(error),
                )
            })?;
        self.inserted(emits.len(), &rows)
    }

    fn key_retention_ms(&self) -> i64 {
        self.inner.key_retention_ms.load(Ordering::Relaxed)
    }

    fn inserted(&self, emits: usize, rows: &[Row]) -> Result<Inserted, BackendError> {
        let stored: i64 = rows
            .first()
            .and_then(|row| row.try_get(0).ok())
            .ok_or_else(|| {
                self.corrupt("the insert statement returned no count of stored emits")
            })?;
        let stored = usize::try_from(stored)
            .ok()
            .filter(|stored| *stored <= emits)
            .ok_or_else(|| {
                self.corrupt(&format!(
                    "the insert statement counted {stored} stored emits out of {emits}"
                ))
            })?;
        Ok(Inserted {
            stored,
            duplicates: emits - stored,
        })
    }

    fn corrupt(&self, what: &str) -> BackendError {
        BackendError::new(format!(
            "the emitter store in schema `{}` of the PostgreSQL database at {} holds data it \
             cannot read: {what}",
            self.inner.schema, self.inner.connect.address
        ))
    }

    /// Runs `work` within the operation timeout, turning its failure into an error that says
    /// what `op` was doing.
    async fn attempt<T>(
        &self,
        op: &str,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, BackendError> {
        let inner = &self.inner;
        let result = match tokio::time::timeout(inner.timeout, work).await {
            Ok(result) => result,
            // The pooled connection was dropped mid-statement, and closed (see `Pooled::drop`).
            Err(_) => Err(Failure::Timeout(inner.timeout)),
        };
        result.map_err(|failure| {
            describe_failure(
                &format!("could not {op}"),
                Some(&inner.connect.address),
                &inner.connect.secrets,
                &failure,
            )
        })
    }

    /// Runs the prepared statement `query` with `params` on a pooled connection.
    async fn run(
        &self,
        op: &str,
        query: Query,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, BackendError> {
        self.attempt(op, async {
            let mut retried = false;
            loop {
                let mut pooled = self.inner.pool.get().await?;
                let conn = pooled.conn()?;
                let result = match conn.prepare(query, &self.inner.sql).await {
                    Ok(statement) => conn
                        .client
                        .query(&statement, params)
                        .await
                        .map_err(Failure::Db),
                    Err(failure) => Err(failure),
                };
                if pooled.done(&result, retried) {
                    retried = true;
                    continue;
                }
                return result;
            }
        })
        .await
    }

    /// Starts the task that listens for notifications, unless it runs.
    fn ensure_listening(&self) {
        let mut listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if listener.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let task = runtime.spawn(listen(
            self.inner.connect.clone(),
            self.inner.channel.clone(),
            Arc::clone(&self.inner.work),
        ));
        *listener = Some(task.abort_handle());
    }

    /// Deletes expired idempotency keys, at most once a minute per process.
    async fn purge_keys(&self) {
        let now = unix_millis(SystemTime::now());
        let next = self.inner.next_key_purge.load(Ordering::Relaxed);
        if now < next
            || self
                .inner
                .next_key_purge
                .compare_exchange(
                    next,
                    now + KEY_PURGE_EVERY_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        if let Err(error) = self
            .run(
                "delete expired idempotency keys",
                Query::PurgeKeys,
                &[&KEY_PURGE_BATCH],
            )
            .await
        {
            tracing::debug!("{error}");
        }
    }
}

enum Migration {
    Newer(i32),
    Empty,
}

/// Creates or migrates the schema in one transaction, under the advisory lock; returns the
/// version found, or why the schema cannot be used.
async fn migrate(conn: &mut Conn, schema: &str) -> Result<Result<i32, Migration>, Failure> {
    let transaction = conn.client.transaction().await.map_err(Failure::Db)?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1::int4, hashtext($2::text))",
            &[&MIGRATION_LOCK, &schema],
        )
        .await
        .map_err(Failure::Db)?;
    let exists: bool = transaction
        .query_one(
            "SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL",
            &[&schema],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(Failure::Db)?;
    let found = if exists {
        let version: Option<i32> = transaction
            .query_one(
                &format!(
                    "SELECT max(version) FROM {}",
                    table(schema, "schema_version")
                ),
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(Failure::Db)?;
        match version {
            Some(version) => version,
            None => return Ok(Err(Migration::Empty)),
        }
    } else {
        0
    };
    if found > SCHEMA_VERSION {
        return Ok(Err(Migration::Newer(found)));
    }
    if found < 1 {
        transaction
            .batch_execute(&schema_v1(schema))
            .await
            .map_err(Failure::Db)?;
    }
    transaction.commit().await.map_err(Failure::Db)?;
    Ok(Ok(found))
}

impl Store for PostgresStore {
    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        self.inner
            .key_retention_ms
            .store(duration_ms(setup.key_retention), Ordering::Relaxed);
        self.migrate().await?;
        self.ensure_listening();
        Ok(())
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let batch = InsertBatch::new(emits, self.key_retention_ms());
        let params = batch.params();
        let rows = self.run("store emits", Query::Insert, &params).await?;
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
        if listeners.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = listeners.to_vec();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = duration_ms(lease);
        let rows = self
            .run(
                "claim deliveries",
                Query::Claim,
                &[&names, &limit, &lease, &text(worker)],
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed.push(self.claimed(row)?);
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
        self.run("extend leases", Query::Extend, &[&ids, &leases, &lease])
            .await?;
        Ok(())
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        let (ids, leases) = parse_receipts(receipts);
        if ids.is_empty() {
            return Ok(());
        }
        self.run("acknowledge deliveries", Query::Ack, &[&ids, &leases])
            .await?;
        Ok(())
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        let Some((id, lease)) = parse_receipt(receipt) else {
            return Ok(());
        };
        let due_in = offset_ms(run_at);
        let error = text(error);
        self.run(
            "release a delivery for a retry",
            Query::Retry,
            &[&id, &lease, &due_in, &error],
        )
        .await?;
        Ok(())
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        let Some((id, lease)) = parse_receipt(receipt) else {
            return Ok(());
        };
        let reason = text(reason);
        self.run(
            "dead-letter a delivery",
            Query::DeadLetter,
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
            .run("list dead letters", Query::DeadLetters, &[&limit])
            .await?;
        rows.iter().map(|row| self.dead(row)).collect()
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let rows = self
            .run("replay a dead letter", Query::Replay, &[&id])
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
            .run("discard a dead letter", Query::Discard, &[&id])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        let rows = self.run("count deliveries", Query::Counts, &[]).await?;
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
        let claimed = Claimed {
            receipt: Receipt {
                id: id.to_string(),
                lease: lease.to_string(),
            },
            listener: self.column(row, Some(id), "listener")?,
            event: self.event(row, id, "delivery")?,
            attempt,
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
        let emit_id = parse_emit_id(&emit_id).ok_or_else(|| {
            self.corrupt(&format!(
                "{kind} {id} has emit_id `{emit_id}`, which is not 128 bits in hex"
            ))
        })?;
        Ok(StoredEvent {
            event_id: self.column(row, Some(id), "event_id")?,
            emit_id,
            emitted_at: self.column(row, Some(id), "emitted_at")?,
            payload: self.column(row, Some(id), "payload")?,
        })
    }

    fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
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

/// The statements of the store, prepared once per connection.
#[derive(Clone, Copy)]
enum Query {
    Insert,
    Claim,
    Extend,
    Ack,
    Retry,
    DeadLetter,
    DeadLetters,
    Replay,
    Discard,
    Counts,
    PurgeKeys,
}

const QUERIES: usize = 11;

/// The statements' text for one schema.
struct Sql {
    insert: String,
    text: [String; QUERIES],
}

impl Sql {
    fn new(schema: &str) -> Self {
        let deliveries = table(schema, "deliveries");
        let dead_letters = table(schema, "dead_letters");
        let keys = table(schema, "idempotency_keys");
        let leases = table(schema, "leases");
        let channel = channel_of(schema);
        let insert = format!(
            "WITH emits AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[],
                                     $5::int8[], $6::text[])
                    WITH ORDINALITY AS e(event_id, emit_id, emitted_at, payload, due_in, key, n)
            ),
            first_keys AS (
                SELECT DISTINCT ON (key) key, n FROM emits WHERE key IS NOT NULL ORDER BY key, n
            ),
            new_keys AS (
                INSERT INTO {keys} AS old (key, expires_at)
                SELECT key, now() + $9::int8 * interval '1 millisecond' FROM first_keys
                ORDER BY key
                ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
                    WHERE old.expires_at <= now()
                RETURNING key
            ),
            accepted AS (
                SELECT e.* FROM emits AS e
                WHERE e.key IS NULL
                   OR e.n IN (SELECT f.n FROM first_keys AS f JOIN new_keys USING (key))
            ),
            stored AS (
                INSERT INTO {deliveries} (event_id, emit_id, emitted_at, payload, listener, run_at)
                SELECT a.event_id, a.emit_id::uuid, a.emitted_at, a.payload, l.listener,
                       now() + a.due_in * interval '1 millisecond'
                FROM accepted AS a
                JOIN unnest($7::int8[], $8::text[]) WITH ORDINALITY AS l(n, listener, position)
                    ON l.n = a.n
                ORDER BY l.position
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM accepted) AS stored,
                   (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                                          WHERE EXISTS (SELECT 1 FROM stored)) AS woken) AS woken"
        );
        let event_columns = "event_id, emit_id, emitted_at, payload, listener";
        let text = [
            insert.clone(),
            format!(
                "WITH due AS (
                    SELECT id, run_at FROM {deliveries}
                    WHERE run_at <= now() AND (lease_until IS NULL OR lease_until <= now())
                      AND listener = ANY($1::text[])
                    ORDER BY run_at, id
                    LIMIT $2::int8
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE {deliveries} AS d
                SET attempt = d.attempt + 1,
                    lease = nextval('{leases}'::regclass),
                    worker = $4::text,
                    lease_until = now() + $3::int8 * interval '1 millisecond',
                    run_at = now() + $3::int8 * interval '1 millisecond'
                FROM due
                WHERE d.id = due.id
                RETURNING d.id, d.lease, d.attempt, due.run_at AS due, d.listener, d.event_id,
                          d.emit_id::text AS emit_id, d.emitted_at, d.payload"
            ),
            format!(
                "UPDATE {deliveries} AS d
                SET lease_until = now() + $3::int8 * interval '1 millisecond',
                    run_at = now() + $3::int8 * interval '1 millisecond'
                FROM unnest($1::int8[], $2::int8[]) AS r(id, lease)
                WHERE d.id = r.id AND d.lease = r.lease"
            ),
            format!(
                "DELETE FROM {deliveries} AS d
                USING unnest($1::int8[], $2::int8[]) AS r(id, lease)
                WHERE d.id = r.id AND d.lease = r.lease"
            ),
            format!(
                "UPDATE {deliveries}
                SET lease = NULL, lease_until = NULL,
                    run_at = now() + $3::int8 * interval '1 millisecond', last_error = $4::text
                WHERE id = $1::int8 AND lease = $2::int8"
            ),
            format!(
                "WITH gone AS (
                    DELETE FROM {deliveries} WHERE id = $1::int8 AND lease = $2::int8
                    RETURNING id, {event_columns}, attempt
                )
                INSERT INTO {dead_letters} (id, {event_columns}, attempts, reason, failed_at)
                SELECT id, {event_columns}, attempt, $3::text, now() FROM gone"
            ),
            format!(
                "SELECT id, listener, event_id, emit_id::text AS emit_id, emitted_at, payload,
                        attempts, reason, failed_at
                FROM {dead_letters} ORDER BY failed_at, id LIMIT $1::int8"
            ),
            format!(
                "WITH back AS (
                    DELETE FROM {dead_letters} WHERE id = $1::int8
                    RETURNING id, {event_columns}, reason
                ),
                stored AS (
                    INSERT INTO {deliveries} (id, {event_columns}, attempt, run_at, last_error)
                    SELECT id, {event_columns}, 0, now(), reason FROM back
                    RETURNING id
                )
                SELECT (SELECT count(*) FROM stored) AS replayed,
                       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                                              WHERE EXISTS (SELECT 1 FROM stored)) AS w) AS woken"
            ),
            format!("DELETE FROM {dead_letters} WHERE id = $1::int8 RETURNING id"),
            format!(
                "SELECT count(*) FILTER (WHERE lease_until IS NULL OR lease_until <= now()),
                        count(*) FILTER (WHERE lease_until > now()),
                        (SELECT count(*) FROM {dead_letters})
                FROM {deliveries}"
            ),
            format!(
                "DELETE FROM {keys} WHERE key IN (
                    SELECT key FROM {keys} WHERE expires_at <= now() LIMIT $1::int8
                )"
            ),
        ];
        Sql { insert, text }
    }

    fn get(&self, query: Query) -> &str {
        &self.text[query as usize]
    }
}

/// The statements that create schema version 1, in one batch.
fn schema_v1(schema: &str) -> String {
    let quoted = quote(schema);
    let deliveries = table(schema, "deliveries");
    let dead_letters = table(schema, "dead_letters");
    let keys = table(schema, "idempotency_keys");
    let versions = table(schema, "schema_version");
    let leases = table(schema, "leases");
    format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
        CREATE TABLE {versions} (
            version    integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE {deliveries} (
            id          bigserial PRIMARY KEY,
            event_id    text NOT NULL,
            emit_id     uuid NOT NULL,
            emitted_at  timestamptz NOT NULL,
            payload     bytea NOT NULL,
            listener    text NOT NULL,
            attempt     integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
            run_at      timestamptz NOT NULL,
            lease       bigint,
            lease_until timestamptz,
            worker      text,
            last_error  text
        );
        CREATE INDEX deliveries_due ON {deliveries} (run_at, id);
        CREATE SEQUENCE {leases};
        CREATE TABLE {dead_letters} (
            id         bigint PRIMARY KEY,
            event_id   text NOT NULL,
            emit_id    uuid NOT NULL,
            emitted_at timestamptz NOT NULL,
            payload    bytea NOT NULL,
            listener   text NOT NULL,
            attempts   integer NOT NULL CHECK (attempts >= 0),
            reason     text NOT NULL,
            failed_at  timestamptz NOT NULL
        );
        CREATE INDEX dead_letters_failed ON {dead_letters} (failed_at, id);
        CREATE TABLE {keys} (
            key        text PRIMARY KEY,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX idempotency_keys_expiry ON {keys} (expires_at);
        INSERT INTO {versions} (version) VALUES (1);"
    )
}

/// `"schema".name`: validated names, quoted all the same so that reserved words work.
fn table(schema: &str, name: &str) -> String {
    format!("{}.{name}", quote(schema))
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

fn channel_of(schema: &str) -> String {
    format!("{schema}_deliveries")
}

fn validate_schema(name: &str) -> Result<(), BackendError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_SCHEMA_LEN
        && !name.starts_with("pg_");
    if valid {
        Ok(())
    } else {
        Err(BackendError::new(format!(
            "invalid PostgreSQL schema name {name:?} for the emitter store: use lower-case ASCII \
             letters, digits and `_`, starting with a letter or `_` (not `pg_`), at most \
             {MAX_SCHEMA_LEN} characters"
        )))
    }
}

/// One batch of emits as the arrays of the insert statement.
struct InsertBatch<'a> {
    event_ids: Vec<&'a str>,
    emit_ids: Vec<String>,
    emitted_at: Vec<SystemTime>,
    payloads: Vec<&'a [u8]>,
    due_in: Vec<i64>,
    keys: Vec<Option<String>>,
    listener_emit: Vec<i64>,
    listeners: Vec<&'a str>,
    retention_ms: i64,
}

impl<'a> InsertBatch<'a> {
    fn new(emits: &'a [NewEmit], retention_ms: i64) -> Self {
        let now = unix_millis(SystemTime::now());
        let mut batch = InsertBatch {
            event_ids: Vec::with_capacity(emits.len()),
            emit_ids: Vec::with_capacity(emits.len()),
            emitted_at: Vec::with_capacity(emits.len()),
            payloads: Vec::with_capacity(emits.len()),
            due_in: Vec::with_capacity(emits.len()),
            keys: Vec::with_capacity(emits.len()),
            listener_emit: Vec::new(),
            listeners: Vec::new(),
            retention_ms,
        };
        for (n, emit) in (1_i64..).zip(emits) {
            batch.event_ids.push(&emit.event.event_id);
            batch
                .emit_ids
                .push(format!("{:032x}", emit.event.emit_id.as_u128()));
            // Milliseconds, like every store, so that an event reads back equal whichever
            // store kept it.
            batch
                .emitted_at
                .push(from_unix_millis(unix_millis(emit.event.emitted_at)));
            batch.payloads.push(&emit.event.payload);
            batch.due_in.push(
                unix_millis(emit.run_at)
                    .saturating_sub(now)
                    .clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS),
            );
            batch
                .keys
                .push(emit.key.as_deref().map(|key| text(key).into_owned()));
            for listener in &emit.listeners {
                batch.listener_emit.push(n);
                batch.listeners.push(listener);
            }
        }
        batch
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.event_ids,
            &self.emit_ids,
            &self.emitted_at,
            &self.payloads,
            &self.due_in,
            &self.keys,
            &self.listener_emit,
            &self.listeners,
            &self.retention_ms,
        ]
    }

    fn typed_params(&self) -> [(&(dyn ToSql + Sync), Type); 9] {
        let [a, b, c, d, e, f, g, h, i] = self.params();
        [
            (a, Type::TEXT_ARRAY),
            (b, Type::TEXT_ARRAY),
            (c, Type::TIMESTAMPTZ_ARRAY),
            (d, Type::BYTEA_ARRAY),
            (e, Type::INT8_ARRAY),
            (f, Type::TEXT_ARRAY),
            (g, Type::INT8_ARRAY),
            (h, Type::TEXT_ARRAY),
            (i, Type::INT8),
        ]
    }
}

/// PostgreSQL's text cannot hold NUL characters: they become U+FFFD.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        value.replace('\0', "\u{fffd}").into()
    } else {
        value.into()
    }
}

/// The receipts this store could have issued, as (ids, lease tokens); others match no delivery.
fn parse_receipts(receipts: &[Receipt]) -> (Vec<i64>, Vec<i64>) {
    receipts.iter().filter_map(parse_receipt).unzip()
}

fn parse_receipt(receipt: &Receipt) -> Option<(i64, i64)> {
    Some((receipt.id.parse().ok()?, receipt.lease.parse().ok()?))
}

/// An emit id from PostgreSQL's text of a `uuid` (hex with or without dashes).
fn parse_emit_id(text: &str) -> Option<EmitId> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok().map(EmitId::from_u128)
}

/// Milliseconds from now on this process's clock until `at` (negative when past), clamped.
fn offset_ms(at: SystemTime) -> i64 {
    unix_millis(at)
        .saturating_sub(unix_millis(SystemTime::now()))
        .clamp(-MAX_OFFSET_MS, MAX_OFFSET_MS)
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .min(MAX_OFFSET_MS)
}

/// Why a statement failed, before it is described for the caller.
enum Failure {
    Db(tokio_postgres::Error),
    Timeout(Duration),
    Other(&'static str),
}

/// An error saying what `doing` failed and why: "unreachable" with the server's address for
/// connection problems, the server's message for statements it refused. Secrets never appear.
fn describe_failure(
    doing: &str,
    address: Option<&str>,
    secrets: &[String],
    failure: &Failure,
) -> BackendError {
    let server = match address {
        Some(address) => format!("the PostgreSQL server at {address}"),
        None => "the PostgreSQL server".to_owned(),
    };
    let message = match failure {
        Failure::Timeout(timeout) => format!(
            "{doing}: {server} did not answer within {timeout:?} (the operation timeout); it may \
             be unreachable or overloaded"
        ),
        Failure::Other(what) => format!("{doing}: {what}"),
        Failure::Db(error) => {
            if error
                .to_string()
                .starts_with("error performing TLS handshake")
            {
                format!(
                    "{doing}: the TLS handshake with {server} failed: {}",
                    chain(error)
                )
            } else if is_unreachable(error) {
                format!("{doing}: {server} is unreachable: {}", chain(error))
            } else if let Some(db) = error.as_db_error() {
                let mut message = format!(
                    "{doing}: {server} answered {} {}: {}",
                    db.severity(),
                    db.code().code(),
                    db.message()
                );
                if let Some(detail) = db.detail() {
                    message.push_str(&format!(" (detail: {detail})"));
                }
                if let Some(hint) = db.hint() {
                    message.push_str(&format!(" (hint: {hint})"));
                }
                message
            } else {
                format!("{doing}: talking to {server} failed: {}", chain(error))
            }
        }
    };
    BackendError::new(scrub(&message, secrets))
}

/// Whether the error means the server could not be reached or the connection broke.
fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
    }
    if error.is_closed() {
        return true;
    }
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    let text = error.to_string();
    text.starts_with("error connecting to server")
        || text.starts_with("timeout waiting for server")
        || text.starts_with("error communicating with the server")
}

/// An error and its causes, `: `-separated.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The password of a connection string, as written and percent-decoded, found without the
/// parser (which may be what failed): error messages are scrubbed of them.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"));
    if let Some(rest) = rest {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password.to_owned());
                secrets.push(percent_decode(password));
            }
        }
        if let Some((_, query)) = rest.split_once('?') {
            for pair in query.split('&') {
                if let Some(password) = pair.strip_prefix("password=") {
                    secrets.push(password.to_owned());
                    secrets.push(percent_decode(password));
                }
            }
        }
    } else {
        let mut words = url.split_whitespace();
        while let Some(word) = words.next() {
            if let Some(value) = word.strip_prefix("password") {
                let value = value.trim_start_matches([' ', '=']);
                let value = if value.is_empty() {
                    words.next().unwrap_or("").trim_start_matches('=')
                } else {
                    value
                };
                secrets.push(value.trim_matches('\'').to_owned());
            }
        }
    }
    secrets.retain(|secret| secret.len() >= 4);
    secrets
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn scrub(message: &str, secrets: &[String]) -> String {
    let mut message = message.to_owned();
    for secret in secrets {
        if !secret.is_empty() {
            message = message.replace(secret.as_str(), "<password>");
        }
    }
    message
}

/// `host:port` of each host, `,`-separated.
fn describe_address(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port = |index: usize| -> u16 {
        ports
            .get(index)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432)
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| match host {
            Host::Tcp(name) => format!("{name}:{}", port(index)),
            #[cfg(unix)]
            Host::Unix(path) => format!("{}/.s.PGSQL.{}", path.display(), port(index)),
        })
        .collect();
    if hosts.is_empty() {
        format!("localhost:{}", port(0))
    } else {
        hosts.join(",")
    }
}

/// `user@host:port/database`, for `Debug`.
fn describe_target(config: &tokio_postgres::Config) -> String {
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or(""),
        describe_address(config),
        config.get_dbname().unwrap_or("")
    )
}

/// A rustls connector trusting the roots `tls` names.
fn rustls_connector(tls: &Tls) -> Result<MakeRustlsConnect, BackendError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    match tls {
        Tls::Disable | Tls::Require => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Tls::CaFile(path) => {
            let unreadable = |error: &dyn fmt::Display| {
                BackendError::new(format!(
                    "cannot read the CA file {} for PostgreSQL's TLS: {error}",
                    path.display()
                ))
            };
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|error| unreadable(&error))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| unreadable(&error))?;
            if certificates.is_empty() {
                return Err(unreadable(
                    &"it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                ));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| unreadable(&error))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| BackendError::new(format!("cannot set up TLS for PostgreSQL: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[derive(Clone)]
enum Connector {
    Plain,
    Rustls(MakeRustlsConnect),
}

/// How to open a connection.
#[derive(Clone)]
struct Connect {
    config: tokio_postgres::Config,
    connector: Connector,
    /// `host:port`, for errors.
    address: Arc<str>,
    /// The password, scrubbed from errors.
    secrets: Arc<Vec<String>>,
}

impl Connect {
    /// Opens a connection, driven by a task of its own that ends when the client is dropped or
    /// the connection breaks; notifications wake `work`.
    async fn client(
        &self,
        work: Option<Arc<Notify>>,
    ) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
        Ok(match &self.connector {
            Connector::Plain => {
                let (client, connection) = self.config.connect(NoTls).await?;
                (client, tokio::spawn(drive(connection, work)))
            }
            Connector::Rustls(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                (client, tokio::spawn(drive(connection, work)))
            }
        })
    }
}

/// Drives a connection until it ends, passing notifications on to `work`.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>, work: Option<Arc<Notify>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(_))) => {
                if let Some(work) = &work {
                    wake(work);
                }
            }
            Some(Ok(AsyncMessage::Notice(notice))) => {
                tracing::debug!("PostgreSQL notice: {}", notice.message());
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::debug!("a PostgreSQL connection of the emitter store ended: {error}");
                return;
            }
            None => return,
        }
    }
}

/// Wakes every waiter, and the next one to come if none waits: a notification between a
/// worker's claim and its wait is not lost.
fn wake(work: &Notify) {
    work.notify_waiters();
    work.notify_one();
}

/// Listens for notifications on `channel` until aborted, reconnecting when the connection drops.
async fn listen(connect: Connect, channel: String, work: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    loop {
        let attempt = async {
            let (client, driver) = connect.client(Some(Arc::clone(&work))).await?;
            client
                .batch_execute(&format!("LISTEN {}", quote(&channel)))
                .await?;
            Ok::<_, tokio_postgres::Error>((client, driver))
        };
        match attempt.await {
            Ok((client, driver)) => {
                if connected_before {
                    // Notifications sent while we were away are lost: look for work now.
                    wake(&work);
                }
                connected_before = true;
                backoff = Duration::from_millis(100);
                // The driver ends when the connection does.
                let _ = driver.await;
                drop(client);
            }
            Err(error) => {
                let error = describe_failure(
                    "could not listen for new deliveries",
                    Some(&connect.address),
                    &connect.secrets,
                    &Failure::Db(error),
                );
                tracing::debug!("{error}; retrying in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
    }
}

/// A connection of the pool, with the statements prepared on it.
struct Conn {
    client: Client,
    statements: [Option<Statement>; QUERIES],
}

impl Conn {
    async fn prepare(&mut self, query: Query, sql: &Sql) -> Result<Statement, Failure> {
        let slot = &mut self.statements[query as usize];
        if let Some(statement) = slot {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .prepare(sql.get(query))
            .await
            .map_err(Failure::Db)?;
        *slot = Some(statement.clone());
        Ok(statement)
    }
}

/// At most `size` connections, opened when needed and dropped when broken.
struct Pool {
    connect: Connect,
    size: usize,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

/// A connection taken from the pool: back to it on drop, unless it broke or was dropped
/// mid-statement.
struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    /// Whether the connection was idle in the pool (rather than opened for this call).
    reused: bool,
    busy: bool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    fn new(connect: Connect, size: usize) -> Self {
        Pool {
            connect,
            size,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
        }
    }

    async fn get(&self) -> Result<Pooled<'_>, Failure> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Other("the connection pool is closed"))?;
        let idle = loop {
            let conn = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match conn {
                Some(conn) if conn.client.is_closed() => continue,
                conn => break conn,
            }
        };
        let reused = idle.is_some();
        let conn = match idle {
            Some(conn) => conn,
            None => Conn {
                client: self.connect.client(None).await.map_err(Failure::Db)?.0,
                statements: Default::default(),
            },
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            reused,
            busy: true,
            _permit: permit,
        })
    }
}

impl Pooled<'_> {
    fn conn(&mut self) -> Result<&mut Conn, Failure> {
        self.conn.as_mut().ok_or(Failure::Other(
            "the connection pool handed out no connection",
        ))
    }

    /// Marks the connection as reusable after `result`; returns whether to run the statement
    /// again on another connection: when this one, reused from the pool, turned out to have
    /// died before the statement reached the server (the server's shutdown message was waiting
    /// on it, or it was closed), which is certain to have left nothing done. Once per call.
    fn done<T>(&mut self, result: &Result<T, Failure>, retried: bool) -> bool {
        self.busy = false;
        let Err(Failure::Db(error)) = result else {
            return false;
        };
        if let Some(conn) = self.conn.as_mut() {
            if error.as_db_error().is_some() {
                // The statement may have failed because the tables it was prepared against were
                // dropped or altered: prepare afresh next time.
                conn.statements = Default::default();
            }
        }
        let died_before = error.is_closed()
            || error.code().is_some_and(|code| {
                *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN
            });
        if !died_before {
            return false;
        }
        // The server restarted or went away: the other idle connections are as dead.
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.reused && !retried
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection dropped mid-statement (a timeout, a cancelled call) is in a state we do
        // not know: close it rather than reuse it.
        if self.busy || conn.client.is_closed() {
            return;
        }
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}

impl super::Durable<PostgresStore> {
    /// Emits `event` inside the caller's transaction (or on the caller's connection): the
    /// deliveries exist if and only if the transaction commits, and workers are woken at the
    /// commit. Use it to emit "order placed" in the transaction that inserts the order, so that
    /// neither can exist without the other.
    ///
    /// The emitter must have been started with this backend (its table says which listeners
    /// the event goes to). Returns the emit's id.
    ///
    /// ```no_run
    /// # use emitter::durable::{postgres::{PostgresStore, tokio_postgres}, Durable};
    /// # use emitter::{EmitOptions, Event};
    /// # #[derive(Event)] pub struct OrderPlaced { pub order: i64 }
    /// # async fn run(backend: Durable<PostgresStore>, client: &mut tokio_postgres::Client)
    /// #     -> Result<(), Box<dyn std::error::Error>> {
    /// let transaction = client.transaction().await?;
    /// transaction.execute("INSERT INTO orders (id) VALUES (42)", &[]).await?;
    /// backend
    ///     .emit_in(&transaction, OrderPlaced { order: 42 }, EmitOptions::new())
    ///     .await?;
    /// transaction.commit().await?; // the order and its event, or neither
    /// # Ok(())
    /// # }
    /// ```
    pub async fn emit_in<E: crate::Event>(
        &self,
        client: &(impl GenericClient + Sync),
        event: E,
        options: crate::EmitOptions,
    ) -> Result<EmitId, crate::EmitError> {
        let emit = self.prepare(&event, options)?;
        let emit_id = emit.event.emit_id;
        self.store()
            .insert_in(client, std::slice::from_ref(&emit))
            .await
            .map_err(|source| crate::EmitError::Backend {
                event_id: E::ID,
                source,
            })?;
        Ok(emit_id)
    }
}
