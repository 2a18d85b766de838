//! The SQLite store's own tests: the file, its schema and the statements' query plans.

use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection};

use super::connection::BUSY_TIMEOUT;
use super::statements::{self, COUNT_LEASED};
use super::SqliteStore;
use crate::durable::{from_unix_millis, Claimed, NewEmit, Setup, Store, StoredEvent};
use crate::emit_id::EmitId;
use crate::error::BackendError;

const LONG: Duration = Duration::from_secs(60);

async fn store_with(retention: Duration) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    let setup = Setup::new(Vec::new(), retention);
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

/// The query plan of `sql` with `params`, one line per step.
fn plan(store: &SqliteStore, sql: &str, params: impl rusqlite::Params) -> String {
    let conn = raw(store);
    let steps: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map(params, |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    steps.join("\n")
}

fn event(n: u64) -> StoredEvent {
    StoredEvent::new(
        "order_placed",
        // High bits set: the whole u128 must survive.
        EmitId::from_u128((u128::MAX - 1_000_000) + u128::from(n)),
        from_unix_millis(1_700_000_000_000 + i64::try_from(n).unwrap()),
        format!("{{\"order\":{n}}}").into_bytes(),
    )
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
    assert_eq!(version, "6");
    let debug = format!("{store:?}");
    assert!(debug.contains("store.db"), "{debug}");
    assert!(store.path().ends_with("store.db"));
    // Opening again finds the schema and accepts it.
    SqliteStore::open(store.path()).unwrap();
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
async fn a_corrupt_delivery_is_dead_lettered_with_neutral_values_and_the_reason() {
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

    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(
        letters[0].event.emit_id,
        EmitId::from_u128(0),
        "a neutral emit id"
    );
    assert_eq!(
        letters[0].event.payload,
        event(1).payload,
        "what is readable is kept"
    );
    assert!(
        letters[0].reason.contains("emit id `not hex at all`"),
        "{}",
        letters[0].reason
    );
    assert_eq!(
        letters[1].attempts,
        u32::MAX,
        "an attempt count within range"
    );
    assert!(
        letters[1]
            .reason
            .contains("attempt count 10000000000 is out of range"),
        "{}",
        letters[1].reason
    );
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
    let error = store.dead_letters(10).await.unwrap_err();
    assert_eq!(error.kind(), crate::error::BackendErrorKind::Corrupt);
    let error = error.to_string();
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
    let plan = plan(
        &store,
        &statements::claim(&[None, None]),
        params!["t", "w", 0, 0, 10, "a", "b"],
    );
    assert_eq!(
        plan.matches("INDEX emitter_deliveries_due (listener=? AND run_at<?)")
            .count(),
        2,
        "{plan}"
    );
    assert!(!plan.contains("SCAN emitter_deliveries"), "{plan}");
}

/// The index of leased deliveries and suspects: a few rows, however long the backlog.
#[tokio::test]
async fn counting_leased_deliveries_reads_only_the_leased_and_the_suspects() {
    let (_dir, store) = store().await;
    let plan = plan(&store, COUNT_LEASED, [0]);
    assert!(
        plan.contains("INDEX emitter_deliveries_suspects (run_at>?)"),
        "{plan}"
    );
}

#[tokio::test]
async fn claiming_a_suspect_reads_only_the_leased_and_the_suspects() {
    let (_dir, store) = store().await;
    let plan = plan(
        &store,
        &statements::claim_suspect(2),
        params!["t", "w", 0, 0, 1, "a", "b"],
    );
    assert!(
        plan.contains("INDEX emitter_deliveries_suspects (run_at<?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN emitter_deliveries"), "{plan}");
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

#[tokio::test]
async fn an_ordered_claim_reads_the_first_rows_of_the_listener_in_emit_order() {
    let (_dir, store) = store().await;
    let plan = plan(
        &store,
        &statements::claim(&[Some(1), None]),
        params!["t", "w", 0, 0, 10, "a", 1, "b"],
    );
    assert!(
        plan.contains("INDEX emitter_deliveries_order (listener=? AND first_due<?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN emitter_deliveries"), "{plan}");
}

#[tokio::test]
async fn a_version_1_file_is_migrated_keeping_its_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("sql/schema_v1.sql"))
            .unwrap();
        conn.execute(
            "INSERT INTO emitter_meta (key, value) VALUES ('schema_version', '1')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO emitter_deliveries (listener, event_id, emit_id, emitted_at, payload, \
             run_at, attempt) VALUES ('a', 'order_placed', ?1, 1700000000000, x'7b7d', 0, 0)",
            [format!("{:032x}", 7)],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let version: String = raw(&store)
        .query_row(
            "SELECT value FROM emitter_meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(version, "6");
    Store::open(&store, &Setup::new(Vec::new(), LONG))
        .await
        .unwrap();
    let claimed = store.claim("w", &["a"], 10, LONG).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.emit_id, EmitId::from_u128(7));
    assert_eq!(claimed[0].event.trace, None);
    assert_eq!(claimed[0].event.version, 1, "stored before versions were");
}

#[tokio::test]
async fn a_configured_key_retention_sets_when_keys_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::SqliteConfig::new(dir.path().join("store.db"))
        .key_retention(Duration::from_secs(300))
        .open()
        .unwrap();
    let before = now();
    store
        .insert(&[emit(1, &["a"], now(), Some("k"))])
        .await
        .unwrap();
    let expires_at: i64 = raw(&store)
        .query_row("SELECT expires_at FROM emitter_keys", [], |row| row.get(0))
        .unwrap();
    let expires = from_unix_millis(expires_at);
    let retention = expires.duration_since(before).unwrap();
    assert!(
        retention >= Duration::from_secs(299) && retention <= Duration::from_secs(301),
        "{retention:?}"
    );
}
