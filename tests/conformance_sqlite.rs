//! The conformance suite on the SQLite store: every case.

#[macro_use]
mod conformance;

use emitter::durable::sqlite::SqliteStore;

/// A temporary directory per case, holding one database file.
struct SqliteKit;

struct SqliteStorage {
    dir: tempfile::TempDir,
}

impl conformance::Kit for SqliteKit {
    type Store = SqliteStore;
    type Storage = SqliteStorage;

    async fn storage(&self) -> SqliteStorage {
        SqliteStorage {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl conformance::Storage for SqliteStorage {
    type Store = SqliteStore;

    async fn open(&self) -> SqliteStore {
        SqliteStore::open(self.dir.path().join("events.db")).expect("the database opens")
    }
}

durable_cases!(SqliteKit);
