//! [`PostgresStore`]: durable deliveries in PostgreSQL, shared by any number of processes on any
//! number of machines.
//!
//! Its tables in one schema of the database (`sql/schema_v1.sql` then the migrations
//! `sql/migrate_v*.sql`; schema version 6; default schema `emitter`,
//! see [`PostgresConfig`]), created or checked by [`Store::open`](crate::durable::Store::open)
//! or [`PostgresStore::migrate`] under an advisory lock. A claim is one statement with `FOR
//! UPDATE SKIP LOCKED` over the `deliveries_due` index, skipping paused listeners (a listener
//! with a concurrency limit: a statement of its own that locks its first rows in emit order,
//! `deliveries_order`; a suspect: a statement of its own over `deliveries_suspects`); due times
//! and leases are the database's clock; inserts and replays `NOTIFY`, and
//! [`Store::wait_for_work`](crate::durable::Store::wait_for_work) listens on a connection of its
//! own. The operator's side ([`Admin`](crate::durable::Admin), `admin.rs`) reads pages from the
//! same indexes. [`PostgresStore::insert_in`] and
//! [`Durable::emit_in`](crate::durable::Durable::emit_in) store emits in the caller's own
//! transaction. The README's "How each store keeps deliveries" says the rest.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use emitter::durable::postgres::PostgresConfig;
//! use emitter::durable::{Durable, Tls};
//! use emitter::Emitter;
//!
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

mod admin;
mod config;
mod connection;
mod errors;
mod migrations;
mod params;
mod pool;
#[doc(hidden)]
pub mod statements;
mod store;
mod transactional;
mod tx;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{check_schema_version, unix_millis, Inserted};
use crate::durable::Limits;
use crate::error::{BackendError, BackendErrorKind};
use connection::{listen, Connect};
use errors::{describe_failure, Failure};
use migrations::{migrate, SCHEMA_VERSION};
use pool::Pool;
use statements::{Statement, Statements};

pub use super::Tls;
pub use config::PostgresConfig;
/// The `tokio-postgres` this store is built on, for [`PostgresStore::insert_in`]'s clients.
pub use tokio_postgres;
pub use tx::PgTx;

/// How often expired idempotency keys are deleted, at most.
const KEY_PURGE_EVERY_MS: i64 = 60_000;
/// How many expired keys one purge deletes, at most (more wait for the next one).
const KEY_PURGE_BATCH: i64 = 10_000;

/// A [`Store`](crate::durable::Store) in PostgreSQL: see the [module documentation](self) for the schema, the clocks,
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
    sql: Statements,
    connect: Connect,
    pool: Pool,
    timeout: Duration,
    key_retention_ms: AtomicI64,
    /// When expired keys are next deleted (milliseconds on this process's clock).
    next_key_purge: AtomicI64,
    /// Woken by notifications on the channel.
    work: Arc<Notify>,
    /// Whether the listener's `LISTEN` is in place.
    listening: Arc<watch::Sender<bool>>,
    /// The task that listens for notifications, once started.
    listener: Mutex<Option<AbortHandle>>,
    /// The listeners with a concurrency limit, from [`Setup`](crate::durable::Setup).
    concurrency: Limits,
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
    /// race. [`Store::open`](crate::durable::Store::open) does this; call it yourself to migrate at deploy time.
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
                    let result = migrate(pooled.conn()?, &inner.schema, &inner.sql).await;
                    if pooled.done(&result, retried) {
                        retried = true;
                        continue;
                    }
                    return result;
                }
            })
            .await?;
        let store = format!(
            "the schema `{}` of the PostgreSQL database at {}",
            inner.schema, inner.connect.address
        );
        check_schema_version(&store, version.as_deref(), SCHEMA_VERSION).map(|_| ())
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
        BackendError::of(
            BackendErrorKind::Corrupt,
            format!(
                "the emitter store in schema `{}` of the PostgreSQL database at {} holds data it \
             cannot read: {what}",
                self.inner.schema, self.inner.connect.address
            ),
        )
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

    /// Runs `statement`, prepared, with `params` on a pooled connection.
    ///
    /// Its error is [in doubt](BackendError::in_doubt) when the statement may have run all the
    /// same: it was sent, and the connection broke or the operation timeout passed before the
    /// server answered.
    async fn run(
        &self,
        op: &str,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, BackendError> {
        // Whether a statement is sent and unanswered, and whether one's answer was lost.
        let in_flight = AtomicBool::new(false);
        let lost = AtomicBool::new(false);
        let result = self
            .attempt(op, async {
                let mut retried = false;
                loop {
                    let mut pooled = self.inner.pool.get().await?;
                    let conn = pooled.conn()?;
                    let result = match conn.prepare(statement).await {
                        Ok(statement) => {
                            in_flight.store(true, Ordering::Relaxed);
                            let result = conn.client.query(&statement, params).await;
                            in_flight.store(false, Ordering::Relaxed);
                            result.map_err(|error| {
                                // Closed: the connection had died before the statement went out.
                                if error.as_db_error().is_none() && !error.is_closed() {
                                    lost.store(true, Ordering::Relaxed);
                                }
                                Failure::Db(error)
                            })
                        }
                        Err(failure) => Err(failure),
                    };
                    if pooled.done(&result, retried) {
                        retried = true;
                        continue;
                    }
                    return result;
                }
            })
            .await;
        result.map_err(|error| {
            if in_flight.load(Ordering::Relaxed) || lost.load(Ordering::Relaxed) {
                error.in_doubt()
            } else {
                error
            }
        })
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
            Arc::clone(&self.inner.listening),
        ));
        *listener = Some(task.abort_handle());
    }

    /// Waits until the listener's `LISTEN` is in place, for the operation timeout at most: a
    /// worker that claimed before it could miss the notification of the first emits.
    async fn until_listening(&self) {
        let mut listening = self.inner.listening.subscribe();
        let timeout = self.inner.timeout;
        if tokio::time::timeout(timeout, listening.wait_for(|listening| *listening))
            .await
            .is_err()
        {
            tracing::warn!(
                "the PostgreSQL store at {} is not listening for notifications {timeout:?} after \
                 it opened; its workers find new deliveries at their poll interval until it is",
                self.inner.connect.address
            );
        }
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
                &self.inner.sql.purge_keys,
                &[&KEY_PURGE_BATCH],
            )
            .await
        {
            tracing::debug!("{error}");
        }
    }
}
