//! Opening the file: the connection's settings, and what a failed statement means.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode};

use crate::error::{BackendError, BackendErrorKind};

/// How long a statement waits for another connection's lock before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets `conn`, a connection to the file at `path`, up as the store does: busy timeout, WAL,
/// `synchronous = NORMAL`, fixed query plans. Public (hidden) for the benchmarks' baseline.
pub fn setup_connection(path: &Path, conn: &mut Connection) -> Result<(), BackendError> {
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

/// An error of a statement on the store at `path`, saying what failed and, for the common
/// causes, what to do.
pub(super) fn sql_error(path: &Path, doing: &str, error: rusqlite::Error) -> BackendError {
    let path = path.display();
    let code = error.sqlite_error_code();
    let kind = match code {
        Some(ErrorCode::NotADatabase) => BackendErrorKind::Conflict,
        Some(ErrorCode::DatabaseCorrupt) => BackendErrorKind::Corrupt,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => BackendErrorKind::TimedOut,
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            BackendErrorKind::Misconfigured
        }
        _ => BackendErrorKind::Other,
    };
    let message = match code {
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
    BackendError::of(kind, message).caused_by(error)
}
