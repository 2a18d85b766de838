//! The store contract suite on the SQLite store: a fresh file per case.

use emitter::durable::sqlite::SqliteStore;
use emitter::durable::testing::Harness;
use emitter::BackendError;
use tempfile::TempDir;

struct SqliteHarness;

fn file(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("store.db")
}

/// A connection of our own to the store's file, as another program would have.
fn connection(dir: &TempDir) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(file(dir)).expect("the file opens");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("a busy timeout");
    conn
}

impl Harness for SqliteHarness {
    type Store = SqliteStore;
    type Storage = TempDir;

    async fn storage(&self) -> Option<TempDir> {
        Some(tempfile::tempdir().expect("a temporary directory"))
    }

    async fn open(&self, dir: &TempDir) -> Result<SqliteStore, BackendError> {
        SqliteStore::open(file(dir))
    }

    async fn corrupt(&self, dir: &TempDir, listener: &'static str) -> bool {
        connection(dir)
            .execute(
                "INSERT INTO emitter_deliveries
                 (listener, event_id, emit_id, emitted_at, payload, run_at, first_due, attempt)
                 VALUES (?1, 'contract.event', 'not hex at all', 0, x'00', 0, 0, 0)",
                [listener],
            )
            .expect("the row is written");
        true
    }

    async fn write_newer_schema_version(&self, dir: &TempDir) -> bool {
        connection(dir)
            .execute(
                "UPDATE emitter_meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .expect("the version is written");
        true
    }
}

emitter::store_contract!(SqliteHarness);
emitter::admin_contract!(SqliteHarness);
