//! Transactional emit on SQLite: an event emitted inside the caller's transaction, on the
//! caller's connection to the store's file, exists if and only if the transaction commits, is
//! not delivered before the commit, and wakes the workers at the commit (their poll interval is
//! an hour). A transactional listener's follow-up emitted through `SqliteTx` exists iff the
//! listener's transaction commits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emitter::durable::sqlite::rusqlite::{self, Connection};
use emitter::durable::sqlite::{SqliteStore, SqliteTx};
use emitter::durable::{Durable, DurableConfig};
use emitter::{listener, listeners, BoxError, EmitOptions, Emitter, Event, EventMeta, State};

#[derive(Event, Debug, Clone)]
#[event(id = "sqlite_transactional.order_placed")]
pub struct OrderPlaced {
    pub order: i64,
}

#[derive(Event, Debug, Clone)]
#[event(id = "sqlite_transactional.order_shipped")]
pub struct OrderShipped {
    pub order: i64,
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<i64>>>);

impl Seen {
    fn orders(&self) -> Vec<i64> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `count` orders were seen; panics after a liveness bound.
    async fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.orders().len() < count {
            assert!(
                Instant::now() < deadline,
                "not delivered: the commit did not wake the workers"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[listener(events = [OrderPlaced], name = "sqlite_transactional.ship")]
async fn ship(order: i64, State(seen): State<Seen>) {
    seen.0.lock().unwrap().push(order);
}

/// Ships in its transaction, emitting `OrderShipped` in it; fails its first attempt after both.
#[listener(
    events = [OrderPlaced],
    name = "sqlite_transactional.ship_in_tx",
    attempts = 3,
    backoff = "10ms..10ms"
)]
async fn ship_in_tx(
    order: i64,
    meta: EventMeta,
    tx: &SqliteTx,
    State(backend): State<Durable<SqliteStore>>,
) -> Result<(), BoxError> {
    tx.with(|conn| conn.execute("INSERT INTO shipments (id) VALUES (?1)", [order]))?;
    tx.with(|conn| -> Result<_, BoxError> {
        Ok(backend.emit_in(conn, OrderShipped { order }, EmitOptions::new())?)
    })?;
    if meta.attempt() == 1 {
        return Err("failed after shipping and emitting".into());
    }
    Ok(())
}

#[listener(events = [OrderShipped], name = "sqlite_transactional.shipped")]
async fn shipped(order: i64, State(seen): State<Seen>) {
    seen.0.lock().unwrap().push(order);
}

fn app_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    (dir, path)
}

/// Polls once an hour: only a wake-up delivers within the test.
fn config() -> DurableConfig {
    DurableConfig::default().poll_interval(Duration::from_secs(3600))
}

fn ids(conn: &Connection, table: &str) -> Vec<i64> {
    let mut statement = conn
        .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_exist_if_and_only_if_the_transaction_commits() {
    let (_dir, path) = app_file();
    let store = SqliteStore::open(&path).unwrap();
    let backend = Durable::with_config(store, config());
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .listeners(listeners![ship])
        .state(seen.clone())
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .unwrap();

    // Rolled back: neither the order nor its event.
    let transaction = conn.transaction().unwrap();
    transaction
        .execute("INSERT INTO orders (id) VALUES (1)", [])
        .unwrap();
    backend
        .emit_in(&transaction, OrderPlaced { order: 1 }, EmitOptions::new())
        .unwrap();
    transaction.rollback().unwrap();
    assert_eq!(backend.counts().await.unwrap().unfinished(), 0);

    // Committed, after a pause during which the uncommitted event must not be delivered.
    let transaction = conn.transaction().unwrap();
    transaction
        .execute("INSERT INTO orders (id) VALUES (2)", [])
        .unwrap();
    backend
        .emit_in(&transaction, OrderPlaced { order: 2 }, EmitOptions::new())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.orders().is_empty(), "delivered before the commit");
    transaction.commit().unwrap();
    seen.wait_for(1).await;

    // Outside a transaction: stored at once, and delivered.
    backend
        .emit_in(&conn, OrderPlaced { order: 3 }, EmitOptions::new())
        .unwrap();
    seen.wait_for(2).await;
    emitter.wait_idle().await;
    assert_eq!(seen.orders(), [2, 3], "only committed events, once each");
    assert_eq!(ids(&conn, "orders"), [2]);
    assert_eq!(backend.counts().await.unwrap().unfinished(), 0);
    emitter.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_another_file_is_refused() {
    let (_dir, path) = app_file();
    let (_other_dir, other) = app_file();
    let backend = Durable::new(SqliteStore::open(&path).unwrap());
    let emitter = Emitter::builder()
        .listeners(listeners![ship])
        .state(Seen::default())
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    for conn in [
        Connection::open(&other).unwrap(),
        Connection::open_in_memory().unwrap(),
    ] {
        let error = backend
            .emit_in(&conn, OrderPlaced { order: 1 }, EmitOptions::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not a connection to the SQLite store's file"),
            "{error}"
        );
    }
    assert_eq!(backend.counts().await.unwrap().unfinished(), 0);
    emitter.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_emitted_in_a_listeners_transaction_exists_iff_it_commits() {
    let (_dir, path) = app_file();
    // Retries are found by polling.
    let backend = Durable::with_config(
        SqliteStore::open(&path).unwrap(),
        DurableConfig::default().poll_interval(Duration::from_millis(20)),
    );
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE shipments (id INTEGER NOT NULL)")
        .unwrap();
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .listeners(listeners![ship_in_tx, shipped])
        .state(seen.clone())
        .state(backend.clone())
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    emitter::emit!(emitter, OrderPlaced, order = 7).unwrap();
    seen.wait_for(1).await;
    emitter.wait_idle().await;
    // The first attempt's shipment and follow-up were rolled back with it: one of each.
    assert_eq!(seen.orders(), [7]);
    assert_eq!(ids(&Connection::open(&path).unwrap(), "shipments"), [7]);
    let counts = backend.counts().await.unwrap();
    assert_eq!((counts.unfinished(), counts.dead), (0, 0));
    emitter.shutdown().await.unwrap();
}
