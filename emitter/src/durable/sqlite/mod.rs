//! [`SqliteStore`]: durable deliveries in one SQLite file, for one process, with no server.
//!
//! Its tables in the file (`sql/schema_v1.sql` then the migrations `sql/migrate_v*.sql`:
//! schema version 6 in `emitter_meta`; older versions are migrated on open), beside any tables of
//! the application's own. A claim is one `UPDATE ... RETURNING` over an index range per listener
//! that is not paused (for a listener with a concurrency limit, its first rows in emit order),
//! or, for a suspect, over the index of leased deliveries and suspects, so its cost does not grow
//! with the backlog; times are the process's clock. The operator's side
//! ([`Admin`](crate::durable::Admin), `admin.rs`) reads the same indexes a page at a time. The
//! file is in WAL mode with `synchronous = NORMAL`: what a call returned `Ok` for survives the
//! process crashing (a power loss may lose the last transactions, never the file). The README's
//! "How each store keeps deliveries" says the rest.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use emitter::durable::{sqlite::SqliteStore, Durable};
//! use emitter::Emitter;
//!
//! let store = SqliteStore::open("events.db")?;
//! let emitter = Emitter::builder().backend(Durable::new(store)).start().await?;
//! # emitter.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod admin;
mod connection;
mod migrations;
mod rows;
#[doc(hidden)]
pub mod statements;
mod store;
#[cfg(test)]
mod tests;
mod transactional;
mod tx;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::durable::{defaults, millis, Limits};
use crate::error::{BackendError, BackendErrorKind};
#[doc(hidden)]
pub use connection::setup_connection;
use migrations::create_schema;
/// The `rusqlite` this store is built on, for [`SqliteTx::with`]'s connection.
pub use rusqlite;
pub use tx::{SqliteTx, TransactionEnded};

/// A [`Store`](crate::durable::Store) in one SQLite file: see the [module documentation](self) for the schema, the
/// durability it promises and its use by one process.
///
/// Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    state: Mutex<State>,
    /// The listeners with a concurrency limit, from [`Setup`](crate::durable::Setup).
    concurrency: Limits,
    key_retention_ms: AtomicU64,
    /// When expired keys are next deleted (Unix milliseconds).
    next_key_purge: AtomicI64,
    work: Notify,
    /// The connection listeners' transactions run on (opened at the first one).
    tx_conn: tx::TxConnection,
}

struct State {
    conn: Connection,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Where the SQLite store's file is, and how long it keeps idempotency keys: a builder for
/// [`SqliteStore`].
///
/// ```no_run
/// # fn run() -> Result<(), emitter::BackendError> {
/// use std::time::Duration;
/// use emitter::durable::sqlite::SqliteConfig;
///
/// let store = SqliteConfig::new("events.db")
///     .key_retention(Duration::from_secs(24 * 3600))
///     .open()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteConfig {
    path: PathBuf,
    /// How long idempotency keys are kept until `open` says otherwise (default 7 days).
    key_retention: Duration,
}

impl SqliteConfig {
    /// A configuration for the SQLite file at `path`, created if missing.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            key_retention: defaults::KEY_RETENTION,
        }
    }

    /// How long idempotency keys are kept until [`Store::open`](crate::durable::Store::open)
    /// sets it from the engine's configuration (default 7 days). For a store used without the
    /// engine.
    pub fn key_retention(mut self, retention: Duration) -> Self {
        self.key_retention = retention;
        self
    }

    /// Opens the store in the file, creating the file and the store's tables if missing.
    ///
    /// Sets the file to WAL mode with `synchronous = NORMAL` (see the module's "Durability") and
    /// waits up to 5 seconds for locks held by other connections. Blocks while it opens the file:
    /// call it before starting the emitter, or on a blocking thread.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or created, is not a SQLite database, holds tables of a
    /// newer version of this store, or holds tables named like the store's without its version.
    pub fn open(self) -> Result<SqliteStore, BackendError> {
        let path = self.path;
        let conn = Connection::open(&path).map_err(|error| {
            BackendError::of(
                BackendErrorKind::Misconfigured,
                format!(
                    "cannot open the SQLite store at {}: {error}",
                    path.display()
                ),
            )
            .caused_by(error)
        })?;
        let mut state = State { conn };
        setup_connection(&path, &mut state.conn)?;
        create_schema(&path, &mut state.conn)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                state: Mutex::new(state),
                concurrency: Limits::default(),
                key_retention_ms: AtomicU64::new(
                    u64::try_from(millis(self.key_retention)).unwrap_or(u64::MAX),
                ),
                next_key_purge: AtomicI64::new(0),
                work: Notify::new(),
                tx_conn: tx::TxConnection::default(),
            }),
        })
    }
}

impl SqliteStore {
    /// Opens the store in the SQLite file at `path` with the default configuration:
    /// [`SqliteConfig::new`]`(path).open()`.
    ///
    /// # Errors
    ///
    /// As [`SqliteConfig::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, BackendError> {
        SqliteConfig::new(path).open()
    }

    /// The path the store was opened at.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `job` with the connection on tokio's blocking pool.
    async fn run<T, F>(&self, job: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Connection) -> Result<T, BackendError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            let mut state = inner.state.lock().unwrap_or_else(|poisoned| {
                // A job panicked while holding the connection. Its transaction was rolled back
                // when the panic dropped it, so the connection is sound; make sure of it.
                inner.state.clear_poison();
                let state = poisoned.into_inner();
                if !state.conn.is_autocommit() {
                    let _ = state.conn.execute_batch("ROLLBACK");
                }
                state
            });
            job(&inner, &mut state.conn)
        });
        match task.await {
            Ok(result) => result,
            Err(error) => Err(BackendError::with_source(
                format!(
                    "a statement on the SQLite store {} panicked or was cancelled",
                    self.inner.path.display()
                ),
                error,
            )),
        }
    }

    /// Wakes workers of this process waiting in [`Store::wait_for_work`](crate::durable::Store::wait_for_work).
    fn wake(&self) {
        self.inner.wake();
    }
}

impl Inner {
    fn wake(&self) {
        self.work.notify_waiters();
        // No waiter right now: leave a permit, so that a worker about to wait claims once more.
        self.work.notify_one();
    }
}
