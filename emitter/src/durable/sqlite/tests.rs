//! The SQLite store's own tests: the file, its schema and the statements' query plans.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection};

use super::connection::BUSY_TIMEOUT;
use super::statements::{self, COUNT_LEASED};
use super::SqliteStore;
use crate::context::EmitId;
use crate::durable::{
    from_unix_millis, Claimed, Inserted, NewEmit, Receipt, Setup, Store, StoredEvent,
};
use crate::error::BackendError;

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
        .prepare(&format!("EXPLAIN QUERY PLAN {}", statements::claim(2)))
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
