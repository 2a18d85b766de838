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
//! ([`Setup::key_retention`], counted from the insert), whether or not their deliveries are done;
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

use std::collections::HashSet;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use rusqlite::config::DbConfig;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use tokio::sync::Notify;

use super::{
    from_unix_millis, unix_millis, Claimed, Counts, DeadLetter, Inserted, NewEmit, Receipt, Setup,
    Store, StoredEvent,
};
use crate::emit_id::EmitId;
use crate::error::BackendError;

/// The schema version this code writes and reads.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often expired idempotency keys are deleted.
const KEY_PURGE_INTERVAL_MS: i64 = 60_000;

/// How many listeners one claim statement names; more are claimed in several statements of one
/// transaction (SQLite limits the terms of a compound `SELECT`).
const LISTENERS_PER_CLAIM: usize = 32;

/// Key retention until [`Store::open`] says otherwise: the engine's default.
const DEFAULT_KEY_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

const SCHEMA: &str = "
CREATE TABLE emitter_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE emitter_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    listener TEXT NOT NULL,
    event_id TEXT NOT NULL,
    emit_id TEXT NOT NULL,
    emitted_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    run_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    lease TEXT,
    worker TEXT,
    last_error TEXT
) STRICT;
CREATE INDEX emitter_deliveries_due ON emitter_deliveries (listener, run_at);
CREATE INDEX emitter_deliveries_leased ON emitter_deliveries (run_at) WHERE lease IS NOT NULL;
CREATE TABLE emitter_dead_letters (
    id INTEGER PRIMARY KEY,
    listener TEXT NOT NULL,
    event_id TEXT NOT NULL,
    emit_id TEXT NOT NULL,
    emitted_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    failed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX emitter_dead_letters_failed ON emitter_dead_letters (failed_at);
CREATE TABLE emitter_keys (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX emitter_keys_expiry ON emitter_keys (expires_at);
";

const TABLES: [&str; 4] = [
    "emitter_deliveries",
    "emitter_dead_letters",
    "emitter_keys",
    "emitter_meta",
];

const INSERT_KEY: &str = "INSERT INTO emitter_keys (key, expires_at) VALUES (?1, ?2)
    ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
    WHERE emitter_keys.expires_at <= ?3";

const INSERT_DELIVERY: &str = "INSERT INTO emitter_deliveries
    (listener, event_id, emit_id, emitted_at, payload, run_at, attempt)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)";

const PURGE_KEYS: &str = "DELETE FROM emitter_keys WHERE expires_at <= ?1";

const EXTEND: &str = "UPDATE emitter_deliveries SET run_at = ?3 WHERE id = ?1 AND lease = ?2";

const ACK: &str = "DELETE FROM emitter_deliveries WHERE id = ?1 AND lease = ?2";

const RETRY: &str = "UPDATE emitter_deliveries
    SET run_at = ?3, last_error = ?4, lease = NULL, worker = NULL
    WHERE id = ?1 AND lease = ?2";

const BURY: &str = "INSERT INTO emitter_dead_letters
    (id, listener, event_id, emit_id, emitted_at, payload, attempts, reason, failed_at)
    SELECT id, listener, event_id, emit_id, emitted_at, payload, attempt, ?3, ?4
    FROM emitter_deliveries WHERE id = ?1 AND (?2 IS NULL OR lease = ?2)";

const DELETE_DELIVERY: &str = "DELETE FROM emitter_deliveries WHERE id = ?1";

const DEAD_LETTERS: &str = "SELECT id, listener, attempts, reason, failed_at,
    event_id, emit_id, emitted_at, payload
    FROM emitter_dead_letters ORDER BY failed_at, id LIMIT ?1";

const REPLAY: &str = "INSERT INTO emitter_deliveries
    (id, listener, event_id, emit_id, emitted_at, payload, run_at, attempt, last_error)
    SELECT id, listener, event_id, emit_id, emitted_at, payload, ?2, 0, reason
    FROM emitter_dead_letters WHERE id = ?1";

const DISCARD: &str = "DELETE FROM emitter_dead_letters WHERE id = ?1";

const COUNT_DELIVERIES: &str = "SELECT COUNT(*) FROM emitter_deliveries";

const COUNT_LEASED: &str =
    "SELECT COUNT(*) FROM emitter_deliveries WHERE lease IS NOT NULL AND run_at > ?1";

const COUNT_DEAD: &str = "SELECT COUNT(*) FROM emitter_dead_letters";

/// A [`Store`] in one SQLite file: see the [module documentation](self) for the schema, the
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
                key_retention_ms: AtomicU64::new(DEFAULT_KEY_RETENTION_MS),
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

    /// Wakes workers of this process waiting in [`Store::wait_for_work`].
    fn wake(&self) {
        self.inner.work.notify_waiters();
        // No waiter right now: leave a permit, so that a worker about to wait claims once more.
        self.inner.work.notify_one();
    }
}

fn setup_connection(path: &Path, conn: &mut Connection) -> Result<(), BackendError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| sql_error(path, "set the busy timeout", error))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|error| sql_error(path, "switch to WAL mode", error))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        tracing::warn!(
            "the SQLite store {} runs in journal mode `{mode}`: its file system does not \
             support WAL, so readers and writers block each other",
            path.display()
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|error| sql_error(path, "set `synchronous = NORMAL`", error))?;
    conn.set_prepared_statement_cache_capacity(64);
    // The bundled SQLite is built with STAT4, under which a statement that compares a bound
    // parameter with an indexed column is prepared again whenever that parameter changes: the
    // claim compares the current time with `run_at`, so it was re-prepared on every call (a
    // tenth of the CPU of a busy store). Its plan, a range of `emitter_deliveries_due`, is the
    // right one whatever the values: keep plans fixed.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|error| sql_error(path, "fix query plans (QPSG)", error))?;
    Ok(())
}

fn create_schema(path: &Path, conn: &mut Connection) -> Result<(), BackendError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|error| sql_error(path, "read the schema", error))?;
    let mut existing = Vec::new();
    for table in TABLES {
        let found: Option<String> = tx
            .query_row(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .optional()
            .map_err(|error| sql_error(path, "read the schema", error))?;
        if found.is_some() {
            existing.push(table);
        }
    }
    if existing.is_empty() {
        tx.execute_batch(SCHEMA)
            .map_err(|error| sql_error(path, "create the schema", error))?;
        tx.execute(
            "INSERT INTO emitter_meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(|error| sql_error(path, "record the schema version", error))?;
    } else {
        if !existing.contains(&"emitter_meta") {
            return Err(BackendError::new(format!(
                "the SQLite file {} has tables named like the emitter store's ({}) but no \
                 `emitter_meta` table with a schema version: it was not created by this store; \
                 use another file",
                path.display(),
                existing.join(", ")
            )));
        }
        let version: Option<String> = tx
            .query_row(
                "SELECT value FROM emitter_meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|error| sql_error(path, "read the schema version", error))?;
        let version = version.ok_or_else(|| {
            BackendError::new(format!(
                "the SQLite store {} has no schema version in `emitter_meta`: the file is \
                 corrupt or was not created by this store",
                path.display()
            ))
        })?;
        let number: i64 = version.trim().parse().map_err(|_| {
            BackendError::new(format!(
                "the SQLite store {} has a corrupt schema version `{version}` in `emitter_meta` \
                 (expected a number)",
                path.display()
            ))
        })?;
        if number > SCHEMA_VERSION {
            return Err(BackendError::new(format!(
                "the SQLite store {} has schema version {number}, newer than version \
                 {SCHEMA_VERSION} that this emitter knows: it was written by a newer emitter; \
                 upgrade emitter to open it",
                path.display()
            )));
        }
        if number < SCHEMA_VERSION {
            // Version 1 is the first: nothing older can exist.
            return Err(BackendError::new(format!(
                "the SQLite store {} has schema version {number}, which no emitter wrote: the \
                 file is corrupt",
                path.display()
            )));
        }
        let missing: Vec<&str> = TABLES
            .iter()
            .copied()
            .filter(|table| !existing.contains(table))
            .collect();
        if !missing.is_empty() {
            return Err(BackendError::new(format!(
                "the SQLite store {} lacks the table(s) {}: the file is corrupt",
                path.display(),
                missing.join(", ")
            )));
        }
    }
    tx.commit()
        .map_err(|error| sql_error(path, "create the schema", error))
}

/// An error of a statement on the store at `path`, saying what failed and, for the common
/// causes, what to do.
fn sql_error(path: &Path, doing: &str, error: rusqlite::Error) -> BackendError {
    let path = path.display();
    let message = match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => format!(
            "cannot {doing}: {path} is not a SQLite database (or it is encrypted): open a new \
             file or an emitter store"
        ),
        Some(ErrorCode::DatabaseCorrupt) => {
            format!("cannot {doing}: the SQLite file {path} is corrupt ({error})")
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "cannot {doing}: the SQLite store {path} stayed locked by another connection for \
             longer than {BUSY_TIMEOUT:?} ({error})"
        ),
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => format!(
            "cannot {doing}: the SQLite store {path} is read-only for this process ({error})"
        ),
        Some(ErrorCode::DiskFull) => {
            format!("cannot {doing}: the disk holding the SQLite store {path} is full")
        }
        Some(ErrorCode::CannotOpen) => {
            format!("cannot {doing}: cannot open the SQLite store {path} ({error})")
        }
        _ => format!("cannot {doing} in the SQLite store {path}: {error}"),
    };
    BackendError::with_source(message, error)
}

fn now_millis() -> i64 {
    unix_millis(SystemTime::now())
}

fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A store id as SQLite's integer, or `None` for text no delivery of this store has as id.
fn parse_id(id: &str) -> Option<i64> {
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// A token unique to one claim, across processes: a random per-process part and a counter.
fn lease_token() -> String {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        hasher.finish()
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{process:016x}{count:016x}")
}

/// The claim statement for `listeners` listeners: the oldest due deliveries of each listener (an
/// index range each, at most `limit`), the oldest `limit` of those, leased in the same statement.
///
/// Parameters: `?1` lease token, `?2` worker, `?3` lease expiry, `?4` now, `?5` limit, `?6`...
/// the listeners. Only placeholder numbers are written into the text.
fn claim_sql(listeners: usize) -> String {
    let mut candidates = String::new();
    for index in 0..listeners {
        if index > 0 {
            candidates.push_str(" UNION ALL ");
        }
        let _ = write!(
            candidates,
            "SELECT id, run_at FROM (SELECT id, run_at FROM emitter_deliveries \
             WHERE listener = ?{} AND run_at <= ?4 ORDER BY run_at, id LIMIT ?5)",
            index + 6
        );
    }
    format!(
        "UPDATE emitter_deliveries SET attempt = attempt + 1, lease = ?1, worker = ?2, run_at = ?3 \
         WHERE id IN (SELECT id FROM ({candidates}) ORDER BY run_at, id LIMIT ?5) \
         RETURNING id, listener, attempt, event_id, emit_id, emitted_at, payload"
    )
}

/// Reads the event stored in the four columns from `first` on: event id, emit id, emitted at,
/// payload. `Err` says what is wrong with them.
fn read_event(row: &Row<'_>, first: usize) -> Result<StoredEvent, String> {
    let event_id = match row.get_ref(first) {
        Ok(ValueRef::Text(text)) => {
            String::from_utf8(text.to_vec()).map_err(|_| "its event id is not UTF-8".to_owned())?
        }
        Ok(other) => return Err(format!("its event id is {:?}, not text", other.data_type())),
        Err(error) => return Err(format!("its event id cannot be read: {error}")),
    };
    let emit_id = match row.get_ref(first + 1) {
        Ok(ValueRef::Text(text)) => parse_emit_id(text)?,
        Ok(other) => return Err(format!("its emit id is {:?}, not text", other.data_type())),
        Err(error) => return Err(format!("its emit id cannot be read: {error}")),
    };
    let emitted_at = match row.get_ref(first + 2) {
        Ok(ValueRef::Integer(millis)) => from_unix_millis(millis),
        Ok(other) => {
            return Err(format!(
                "its emit time is {:?}, not an integer",
                other.data_type()
            ))
        }
        Err(error) => return Err(format!("its emit time cannot be read: {error}")),
    };
    let payload = match row.get_ref(first + 3) {
        Ok(ValueRef::Blob(bytes) | ValueRef::Text(bytes)) => bytes.to_vec(),
        Ok(other) => return Err(format!("its payload is {:?}, not bytes", other.data_type())),
        Err(error) => return Err(format!("its payload cannot be read: {error}")),
    };
    Ok(StoredEvent {
        event_id,
        emit_id,
        emitted_at,
        payload,
    })
}

fn parse_emit_id(text: &[u8]) -> Result<EmitId, String> {
    let shown = String::from_utf8_lossy(text);
    if text.len() != 32 || !text.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "its emit id `{shown}` is not 32 hexadecimal digits"
        ));
    }
    u128::from_str_radix(&shown, 16)
        .map(EmitId::from_u128)
        .map_err(|_| format!("its emit id `{shown}` is not 32 hexadecimal digits"))
}

fn read_text(row: &Row<'_>, index: usize, what: &str) -> Result<String, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Text(text)) => {
            String::from_utf8(text.to_vec()).map_err(|_| format!("its {what} is not UTF-8"))
        }
        Ok(other) => Err(format!("its {what} is {:?}, not text", other.data_type())),
        Err(error) => Err(format!("its {what} cannot be read: {error}")),
    }
}

fn read_count(row: &Row<'_>, index: usize, what: &str) -> Result<u32, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Integer(count)) => u32::try_from(count)
            .map_err(|_| format!("its {what} {count} is out of range (0 to {})", u32::MAX)),
        Ok(other) => Err(format!(
            "its {what} is {:?}, not an integer",
            other.data_type()
        )),
        Err(error) => Err(format!("its {what} cannot be read: {error}")),
    }
}

/// A claimed row, or what is wrong with it.
fn read_claimed(row: &Row<'_>, lease: &str) -> Result<Claimed, String> {
    let id: i64 = row
        .get(0)
        .map_err(|error| format!("its id cannot be read: {error}"))?;
    let listener = read_text(row, 1, "listener")?;
    let attempt = read_count(row, 2, "attempt count")?;
    if attempt == 0 {
        return Err("its attempt count is 0 after a claim".to_owned());
    }
    let event = read_event(row, 3)?;
    Ok(Claimed {
        receipt: Receipt {
            id: id.to_string(),
            lease: lease.to_owned(),
        },
        listener,
        event,
        attempt,
    })
}

fn read_dead_letter(row: &Row<'_>) -> Result<DeadLetter, String> {
    let listener = read_text(row, 1, "listener")?;
    let attempts = read_count(row, 2, "attempt count")?;
    let reason = read_text(row, 3, "reason")?;
    let failed_at = match row.get_ref(4) {
        Ok(ValueRef::Integer(millis)) => from_unix_millis(millis),
        Ok(other) => {
            return Err(format!(
                "its failure time is {:?}, not an integer",
                other.data_type()
            ))
        }
        Err(error) => return Err(format!("its failure time cannot be read: {error}")),
    };
    let event = read_event(row, 5)?;
    Ok(DeadLetter {
        id: String::new(),
        listener,
        event,
        attempts,
        reason,
        failed_at,
    })
}

impl Inner {
    fn key_retention_ms(&self) -> i64 {
        i64::try_from(self.key_retention_ms.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }

    fn insert(&self, conn: &mut Connection, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, "store emits", error);
        let now = now_millis();
        let expires_at = now.saturating_add(self.key_retention_ms());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let mut inserted = Inserted::default();
        {
            let mut keys = tx.prepare_cached(INSERT_KEY).map_err(error)?;
            let mut deliveries = tx.prepare_cached(INSERT_DELIVERY).map_err(error)?;
            for emit in emits {
                if let Some(key) = &emit.key {
                    if keys.execute(params![key, expires_at, now]).map_err(error)? == 0 {
                        inserted.duplicates += 1;
                        continue;
                    }
                }
                let event = &emit.event;
                let emit_id = format!("{:032x}", event.emit_id.as_u128());
                let emitted_at = unix_millis(event.emitted_at);
                let run_at = unix_millis(emit.run_at);
                let mut seen = HashSet::new();
                for listener in &emit.listeners {
                    if !seen.insert(*listener) {
                        continue;
                    }
                    deliveries
                        .execute(params![
                            listener,
                            event.event_id,
                            emit_id,
                            emitted_at,
                            event.payload,
                            run_at
                        ])
                        .map_err(error)?;
                }
                inserted.stored += 1;
            }
            if now >= self.next_key_purge.load(Ordering::Relaxed) {
                tx.prepare_cached(PURGE_KEYS)
                    .and_then(|mut purge| purge.execute([now]))
                    .map_err(|error| sql_error(path, "delete expired idempotency keys", error))?;
                self.next_key_purge
                    .store(now.saturating_add(KEY_PURGE_INTERVAL_MS), Ordering::Relaxed);
            }
        }
        tx.commit().map_err(error)?;
        Ok(inserted)
    }

    fn claim(
        &self,
        conn: &mut Connection,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, "claim deliveries", error);
        let token = lease_token();
        let now = now_millis();
        let until = now.saturating_add(duration_millis(lease));
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let mut claimed = Vec::new();
        let mut corrupt = Vec::new();
        for chunk in listeners.chunks(LISTENERS_PER_CLAIM) {
            let remaining = limit.saturating_sub(claimed.len() + corrupt.len());
            if remaining == 0 {
                break;
            }
            let mut values = vec![
                Value::Text(token.clone()),
                Value::Text(worker.to_owned()),
                Value::Integer(until),
                Value::Integer(now),
                Value::Integer(sql_limit(remaining)),
            ];
            values.extend(chunk.iter().map(|name| Value::Text((*name).to_owned())));
            let mut statement = tx.prepare_cached(&claim_sql(chunk.len())).map_err(error)?;
            let mut rows = statement
                .query(rusqlite::params_from_iter(values))
                .map_err(error)?;
            while let Some(row) = rows.next().map_err(error)? {
                match read_claimed(row, &token) {
                    Ok(claim) => claimed.push(claim),
                    Err(problem) => {
                        let id: i64 = row.get(0).map_err(error)?;
                        corrupt.push((id, problem));
                    }
                }
            }
        }
        // A row this store cannot read would be claimed again and again, blocking the deliveries
        // behind it: dead-letter it with what is wrong instead (`dead_letters` names it).
        for (id, problem) in corrupt {
            tracing::error!(
                "delivery {id} in the SQLite store {} is corrupt and was dead-lettered: {problem}",
                path.display()
            );
            let reason = format!("the SQLite store could not read this delivery: {problem}");
            bury(&tx, id, None, &reason, now).map_err(error)?;
        }
        tx.commit().map_err(error)?;
        claimed.sort_by_key(|claim| parse_id(&claim.receipt.id));
        Ok(claimed)
    }

    /// Runs `statement` once per receipt in one transaction; receipts of no delivery of this
    /// store are skipped. `extra` is bound as `?3`, when given.
    fn per_receipt(
        &self,
        conn: &mut Connection,
        doing: &str,
        statement: &str,
        receipts: &[Receipt],
        extra: Option<i64>,
    ) -> Result<(), BackendError> {
        let path = &self.path;
        let error = |error| sql_error(path, doing, error);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        {
            let mut statement = tx.prepare_cached(statement).map_err(error)?;
            for receipt in receipts {
                let Some(id) = parse_id(&receipt.id) else {
                    continue;
                };
                match extra {
                    Some(extra) => statement.execute(params![id, receipt.lease, extra]),
                    None => statement.execute(params![id, receipt.lease]),
                }
                .map_err(error)?;
            }
        }
        tx.commit().map_err(error)
    }
}

/// Moves delivery `id` to the dead letters, if its lease is `lease` (any lease when `None`).
/// Returns whether it moved.
fn bury(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    lease: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<bool, rusqlite::Error> {
    let moved = tx
        .prepare_cached(BURY)?
        .execute(params![id, lease, reason, now])?;
    if moved > 0 {
        tx.prepare_cached(DELETE_DELIVERY)?.execute([id])?;
    }
    Ok(moved > 0)
}

impl Store for SqliteStore {
    async fn open(&self, setup: &Setup) -> Result<(), BackendError> {
        let retention = u64::try_from(setup.key_retention.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .key_retention_ms
            .store(retention, Ordering::Relaxed);
        // Expired keys go at the first insert.
        self.inner.next_key_purge.store(0, Ordering::Relaxed);
        Ok(())
    }

    async fn insert(&self, emits: &[NewEmit]) -> Result<Inserted, BackendError> {
        if emits.is_empty() {
            return Ok(Inserted::default());
        }
        let emits = emits.to_vec();
        let inserted = self
            .run(move |inner, conn| inner.insert(conn, &emits))
            .await?;
        if inserted.stored > 0 {
            self.wake();
        }
        Ok(inserted)
    }

    async fn claim(
        &self,
        worker: &str,
        listeners: &[&'static str],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, BackendError> {
        let mut unique = HashSet::new();
        let listeners: Vec<&'static str> = listeners
            .iter()
            .copied()
            .filter(|name| unique.insert(*name))
            .collect();
        if listeners.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let worker = worker.to_owned();
        self.run(move |inner, conn| inner.claim(conn, &worker, &listeners, limit, lease))
            .await
    }

    async fn extend(&self, receipts: &[Receipt], lease: Duration) -> Result<(), BackendError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let receipts = receipts.to_vec();
        self.run(move |inner, conn| {
            let until = now_millis().saturating_add(duration_millis(lease));
            inner.per_receipt(conn, "extend leases", EXTEND, &receipts, Some(until))
        })
        .await
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<(), BackendError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let receipts = receipts.to_vec();
        self.run(move |inner, conn| {
            inner.per_receipt(conn, "acknowledge deliveries", ACK, &receipts, None)
        })
        .await
    }

    async fn retry(
        &self,
        receipt: &Receipt,
        run_at: SystemTime,
        error: &str,
    ) -> Result<(), BackendError> {
        let Some(id) = parse_id(&receipt.id) else {
            return Ok(());
        };
        let lease = receipt.lease.clone();
        let failure = error.to_owned();
        let run_at = unix_millis(run_at);
        let retried = self
            .run(move |inner, conn| {
                conn.prepare_cached(RETRY)
                    .and_then(|mut statement| {
                        statement.execute(params![id, lease, run_at, failure])
                    })
                    .map_err(|error| sql_error(&inner.path, "release a delivery to retry", error))
            })
            .await?;
        if retried > 0 {
            self.wake();
        }
        Ok(())
    }

    async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<(), BackendError> {
        let Some(id) = parse_id(&receipt.id) else {
            return Ok(());
        };
        let lease = receipt.lease.clone();
        let reason = reason.to_owned();
        self.run(move |inner, conn| {
            let error = |error| sql_error(&inner.path, "dead-letter a delivery", error);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(error)?;
            bury(&tx, id, Some(&lease), &reason, now_millis()).map_err(error)?;
            tx.commit().map_err(error)
        })
        .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.run(move |inner, conn| {
            let path = &inner.path;
            let error = |error| sql_error(path, "list dead letters", error);
            let mut statement = conn.prepare_cached(DEAD_LETTERS).map_err(error)?;
            let mut rows = statement.query([sql_limit(limit)]).map_err(error)?;
            let mut letters = Vec::new();
            while let Some(row) = rows.next().map_err(error)? {
                let id: i64 = row.get(0).map_err(error)?;
                let mut letter = read_dead_letter(row).map_err(|problem| {
                    BackendError::new(format!(
                        "dead letter {id} in the SQLite store {} is corrupt: {problem}; \
                         discard it (`discard(\"{id}\")`) to list the others",
                        path.display()
                    ))
                })?;
                letter.id = id.to_string();
                letters.push(letter);
            }
            Ok(letters)
        })
        .await
    }

    async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        let Some(id) = parse_id(id) else {
            return Ok(false);
        };
        let replayed = self
            .run(move |inner, conn| {
                let error = |error| sql_error(&inner.path, "replay a dead letter", error);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(error)?;
                let moved = tx
                    .prepare_cached(REPLAY)
                    .and_then(|mut statement| statement.execute(params![id, now_millis()]))
                    .map_err(error)?;
                if moved > 0 {
                    tx.prepare_cached(DISCARD)
                        .and_then(|mut statement| statement.execute([id]))
                        .map_err(error)?;
                }
                tx.commit().map_err(error)?;
                Ok(moved > 0)
            })
            .await?;
        if replayed {
            self.wake();
        }
        Ok(replayed)
    }

    async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        let Some(id) = parse_id(id) else {
            return Ok(false);
        };
        self.run(move |inner, conn| {
            conn.prepare_cached(DISCARD)
                .and_then(|mut statement| statement.execute([id]))
                .map(|deleted| deleted > 0)
                .map_err(|error| sql_error(&inner.path, "discard a dead letter", error))
        })
        .await
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        self.run(|inner, conn| {
            let path = &inner.path;
            let error = |error| sql_error(path, "count deliveries", error);
            let tx = conn.transaction().map_err(error)?;
            let total: i64 = tx
                .prepare_cached(COUNT_DELIVERIES)
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(error)?;
            let leased: i64 = tx
                .prepare_cached(COUNT_LEASED)
                .and_then(|mut statement| statement.query_row([now_millis()], |row| row.get(0)))
                .map_err(error)?;
            let dead: i64 = tx
                .prepare_cached(COUNT_DEAD)
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(error)?;
            tx.commit().map_err(error)?;
            let count = |value: i64| u64::try_from(value).unwrap_or(0);
            Ok(Counts {
                waiting: count(total - leased),
                leased: count(leased),
                dead: count(dead),
            })
        })
        .await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.work.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    // Short enough to wait out, long enough that a busy machine does not expire it early.
    const LEASE: Duration = Duration::from_millis(400);
    const LONG: Duration = Duration::from_secs(60);

    async fn store_with(retention: Duration) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        let setup = Setup {
            routes: Vec::new(),
            key_retention: retention,
        };
        Store::open(&store, &setup).await.unwrap();
        (dir, store)
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        store_with(Duration::from_secs(3600)).await
    }

    /// A second connection to the store's file, as another process or a person would have.
    fn raw(store: &SqliteStore) -> Connection {
        let conn = Connection::open(store.path()).unwrap();
        conn.busy_timeout(BUSY_TIMEOUT).unwrap();
        conn
    }

    fn event(n: u64) -> StoredEvent {
        StoredEvent {
            event_id: "order_placed".to_owned(),
            // High bits set: the whole u128 must survive.
            emit_id: EmitId::from_u128((u128::MAX - 1_000_000) + u128::from(n)),
            emitted_at: from_unix_millis(1_700_000_000_000 + i64::try_from(n).unwrap()),
            payload: format!("{{\"order\":{n}}}").into_bytes(),
        }
    }

    fn emit(n: u64, listeners: &[&'static str], run_at: SystemTime, key: Option<&str>) -> NewEmit {
        NewEmit::new(event(n), listeners.to_vec(), run_at, key.map(str::to_owned))
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    fn ago(millis: u64) -> SystemTime {
        SystemTime::now() - Duration::from_millis(millis)
    }

    fn order_of(claim: &Claimed) -> u64 {
        let text = String::from_utf8(claim.event.payload.clone()).unwrap();
        text.trim_start_matches("{\"order\":")
            .trim_end_matches('}')
            .parse()
            .unwrap()
    }

    async fn counts(store: &SqliteStore) -> (u64, u64, u64) {
        let counts = store.counts().await.unwrap();
        (counts.waiting, counts.leased, counts.dead)
    }

    #[tokio::test]
    async fn open_creates_a_versioned_schema_in_wal_mode() {
        let (_dir, store) = store().await;
        let conn = raw(&store);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: String = conn
            .query_row(
                "SELECT value FROM emitter_meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(version, "1");
        let debug = format!("{store:?}");
        assert!(debug.contains("store.db"), "{debug}");
        assert!(store.path().ends_with("store.db"));
        // Opening again finds the schema and accepts it.
        SqliteStore::open(store.path()).unwrap();
    }

    #[tokio::test]
    async fn insert_stores_one_delivery_per_listener_and_claim_returns_the_event() {
        let (_dir, store) = store().await;
        let inserted = store
            .insert(&[emit(1, &["mail", "audit"], now(), None)])
            .await
            .unwrap();
        assert_eq!(
            inserted,
            Inserted {
                stored: 1,
                duplicates: 0
            }
        );
        assert_eq!(counts(&store).await, (2, 0, 0));

        let claimed = store.claim("w1", &["mail"], 10, LONG).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let claim = &claimed[0];
        assert_eq!(claim.listener, "mail");
        assert_eq!(claim.attempt, 1);
        assert_eq!(claim.event, event(1));
        assert!(!claim.receipt.lease.is_empty());
        assert_eq!(counts(&store).await, (1, 1, 0));

        let claimed = store.claim("w1", &["audit"], 10, LONG).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].listener, "audit");
        assert_eq!(claimed[0].event, event(1));
        assert_eq!(counts(&store).await, (0, 2, 0));
    }

    #[tokio::test]
    async fn claim_takes_due_deliveries_of_named_listeners_oldest_first_up_to_the_limit() {
        let (_dir, store) = store().await;
        store
            .insert(&[
                emit(1, &["a"], ago(1_000), None),
                emit(2, &["a"], ago(3_000), None),
                emit(3, &["b"], ago(2_000), None),
                emit(4, &["a", "b"], now() + LONG, None),
                emit(5, &["c"], ago(5_000), None),
            ])
            .await
            .unwrap();

        let first = store.claim("w", &["a", "b"], 2, LONG).await.unwrap();
        let mut orders: Vec<u64> = first.iter().map(order_of).collect();
        orders.sort_unstable();
        assert_eq!(orders, [2, 3], "the two oldest due of a and b");

        let rest = store.claim("w", &["a", "b"], 10, LONG).await.unwrap();
        assert_eq!(rest.iter().map(order_of).collect::<Vec<_>>(), [1]);
        // Not due (4) and not named (5) are left alone.
        assert!(store
            .claim("w", &["a", "b"], 10, LONG)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(counts(&store).await, (3, 3, 0));
        let c = store.claim("w", &["c"], 10, LONG).await.unwrap();
        assert_eq!(c.iter().map(order_of).collect::<Vec<_>>(), [5]);
    }

    #[tokio::test]
    async fn claim_with_nothing_to_claim_for_is_empty() {
        let (_dir, store) = store().await;
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        assert!(store.claim("w", &[], 10, LONG).await.unwrap().is_empty());
        assert!(store.claim("w", &["a"], 0, LONG).await.unwrap().is_empty());
        assert_eq!(store.insert(&[]).await.unwrap(), Inserted::default());
        store.ack(&[]).await.unwrap();
        store.extend(&[], LONG).await.unwrap();
        assert!(store.dead_letters(0).await.unwrap().is_empty());
        assert_eq!(counts(&store).await, (1, 0, 0));
    }

    #[tokio::test]
    async fn many_listeners_are_claimed_across_statements() {
        let (_dir, store) = store().await;
        let names: Vec<&'static str> = (0..70)
            .map(|n| &*Box::leak(format!("listener_{n}").into_boxed_str()))
            .collect();
        let emits: Vec<NewEmit> = names
            .iter()
            .enumerate()
            .map(|(n, name)| emit(n as u64, &[name], ago(100_000 - n as u64), None))
            .collect();
        store.insert(&emits).await.unwrap();
        let first = store.claim("w", &names, 40, LONG).await.unwrap();
        assert_eq!(first.len(), 40);
        let rest = store.claim("w", &names, 100, LONG).await.unwrap();
        assert_eq!(rest.len(), 30);
        let mut all: Vec<u64> = first.iter().chain(&rest).map(order_of).collect();
        all.sort_unstable();
        assert_eq!(all, (0..70).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_expired_lease_is_claimed_again_as_the_next_attempt() {
        let (_dir, store) = store().await;
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        let first = store.claim("dead-worker", &["a"], 10, LEASE).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempt, 1);
        assert!(store
            .claim("w2", &["a"], 10, LEASE)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(counts(&store).await, (0, 1, 0));

        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        assert_eq!(counts(&store).await, (1, 0, 0), "an expired lease waits");
        let second = store.claim("w2", &["a"], 10, LONG).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempt, 2);
        assert_eq!(second[0].receipt.id, first[0].receipt.id);
        assert_ne!(second[0].receipt.lease, first[0].receipt.lease);
    }

    #[tokio::test]
    async fn a_stale_receipt_changes_nothing() {
        let (_dir, store) = store().await;
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        let stale = store.claim("w1", &["a"], 1, LEASE).await.unwrap()[0]
            .receipt
            .clone();
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        let fresh = store.claim("w2", &["a"], 1, LONG).await.unwrap()[0]
            .receipt
            .clone();

        store.ack(std::slice::from_ref(&stale)).await.unwrap();
        store.retry(&stale, now(), "late").await.unwrap();
        store.dead_letter(&stale, "late").await.unwrap();
        store
            .extend(std::slice::from_ref(&stale), LONG)
            .await
            .unwrap();
        let garbage = Receipt {
            id: "not-an-id".to_owned(),
            lease: fresh.lease.clone(),
        };
        store.ack(std::slice::from_ref(&garbage)).await.unwrap();
        store.retry(&garbage, now(), "x").await.unwrap();
        store.dead_letter(&garbage, "x").await.unwrap();
        assert_eq!(counts(&store).await, (0, 1, 0), "the new claim stands");
        assert!(store.claim("w3", &["a"], 1, LONG).await.unwrap().is_empty());

        store.ack(std::slice::from_ref(&fresh)).await.unwrap();
        assert_eq!(counts(&store).await, (0, 0, 0));
    }

    #[tokio::test]
    async fn ack_removes_a_batch_even_after_its_lease_ran_out_unclaimed() {
        let (_dir, store) = store().await;
        let emits: Vec<NewEmit> = (0..5).map(|n| emit(n, &["a"], now(), None)).collect();
        store.insert(&emits).await.unwrap();
        let claimed = store.claim("w", &["a"], 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 5);
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        let receipts: Vec<Receipt> = claimed.iter().map(|c| c.receipt.clone()).collect();
        store.ack(&receipts[..4]).await.unwrap();
        assert_eq!(counts(&store).await, (1, 0, 0));
    }

    #[tokio::test]
    async fn extend_keeps_a_claim_past_its_first_lease() {
        let (_dir, store) = store().await;
        store
            .insert(&[emit(1, &["a"], now(), None), emit(2, &["a"], now(), None)])
            .await
            .unwrap();
        let claimed = store.claim("w", &["a"], 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 2);
        // Only the first is extended.
        store
            .extend(std::slice::from_ref(&claimed[0].receipt), LONG)
            .await
            .unwrap();
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        assert_eq!(counts(&store).await, (1, 1, 0));
        let again = store.claim("w2", &["a"], 10, LONG).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receipt.id, claimed[1].receipt.id);
    }

    #[tokio::test]
    async fn retry_releases_the_delivery_until_run_at_keeping_its_attempts() {
        let (_dir, store) = store().await;
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        let claim = store.claim("w", &["a"], 1, LONG).await.unwrap().remove(0);
        store
            .retry(&claim.receipt, now() + LEASE, "smtp down")
            .await
            .unwrap();
        assert_eq!(counts(&store).await, (1, 0, 0));
        assert!(store.claim("w", &["a"], 1, LONG).await.unwrap().is_empty());
        let (error, lease): (Option<String>, Option<String>) = raw(&store)
            .query_row(
                "SELECT last_error, lease FROM emitter_deliveries",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(error.as_deref(), Some("smtp down"));
        assert_eq!(lease, None);

        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        let again = store.claim("w", &["a"], 1, LONG).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempt, 2);
        // The old receipt no longer acts on the new claim.
        store
            .ack(std::slice::from_ref(&claim.receipt))
            .await
            .unwrap();
        assert_eq!(counts(&store).await, (0, 1, 0));
    }

    #[tokio::test]
    async fn dead_letters_keep_the_event_and_can_be_replayed_or_discarded() {
        let (_dir, store) = store().await;
        store
            .insert(&[emit(1, &["a"], now(), None), emit(2, &["a"], ago(10), None)])
            .await
            .unwrap();
        let mut claimed = store.claim("w", &["a"], 10, LONG).await.unwrap();
        claimed.sort_by_key(order_of);
        let before = now() - Duration::from_millis(5);
        store
            .dead_letter(&claimed[1].receipt, "gave up")
            .await
            .unwrap();
        // Failure times are kept in milliseconds: make the order unambiguous.
        tokio::time::sleep(Duration::from_millis(5)).await;
        store
            .dead_letter(&claimed[0].receipt, "bad payload")
            .await
            .unwrap();
        assert_eq!(counts(&store).await, (0, 0, 2));

        let letters = store.dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 2);
        let first = &letters[0];
        assert_eq!(first.id, claimed[1].receipt.id, "oldest first");
        assert_eq!(first.listener, "a");
        assert_eq!(first.event, event(2));
        assert_eq!(first.attempts, 1);
        assert_eq!(first.reason, "gave up");
        assert!(first.failed_at >= before && first.failed_at <= now());
        assert_eq!(letters[1].reason, "bad payload");
        assert_eq!(store.dead_letters(1).await.unwrap().len(), 1);

        assert!(store.replay(&first.id).await.unwrap());
        assert!(!store.replay(&first.id).await.unwrap());
        assert_eq!(counts(&store).await, (1, 0, 1));
        let replayed = store.claim("w", &["a"], 10, LONG).await.unwrap();
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].attempt, 1, "attempts start over");
        assert_eq!(replayed[0].event, event(2));
        assert_eq!(replayed[0].receipt.id, first.id);

        assert!(store.discard(&letters[1].id).await.unwrap());
        assert!(!store.discard(&letters[1].id).await.unwrap());
        assert!(!store.replay("12345").await.unwrap());
        assert!(!store.replay("nonsense").await.unwrap());
        assert!(!store.discard("-1").await.unwrap());
        assert_eq!(counts(&store).await, (0, 1, 0));
    }

    #[tokio::test]
    async fn idempotency_keys_skip_duplicates_within_and_across_batches() {
        let (_dir, store) = store().await;
        let inserted = store
            .insert(&[
                emit(1, &["a", "b"], now(), Some("k1")),
                emit(2, &["a", "b"], now(), Some("k1")),
                emit(3, &["a"], now(), Some("k2")),
                emit(4, &["a"], now(), None),
                emit(5, &["a"], now(), None),
            ])
            .await
            .unwrap();
        assert_eq!(
            inserted,
            Inserted {
                stored: 4,
                duplicates: 1
            }
        );
        let again = store
            .insert(&[
                emit(6, &["a"], now(), Some("k2")),
                emit(7, &["a"], now(), Some("k3")),
            ])
            .await
            .unwrap();
        assert_eq!(
            again,
            Inserted {
                stored: 1,
                duplicates: 1
            }
        );
        let mut orders: Vec<u64> = store
            .claim("w", &["a"], 100, LONG)
            .await
            .unwrap()
            .iter()
            .map(order_of)
            .collect();
        orders.sort_unstable();
        assert_eq!(orders, [1, 3, 4, 5, 7]);
        // A key is remembered after its deliveries are done.
        assert_eq!(
            store
                .insert(&[emit(8, &["a"], now(), Some("k1"))])
                .await
                .unwrap()
                .duplicates,
            1
        );
    }

    #[tokio::test]
    async fn an_expired_idempotency_key_is_accepted_again() {
        let (_dir, store) = store_with(LEASE).await;
        let emits = [emit(1, &["a"], now(), Some("tick"))];
        assert_eq!(store.insert(&emits).await.unwrap().stored, 1);
        assert_eq!(store.insert(&emits).await.unwrap().duplicates, 1);
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
        assert_eq!(store.insert(&emits).await.unwrap().stored, 1);
        assert_eq!(counts(&store).await, (2, 0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claimers_take_each_delivery_exactly_once() {
        let (_dir, store) = store().await;
        // A second connection to the file stands for another process.
        let other = SqliteStore::open(store.path()).unwrap();
        let emits: Vec<NewEmit> = (0..1_000)
            .map(|n| emit(n, &["a"], ago(1_000 - n), None))
            .collect();
        for batch in emits.chunks(100) {
            store.insert(batch).await.unwrap();
        }
        let start = Arc::new(tokio::sync::Barrier::new(6));
        let mut tasks = Vec::new();
        for claimer in 0..6 {
            let start = Arc::clone(&start);
            let on_other = claimer % 3 == 2;
            let store = if on_other {
                other.clone()
            } else {
                store.clone()
            };
            // Nothing is acknowledged until the end: only the leases keep claimers apart.
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                start.wait().await;
                loop {
                    let claimed = store
                        .claim(&format!("w{claimer}"), &["a"], 7, LONG)
                        .await
                        .unwrap();
                    // More than all of them: deliveries are handed out twice; stop to say so.
                    if claimed.is_empty() || seen.len() > 1_000 {
                        return (on_other, seen);
                    }
                    seen.extend(claimed);
                    // Running the deliveries: leaves the file's lock to the other connection.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
        let mut times: HashMap<u64, usize> = HashMap::new();
        let mut receipts = Vec::new();
        let mut by_connection = [0, 0];
        for task in tasks {
            let (on_other, claimed) = task.await.unwrap();
            by_connection[usize::from(on_other)] += claimed.len();
            for claim in claimed {
                assert_eq!(claim.attempt, 1);
                *times.entry(order_of(&claim)).or_default() += 1;
                receipts.push(claim.receipt);
            }
        }
        assert_eq!(times.len(), 1_000);
        assert!(
            times.values().all(|&n| n == 1),
            "a delivery was claimed twice"
        );
        assert!(
            by_connection.iter().all(|&n| n > 0),
            "both connections claimed: {by_connection:?}"
        );
        assert_eq!(counts(&store).await, (0, 1_000, 0));
        other.ack(&receipts).await.unwrap();
        assert_eq!(counts(&store).await, (0, 0, 0));
    }

    #[tokio::test]
    async fn deliveries_and_leases_survive_reopening_the_file() {
        let (_dir, store) = store().await;
        store
            .insert(&[emit(1, &["a"], now(), None), emit(2, &["a"], now(), None)])
            .await
            .unwrap();
        let claimed = store.claim("w", &["a"], 1, LONG).await.unwrap();
        let path = store.path().to_path_buf();
        drop(store);

        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(counts(&reopened).await, (1, 1, 0));
        let rest = reopened.claim("w", &["a"], 10, LONG).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_ne!(rest[0].receipt.id, claimed[0].receipt.id);
        reopened
            .ack(&[claimed[0].receipt.clone(), rest[0].receipt.clone()])
            .await
            .unwrap();
        assert_eq!(counts(&reopened).await, (0, 0, 0));
    }

    #[tokio::test]
    async fn a_corrupt_delivery_is_dead_lettered_and_named_not_claimed() {
        let (_dir, store) = store().await;
        store
            .insert(&[
                emit(1, &["a"], ago(20), None),
                emit(2, &["a"], ago(10), None),
                emit(3, &["a"], now(), None),
            ])
            .await
            .unwrap();
        let conn = raw(&store);
        conn.execute(
            "UPDATE emitter_deliveries SET emit_id = 'not hex at all' WHERE payload = ?1",
            [event(1).payload],
        )
        .unwrap();
        conn.execute(
            "UPDATE emitter_deliveries SET attempt = 9999999999 WHERE payload = ?1",
            [event(2).payload],
        )
        .unwrap();

        let claimed = store.claim("w", &["a"], 10, LONG).await.unwrap();
        assert_eq!(claimed.iter().map(order_of).collect::<Vec<_>>(), [3]);
        assert_eq!(counts(&store).await, (0, 1, 2));

        let error = store.dead_letters(10).await.unwrap_err().to_string();
        assert!(error.contains("dead letter 1"), "{error}");
        assert!(error.contains("emit id `not hex at all`"), "{error}");
        assert!(error.contains("discard"), "{error}");
        assert!(store.discard("1").await.unwrap());
        let error = store.dead_letters(10).await.unwrap_err().to_string();
        assert!(error.contains("dead letter 2"), "{error}");
        assert!(
            error.contains("attempt count 10000000000 is out of range"),
            "{error}"
        );
        assert!(store.discard("2").await.unwrap());
        assert!(store.dead_letters(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_corrupt_dead_letter_is_named() {
        let (_dir, store) = store().await;
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        let claim = store.claim("w", &["a"], 1, LONG).await.unwrap().remove(0);
        store.dead_letter(&claim.receipt, "failed").await.unwrap();
        raw(&store)
            .execute("UPDATE emitter_dead_letters SET attempts = -3", [])
            .unwrap();
        let error = store.dead_letters(10).await.unwrap_err().to_string();
        assert!(
            error.contains(&format!("dead letter {}", claim.receipt.id)),
            "{error}"
        );
        assert!(
            error.contains("attempt count -3 is out of range"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "these are my notes, not a database\n".repeat(100)).unwrap();
        let error = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(error.contains("is not a SQLite database"), "{error}");
        assert!(error.contains("notes.txt"), "{error}");
    }

    #[tokio::test]
    async fn a_directory_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let error = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("cannot open"), "{error}");
    }

    #[tokio::test]
    async fn a_newer_schema_version_is_refused() {
        let (_dir, store) = store().await;
        raw(&store)
            .execute(
                "UPDATE emitter_meta SET value = '2' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        let error = SqliteStore::open(store.path()).unwrap_err().to_string();
        assert!(
            error.contains("schema version 2, newer than version 1"),
            "{error}"
        );
        assert!(error.contains("upgrade emitter"), "{error}");
    }

    #[tokio::test]
    async fn a_corrupt_schema_version_is_refused() {
        let (_dir, store) = store().await;
        let conn = raw(&store);
        conn.execute(
            "UPDATE emitter_meta SET value = 'one' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        let error = SqliteStore::open(store.path()).unwrap_err().to_string();
        assert!(error.contains("corrupt schema version `one`"), "{error}");
        conn.execute("DELETE FROM emitter_meta", []).unwrap();
        let error = SqliteStore::open(store.path()).unwrap_err().to_string();
        assert!(error.contains("no schema version"), "{error}");
        conn.execute(
            "INSERT INTO emitter_meta VALUES ('schema_version', '1')",
            [],
        )
        .unwrap();
        conn.execute("DROP TABLE emitter_keys", []).unwrap();
        let error = SqliteStore::open(store.path()).unwrap_err().to_string();
        assert!(error.contains("lacks the table(s) emitter_keys"), "{error}");
    }

    #[tokio::test]
    async fn a_foreign_table_with_the_stores_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        Connection::open(&path)
            .unwrap()
            .execute("CREATE TABLE emitter_deliveries (x)", [])
            .unwrap();
        let error = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(error.contains("not created by this store"), "{error}");
    }

    #[tokio::test]
    async fn the_application_may_keep_its_own_tables_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER); PRAGMA user_version = 42;")
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 42);
    }

    #[tokio::test]
    async fn claim_reads_an_index_range_per_listener_not_the_backlog() {
        let (_dir, store) = store().await;
        let conn = raw(&store);
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", claim_sql(2)))
            .unwrap()
            .query_map(params!["t", "w", 0, 0, 10, "a", "b"], |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert_eq!(
            plan.matches("INDEX emitter_deliveries_due (listener=? AND run_at<?)")
                .count(),
            2,
            "{plan}"
        );
        assert!(!plan.contains("SCAN emitter_deliveries"), "{plan}");
    }

    #[tokio::test]
    async fn counting_leased_deliveries_reads_only_the_leased() {
        let (_dir, store) = store().await;
        let plan: String = raw(&store)
            .query_row(&format!("EXPLAIN QUERY PLAN {COUNT_LEASED}"), [0], |row| {
                row.get(3)
            })
            .unwrap();
        assert!(
            plan.contains("INDEX emitter_deliveries_leased (run_at>?)"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn wait_for_work_wakes_when_work_is_stored() {
        let (_dir, store) = store().await;
        // Whatever earlier calls left behind.
        store.wait_for_work(Duration::ZERO).await;
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.wait_for_work(Duration::from_secs(600)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), waiter)
            .await
            .expect("the waiter was not woken")
            .unwrap();
    }

    #[tokio::test]
    async fn a_panic_holding_the_connection_rolls_back_and_the_store_goes_on() {
        let (_dir, store) = store().await;
        let result: Result<(), BackendError> = store
            .run(|_, conn| {
                let tx = conn.transaction().unwrap();
                tx.execute(
                    "INSERT INTO emitter_keys (key, expires_at) VALUES ('half', 0)",
                    [],
                )
                .unwrap();
                panic!("a bug in a job");
            })
            .await;
        let error = result.unwrap_err().to_string();
        assert!(error.contains("panicked"), "{error}");
        let keys: i64 = raw(&store)
            .query_row("SELECT COUNT(*) FROM emitter_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(keys, 0);
        store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
        assert_eq!(counts(&store).await, (1, 0, 0));
    }
}
