//! The store contract suite on the PostgreSQL store: one private server for the whole target
//! (`servers.rs`), a schema of its own per case.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::testing::Harness;
use emitter::BackendError;
use emitter_tests::servers::Postgres;

fn server() -> Option<&'static Postgres> {
    static SERVER: OnceLock<Option<Postgres>> = OnceLock::new();
    SERVER.get_or_init(Postgres::start).as_ref()
}

struct PostgresHarness;

impl Harness for PostgresHarness {
    type Store = PostgresStore;
    /// The schema's name.
    type Storage = String;

    async fn storage(&self) -> Option<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        server()?;
        Some(format!("contract_{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    async fn open(&self, schema: &String) -> Result<PostgresStore, BackendError> {
        let server = server().expect("the server runs");
        PostgresConfig::new(server.url())
            .schema(schema)
            .connect()
            .await
    }

    /// A row with a negative attempt count (its check constraint dropped first): no claim can
    /// make that a valid attempt.
    async fn corrupt(&self, schema: &String, listener: &'static str) -> bool {
        let server = server().expect("the server runs");
        server.psql(&format!(
            "ALTER TABLE {schema}.deliveries DROP CONSTRAINT deliveries_attempt_check;
             INSERT INTO {schema}.deliveries
                 (event_id, emit_id, emitted_at, payload, listener, attempt, run_at, first_due)
             VALUES ('contract.event', gen_random_uuid(), now(), '\\x00', '{listener}', -5, now(),
                     now())"
        ));
        true
    }

    async fn write_newer_schema_version(&self, schema: &String) -> bool {
        let server = server().expect("the server runs");
        server.psql(&format!(
            "INSERT INTO {schema}.schema_version (version) VALUES (99)"
        ));
        true
    }
}

emitter::store_contract!(PostgresHarness);
emitter::admin_contract!(PostgresHarness);
