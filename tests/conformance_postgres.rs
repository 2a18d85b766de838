//! The conformance suite on the PostgreSQL store: every case, against a private `postgres`
//! started by the test (one server for the whole target, one schema per case).

#[macro_use]
mod conformance;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter_tests::servers::Postgres;

fn server() -> Option<&'static Postgres> {
    static SERVER: OnceLock<Option<Postgres>> = OnceLock::new();
    SERVER.get_or_init(Postgres::start).as_ref()
}

/// A schema of its own per case, on the shared server.
struct PostgresKit;

struct PostgresStorage {
    url: String,
    schema: String,
}

impl conformance::Kit for PostgresKit {
    type Store = PostgresStore;
    type Storage = PostgresStorage;

    fn available(&self) -> bool {
        server().is_some()
    }

    async fn storage(&self) -> PostgresStorage {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server().expect("the server is available");
        PostgresStorage {
            url: server.url(),
            schema: format!("conformance_{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl conformance::Storage for PostgresStorage {
    type Store = PostgresStore;

    async fn open(&self) -> PostgresStore {
        PostgresConfig::new(&self.url)
            .schema(&self.schema)
            .connect()
            .await
            .expect("connects")
    }
}

durable_cases!(PostgresKit);
