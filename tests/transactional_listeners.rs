//! Listeners that take the store's transaction (`tx: &SqliteTx`, `tx: &PgTx`): their writes and
//! the acknowledgement of their delivery commit together or not at all; a failed attempt rolls
//! its writes back; a lost lease refuses the commit; follow-up emits through the transaction
//! exist iff it commits; a backend that cannot give the transaction refuses to start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use emitter::durable::postgres::tokio_postgres::{self, NoTls};
use emitter::durable::postgres::{PgTx, PostgresConfig, PostgresStore};
use emitter::durable::sqlite::rusqlite::{self, params};
use emitter::durable::sqlite::{SqliteStore, SqliteTx};
use emitter::durable::{Committed, Durable, DurableConfig, Route, Setup, Store};
use emitter::{
    listener, listeners, BoxError, EmitOptions, Emitter, Event, EventMeta, StartError, State,
};
use emitter_tests::servers::Postgres;
use emitter_tests::LogCapture;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Event, Debug, Clone)]
#[event(id = "tx.audited")]
pub struct Audited {
    pub n: i64,
    /// `ok`, `err` (attempt 1 fails after its write) or `panic` (attempt 1 panics after it).
    pub mode: String,
}

#[derive(Event, Debug, Clone)]
#[event(id = "tx.follow_up")]
pub struct FollowUp {
    pub n: i64,
}

/// Fails attempt 1 after its write, as `mode` says.
fn fail_first(mode: &str, meta: &EventMeta) -> Result<(), BoxError> {
    if meta.attempt() == 1 {
        match mode {
            "err" => return Err("failed on purpose after writing".into()),
            "panic" => panic!("panicked on purpose after writing"),
            _ => {}
        }
    }
    Ok(())
}

#[listener(events = [Audited], name = "tx.sqlite_audit", attempts = 3, backoff = "10ms..10ms")]
async fn sqlite_audit(n: i64, mode: &str, meta: EventMeta, tx: &SqliteTx) -> Result<(), BoxError> {
    tx.with(|conn| {
        conn.execute(
            "INSERT INTO audit (n, attempt) VALUES (?1, ?2)",
            params![n, meta.attempt()],
        )
    })?;
    fail_first(mode, &meta)
}

#[listener(events = [Audited], name = "tx.pg_audit", attempts = 3, backoff = "10ms..10ms")]
async fn pg_audit(
    n: i64,
    mode: &str,
    meta: EventMeta,
    tx: &PgTx,
    State(backend): State<Durable<PostgresStore>>,
) -> Result<(), BoxError> {
    let attempt = i64::from(meta.attempt());
    tx.execute(
        "INSERT INTO audit (n, attempt) VALUES ($1, $2)",
        &[&n, &attempt],
    )
    .await?;
    backend
        .emit_in(tx.client(), FollowUp { n }, EmitOptions::new())
        .await?;
    fail_first(mode, &meta)
}

#[listener(events = [FollowUp], name = "tx.pg_follow_up")]
async fn pg_follow_up(n: i64, tx: &PgTx) -> Result<(), BoxError> {
    tx.execute("INSERT INTO follow_ups (n) VALUES ($1)", &[&n])
        .await?;
    Ok(())
}

/// What the timed-out listener met when it wrote after its timeout.
#[derive(Clone, Default)]
struct Late(Arc<Mutex<Vec<String>>>);

/// Attempt 1 writes, then outlives its timeout and writes again; attempt 2 writes once.
#[listener(events = [FollowUp], name = "tx.sqlite_slow", attempts = 2, backoff = "10ms..10ms", timeout = "200ms")]
fn sqlite_slow(
    n: i64,
    meta: EventMeta,
    tx: &SqliteTx,
    State(late): State<Late>,
) -> Result<(), BoxError> {
    tx.with(|conn| {
        conn.execute(
            "INSERT INTO audit (n, attempt) VALUES (?1, ?2)",
            params![n, meta.attempt()],
        )
    })?;
    if meta.attempt() == 1 {
        std::thread::sleep(Duration::from_millis(600));
        let error = tx
            .with(|conn| conn.execute("INSERT INTO audit (n, attempt) VALUES (?1, 99)", [n]))
            .expect_err("the transaction is over");
        late.0.lock().unwrap().push(error.to_string());
    }
    Ok(())
}

/// The test's own connection, with which a listener steals its delivery's lease.
#[derive(Clone)]
struct Thief(Arc<tokio_postgres::Client>);

/// Attempt 1 writes, then its lease is taken (as another worker's claim would): its commit is
/// refused. Attempt 2, claimed once the stolen lease ran out, commits.
#[listener(events = [FollowUp], name = "tx.pg_robbed")]
async fn pg_robbed(
    n: i64,
    meta: EventMeta,
    tx: &PgTx,
    State(thief): State<Thief>,
) -> Result<(), BoxError> {
    let attempt = i64::from(meta.attempt());
    tx.execute(
        "INSERT INTO audit (n, attempt) VALUES ($1, $2)",
        &[&n, &attempt],
    )
    .await?;
    if attempt == 1 {
        thief
            .0
            .execute(
                "UPDATE tx_robbed.deliveries SET lease = lease + 1000000",
                &[],
            )
            .await?;
    }
    Ok(())
}

fn config() -> DurableConfig {
    DurableConfig::default().poll_interval(Duration::from_millis(20))
}

/// A SQLite store in a fresh file, with the application's `audit` table beside its own.
fn sqlite_app() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SqliteStore::open(&path).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE audit (n INTEGER NOT NULL, attempt INTEGER NOT NULL)")
        .unwrap();
    (dir, path, store)
}

/// Asserts that the store holds nothing: no unfinished delivery, no dead letter.
async fn assert_empty<S: Store>(store: &S) {
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.unfinished(), counts.dead), (0, 0));
}

fn sqlite_rows(path: &std::path::Path) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT n, attempt FROM audit ORDER BY n, attempt")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_listener_writes_commit_with_the_ack_and_failed_attempts_roll_back() {
    let (_dir, path, store) = sqlite_app();
    let backend = Durable::with_config(store, config());
    let emitter = Emitter::builder()
        .listeners(listeners![sqlite_audit])
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    for (n, mode) in [(1, "ok"), (2, "err"), (3, "panic")] {
        emitter::emit!(emitter, Audited, n = n, mode = mode).unwrap();
    }
    emitter.wait_idle().await;
    // One row per emit: the failed first attempts' rows were rolled back with them.
    assert_eq!(sqlite_rows(&path), [(1, 1), (2, 2), (3, 2)]);
    assert_empty(backend.store()).await;
    emitter.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_is_rolled_back_and_its_late_writes_refused() {
    let (_dir, path, store) = sqlite_app();
    let backend = Durable::with_config(store, config());
    let late = Late::default();
    let emitter = Emitter::builder()
        .listeners(listeners![sqlite_slow])
        .state(late.clone())
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    emitter::emit!(emitter, FollowUp, n = 5).unwrap();
    emitter.wait_idle().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while late.0.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the late write never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        late.0.lock().unwrap()[0].contains("transaction is over"),
        "{:?}",
        late.0.lock().unwrap()
    );
    assert_eq!(sqlite_rows(&path), [(5, 2)], "only the retry's write");
    assert_empty(backend.store()).await;
    emitter.shutdown().await.unwrap();
}

async fn pg_client(server: &Postgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A client of the application on `server`, with its `audit` table (and `follow_ups`), and a
/// store in the schema `schema` of the same database.
async fn pg_app(server: &Postgres, schema: &str) -> (tokio_postgres::Client, PostgresStore) {
    let client = pg_client(server).await;
    client
        .batch_execute(
            "CREATE TABLE audit (n bigint NOT NULL, attempt bigint NOT NULL);
             CREATE TABLE follow_ups (n bigint NOT NULL)",
        )
        .await
        .unwrap();
    let store = PostgresConfig::new(server.url())
        .schema(schema)
        .connect()
        .await
        .unwrap();
    (client, store)
}

async fn pg_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<(i64, i64)> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_listener_writes_and_follow_ups_commit_with_the_ack_or_not_at_all() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (client, store) = pg_app(&server, "tx_listeners").await;
    let backend = Durable::with_config(store, config());
    let emitter = Emitter::builder()
        .listeners(listeners![pg_audit, pg_follow_up])
        .state(backend.clone())
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    for (n, mode) in [(1, "ok"), (2, "err"), (3, "panic")] {
        emitter::emit!(emitter, Audited, n = n, mode = mode).unwrap();
    }
    emitter.wait_idle().await;
    // The follow-ups, committed with the acknowledgements of the emits above, are then stored.
    backend.wait_settled().await.unwrap();
    assert_eq!(
        pg_rows(&client, "SELECT n, attempt FROM audit ORDER BY n, attempt").await,
        [(1, 1), (2, 2), (3, 2)],
        "one row per emit: the failed first attempts' rows were rolled back"
    );
    // The follow-ups emitted by the failed attempts were rolled back too: one each.
    assert_eq!(
        pg_rows(
            &client,
            "SELECT n, count(*) FROM follow_ups GROUP BY n ORDER BY n"
        )
        .await,
        [(1, 1), (2, 1), (3, 1)]
    );
    assert_empty(backend.store()).await;
    emitter.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commit_is_refused_after_the_lease_was_lost() {
    let (_dir, path, store) = sqlite_app();
    let lease = Duration::from_millis(100);
    let [a, b] = claim_twice(&store, lease).await;
    for (receipt, attempt, expected) in [
        (a, 1, Committed::LeaseLost),
        (b, 2, Committed::Acknowledged),
    ] {
        let transaction = store.begin().await.unwrap();
        let handle = transaction.handle();
        let tx = handle.downcast_ref::<SqliteTx>().unwrap();
        tx.with(|conn| conn.execute("INSERT INTO audit VALUES (1, ?1)", [attempt]))
            .unwrap();
        drop(handle);
        assert_eq!(transaction.commit(receipt).await.unwrap(), expected);
    }
    assert_eq!(sqlite_rows(&path), [(1, 2)], "only the last claim's write");
    assert_empty(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commit_is_refused_after_the_lease_was_lost() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (client, store) = pg_app(&server, "tx_lease").await;
    let lease = Duration::from_millis(100);
    let [a, b] = claim_twice(&store, lease).await;
    for (receipt, attempt, expected) in [
        (a, 1i64, Committed::LeaseLost),
        (b, 2, Committed::Acknowledged),
    ] {
        let transaction = store.begin().await.unwrap();
        let handle = transaction.handle();
        let tx = handle.downcast_ref::<PgTx>().unwrap();
        tx.execute("INSERT INTO audit VALUES (1, $1)", &[&attempt])
            .await
            .unwrap();
        drop(handle);
        assert_eq!(transaction.commit(receipt).await.unwrap(), expected);
    }
    assert_eq!(
        pg_rows(&client, "SELECT n, attempt FROM audit").await,
        [(1, 2)],
        "only the last claim's write"
    );
    assert_empty(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lost_lease_refuses_the_commit_and_the_next_claim_delivers() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let logs = LogCapture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(logs.clone()))
        .expect("no other global subscriber in this binary");
    let (client, store) = pg_app(&server, "tx_robbed").await;
    let backend = Durable::with_config(store, config().lease(Duration::from_millis(300)));
    let emitter = Emitter::builder()
        .listeners(listeners![pg_robbed])
        .state(Thief(Arc::new(pg_client(&server).await)))
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    emitter::emit!(emitter, FollowUp, n = 9).unwrap();
    emitter.wait_idle().await;
    assert_eq!(
        pg_rows(&client, "SELECT n, attempt FROM audit").await,
        [(9, 2)],
        "only the second claim's write"
    );
    assert_empty(backend.store()).await;
    let lost = logs
        .lines()
        .into_iter()
        .filter(|line| line.text.contains("lease was lost") && line.text.contains("tx.pg_robbed"))
        .count();
    assert_eq!(lost, 1, "the refused commit is logged once");
    emitter.shutdown().await.unwrap();
}

/// Stores one delivery, claims it for worker A, lets A's lease run out and claims it for B: the
/// two receipts.
async fn claim_twice<S: Store>(store: &S, lease: Duration) -> [emitter::durable::Receipt; 2] {
    const LISTENER: &str = "tx.lease_listener";
    store
        .open(&Setup::new(
            vec![Route {
                event_id: "tx.audited",
                listeners: vec![LISTENER],
            }],
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    let event = emitter::durable::StoredEvent::new(
        "tx.audited",
        emitter::EmitId::from_u128(1 << 64 | 1),
        std::time::SystemTime::now(),
        br#"{"n":1,"mode":"ok"}"#.to_vec(),
    );
    store
        .insert(&[emitter::durable::NewEmit::new(
            event,
            vec![LISTENER],
            std::time::SystemTime::now(),
            None,
        )])
        .await
        .unwrap();
    let a = store.claim("a", &[LISTENER], 1, lease).await.unwrap();
    assert_eq!(a.len(), 1);
    let b = loop {
        tokio::time::sleep(lease).await;
        let b = store.claim("b", &[LISTENER], 1, lease).await.unwrap();
        if !b.is_empty() {
            break b;
        }
    };
    [a[0].receipt.clone(), b[0].receipt.clone()]
}

#[listener(events = [FollowUp], name = "tx.needs_sqlite")]
async fn needs_sqlite(tx: &SqliteTx) {
    let _ = tx;
}

#[listener(events = [FollowUp], name = "tx.needs_postgres")]
async fn needs_postgres(tx: &PgTx) {
    let _ = tx;
}

#[tokio::test]
async fn a_backend_without_the_transaction_refuses_to_start() {
    let Err(error) = Emitter::builder()
        .listeners(listeners![needs_sqlite])
        .start()
        .await
    else {
        panic!("the in-memory backend opens no transaction");
    };
    assert!(matches!(
        error,
        StartError::TransactionUnavailable {
            listener: "tx.needs_sqlite",
            ..
        }
    ));
    let text = error.to_string();
    assert!(
        text.contains("tx.needs_sqlite") && text.contains("SimpleEventEmitter"),
        "{text}"
    );

    let (_dir, _path, store) = sqlite_app();
    let Err(error) = Emitter::builder()
        .listeners(listeners![needs_postgres])
        .backend(Durable::new(store))
        .start()
        .await
    else {
        panic!("a SQLite store opens no PostgreSQL transaction");
    };
    let text = error.to_string();
    assert!(
        text.contains("tx.needs_postgres") && text.contains("SqliteStore") && text.contains("PgTx"),
        "{text}"
    );

    let Some(server) = Postgres::start() else {
        return;
    };
    let store = PostgresConfig::new(server.url())
        .schema("tx_refused")
        .connect()
        .await
        .unwrap();
    let Err(error) = Emitter::builder()
        .listeners(listeners![needs_sqlite])
        .backend(Durable::new(store))
        .start()
        .await
    else {
        panic!("a PostgreSQL store opens no SQLite transaction");
    };
    let text = error.to_string();
    assert!(
        text.contains("tx.needs_sqlite")
            && text.contains("PostgresStore")
            && text.contains("SqliteTx"),
        "{text}"
    );
}
