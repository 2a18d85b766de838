//! [`SqliteStore`]: durable deliveries in one SQLite file, for one process, with no server.
//!
//! # What it stores where
//!
//! Four tables in the file given to [`SqliteStore::open`] (created on first open; other tables
//! of the file are left alone, so the store may share a file with the application's data):
//!
//! ```sql
//! -- Schema version 1.
//! CREATE TABLE emitter_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
//!     -- 'schema_version' = '1'
//! CREATE TABLE emitter_deliveries (
//!     id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused; kept as a dead letter's id
//!     listener    TEXT NOT NULL,
//!     event_id    TEXT NOT NULL,
//!     emit_id     TEXT NOT NULL,     -- 32 hex digits
//!     emitted_at  INTEGER NOT NULL,  -- Unix milliseconds
//!     payload     BLOB NOT NULL,     -- the event as JSON
//!     run_at      INTEGER NOT NULL,  -- due at; while leased: when the lease expires
//!     attempt     INTEGER NOT NULL,  -- claims so far
//!     lease       TEXT,              -- the token of the last claim, NULL when released
//!     worker      TEXT,              -- who claimed it last (for inspection)
//!     last_error  TEXT               -- the last failure, kept across retries
//! ) STRICT;
//! CREATE INDEX emitter_deliveries_due ON emitter_deliveries (listener, run_at);
//! CREATE INDEX emitter_deliveries_leased ON emitter_deliveries (run_at) WHERE lease IS NOT NULL;
//! CREATE TABLE emitter_dead_letters (
//!     id, listener, event_id, emit_id, emitted_at, payload, -- the delivery's, as above
//!     attempts INTEGER NOT NULL, reason TEXT NOT NULL, failed_at INTEGER NOT NULL
//! ) STRICT;
//! CREATE INDEX emitter_dead_letters_failed ON emitter_dead_letters (failed_at);
//! CREATE TABLE emitter_keys (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT, WITHOUT ROWID;
//! CREATE INDEX emitter_keys_expiry ON emitter_keys (expires_at);
//! ```
//!
//! A claim sets `run_at` to the lease's expiry, so "due, and not leased or lease expired" is the
//! single condition `run_at <= now`: one `UPDATE ... RETURNING` reads one range of
//! `emitter_deliveries_due` per listener, stops after `limit` rows, and costs the same with a
//! backlog of a hundred or of a million deliveries. A delivery keeps its id when it is
//! dead-lettered and replayed. Idempotency keys live in `emitter_keys` until they expire
//! ([`Setup::key_retention`](crate::durable::Setup::key_retention), counted from the insert), whether or not their deliveries are done;
//! expired keys are deleted once a minute. Times are the **process's clock** (milliseconds since
//! the Unix epoch).
//!
//! A delivery whose row this store cannot read (an emit id that is not 32 hex digits, an attempt
//! count out of range: someone edited the file) is dead-lettered by the claim that meets it,
//! with what is wrong as the reason, so it never blocks the deliveries behind it; listing the
//! dead letters then fails with an error naming it until it is discarded.
//!
//! The version is in `emitter_meta`, not in `PRAGMA user_version`, which belongs to the
//! application. A file written by a newer version of this store (a higher schema version) is
//! refused with an error rather than misread; a file that is not a SQLite database is refused
//! when it is opened.
//!
//! # Durability
//!
//! The file is in WAL mode with `synchronous = NORMAL`: whatever a call returned `Ok` for
//! survives the process crashing or being killed. A power loss or an operating system crash may
//! lose the last transactions before it (never corrupting the file); that is the guarantee this
//! store makes, and the price of not syncing the disk on every commit.
//!
//! # One process
//!
//! The store is meant for one process: it wakes its own workers when it stores work, and keeps
//! one connection whose statements run one at a time on tokio's blocking pool. Several processes
//! may open the same file (SQLite's locking serializes their writes, waiting up to the busy
//! timeout of 5 seconds) and claims stay exclusive, but a process does not hear about work that
//! another process stored until its poll interval passes. For several processes or machines, use
//! a server store.
//!
//! # Example
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

mod connection;
mod migrations;
mod rows;
#[doc(hidden)]
pub mod statements;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::durable::{defaults, millis};
use crate::error::BackendError;
#[doc(hidden)]
pub use connection::setup_connection;
use migrations::create_schema;

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
    key_retention_ms: AtomicU64,
    /// When expired keys are next deleted (Unix milliseconds).
    next_key_purge: AtomicI64,
    work: Notify,
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

impl SqliteStore {
    /// Opens the store in the SQLite file at `path`, creating the file and the store's tables if
    /// missing.
    ///
    /// Sets the file to WAL mode with `synchronous = NORMAL` (see the module's "Durability") and
    /// waits up to 5 seconds for locks held by other connections. Blocks while it opens the file:
    /// call it before starting the emitter, or on a blocking thread.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or created, is not a SQLite database, holds tables of a
    /// newer version of this store, or holds tables named like the store's without its version.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, BackendError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(|error| {
            BackendError::with_source(
                format!(
                    "cannot open the SQLite store at {}: {error}",
                    path.display()
                ),
                error,
            )
        })?;
        let mut state = State { conn };
        setup_connection(&path, &mut state.conn)?;
        create_schema(&path, &mut state.conn)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                state: Mutex::new(state),
                key_retention_ms: AtomicU64::new(
                    u64::try_from(millis(defaults::KEY_RETENTION)).unwrap_or(u64::MAX),
                ),
                next_key_purge: AtomicI64::new(0),
                work: Notify::new(),
            }),
        })
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
        self.inner.work.notify_waiters();
        // No waiter right now: leave a permit, so that a worker about to wait claims once more.
        self.inner.work.notify_one();
    }
}
