//! The PostgreSQL store against real servers: claims under leases, keys, dead letters, wake-ups,
//! transactional emits, a server that goes away and comes back, and what must never leak.
//!
//! Most tests share one server, each in a schema of its own; tests that stop their server or
//! reconfigure it start their own.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::postgres::statements::Statements;
use emitter::durable::postgres::tokio_postgres::{self, NoTls};
use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::Tls;
use emitter::durable::{Claimed, Counts, NewEmit, Receipt, Store, StoredEvent};
use emitter::{BackendErrorKind, EmitId};
use emitter_tests::servers::Postgres;

const MAILER: &str = "send_welcome_email";
/// A bound on how long something that should happen soon may take: liveness, not speed.
const PATIENCE: Duration = Duration::from_secs(30);
const LONG_LEASE: Duration = Duration::from_secs(60);

/// The server most tests share; `None` when PostgreSQL is not installed (the tests skip).
fn shared() -> Option<&'static Postgres> {
    static SERVER: OnceLock<Option<Postgres>> = OnceLock::new();
    SERVER.get_or_init(Postgres::start).as_ref()
}

/// A store in a fresh schema of the shared server, migrated.
async fn store(schema: &str) -> Option<PostgresStore> {
    let server = shared()?;
    Some(open(PostgresConfig::new(server.url()).schema(schema)).await)
}

async fn open(config: PostgresConfig) -> PostgresStore {
    let store = config.connect().await.expect("the store connects");
    store.migrate().await.expect("the schema is created");
    store
}

/// A plain client of the server, for what the store does not show.
async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("a plain client connects");
    tokio::spawn(connection);
    client
}

fn event(n: u64) -> StoredEvent {
    StoredEvent::new(
        "user_signed_up".to_owned(),
        EmitId::from_u128((u128::from(u64::MAX - n) << 64) | u128::from(n)),
        SystemTime::now(),
        format!("{{\"n\":{n}}}").into_bytes(),
    )
}

fn emit(n: u64) -> NewEmit {
    NewEmit::new(event(n), vec![MAILER], SystemTime::now(), None)
}

fn keyed(n: u64, key: &str) -> NewEmit {
    NewEmit::new(
        event(n),
        vec![MAILER],
        SystemTime::now(),
        Some(key.to_owned()),
    )
}

/// Which emit a claim delivers: the `n` of its payload.
fn n_of(claimed: &Claimed) -> u64 {
    let text = String::from_utf8(claimed.event.payload.clone()).expect("a UTF-8 payload");
    text.trim_start_matches("{\"n\":")
        .trim_end_matches('}')
        .parse()
        .expect("a payload made by `event`")
}

async fn claim(store: &PostgresStore, limit: usize, lease: Duration) -> Vec<Claimed> {
    store
        .claim("worker-1", &[MAILER], limit, lease)
        .await
        .expect("the claim succeeds")
}

async fn counts(store: &PostgresStore) -> Counts {
    store.counts().await.expect("the counts are read")
}

fn counted(waiting: u64, leased: u64, dead: u64) -> Counts {
    Counts {
        waiting,
        leased,
        dead,
    }
}

/// A port of 127.0.0.1 where nothing listens.
fn dead_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn an_expired_key_is_accepted_again() {
    let Some(server) = shared() else { return };
    let config = PostgresConfig::new(server.url())
        .schema("key_expiry")
        .key_retention(Duration::from_secs(1));
    let store = open(config.clone()).await;
    assert_eq!(
        store
            .insert(&[keyed(1, "tick"), keyed(100, "once")])
            .await
            .expect("insert")
            .stored,
        2
    );
    assert_eq!(
        store
            .insert(&[keyed(2, "tick")])
            .await
            .expect("insert")
            .duplicates,
        1
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store
            .insert(&[keyed(3, "tick")])
            .await
            .expect("insert")
            .stored,
        1,
        "the key expired, so the emit is new"
    );
    assert_eq!(
        store
            .insert(&[keyed(4, "tick")])
            .await
            .expect("insert")
            .duplicates,
        1
    );

    // Expired keys are deleted by a later insert (at most once a minute per process: a new
    // store, as a restarted process would).
    let restarted = open(config).await;
    restarted
        .insert(&[emit(5)])
        .await
        .expect("the insert succeeds");
    let sql = client(&server.url()).await;
    let keys: Vec<String> = sql
        .query("SELECT key FROM key_expiry.idempotency_keys", &[])
        .await
        .expect("the keys are read")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(keys, ["tick"], "the expired key `once` is gone");
}

#[tokio::test]
async fn concurrent_inserts_of_one_key_store_it_once() {
    let Some(store) = store("key_race").await else {
        return;
    };
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.insert(&[keyed(n, "once"), emit(100 + n)]).await
        }));
    }
    let mut stored_keyed = 0;
    for task in tasks {
        let inserted = task
            .await
            .expect("the task ends")
            .expect("the insert succeeds");
        stored_keyed += inserted.stored - 1;
    }
    assert_eq!(stored_keyed, 1);
    assert_eq!(counts(&store).await.waiting, 9);
}

#[tokio::test]
async fn retry_releases_the_delivery_until_its_time_and_keeps_the_error() {
    let Some(server) = shared() else { return };
    let Some(store) = store("retry").await else {
        return;
    };
    store.insert(&[emit(1)]).await.expect("the insert succeeds");
    let first = claim(&store, 10, LONG_LEASE).await.remove(0);
    store
        .retry(
            &first.receipt,
            SystemTime::now() + Duration::from_secs(1),
            "smtp said no\0 (with a NUL)",
        )
        .await
        .expect("the retry succeeds");
    assert_eq!(
        counts(&store).await,
        counted(1, 0, 0),
        "released, not leased"
    );
    assert!(
        claim(&store, 10, LONG_LEASE).await.is_empty(),
        "not due again yet"
    );

    let sql = client(&server.url()).await;
    let row = sql
        .query_one("SELECT last_error, attempt FROM retry.deliveries", &[])
        .await
        .expect("the delivery is there");
    assert_eq!(row.get::<_, String>(0), "smtp said no\u{fffd} (with a NUL)");
    assert_eq!(row.get::<_, i32>(1), 1, "a retry does not count an attempt");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = claim(&store, 10, LONG_LEASE).await.remove(0);
    assert_eq!(second.attempt, 2);
    store
        .retry(
            &second.receipt,
            SystemTime::now() - Duration::from_secs(5),
            "again",
        )
        .await
        .expect("the retry succeeds");
    assert_eq!(
        claim(&store, 10, LONG_LEASE).await[0].attempt,
        3,
        "a past time is due now"
    );
}

#[tokio::test]
async fn insert_in_stores_emits_only_when_the_callers_transaction_commits() {
    let Some(server) = shared() else { return };
    let Some(store) = store("outbox").await else {
        return;
    };
    let mut own = client(&server.url()).await;

    let transaction = own.transaction().await.expect("a transaction begins");
    let inserted = store
        .insert_in(
            &transaction,
            &[keyed(1, "order-1"), keyed(2, "order-1"), emit(3)],
        )
        .await
        .expect("the insert succeeds");
    assert_eq!((inserted.stored, inserted.duplicates), (2, 1));
    assert_eq!(
        counts(&store).await,
        counted(0, 0, 0),
        "invisible until the commit"
    );
    transaction.commit().await.expect("the commit succeeds");
    assert_eq!(counts(&store).await, counted(2, 0, 0));

    let transaction = own.transaction().await.expect("a transaction begins");
    store
        .insert_in(&transaction, &[keyed(4, "order-2"), emit(5)])
        .await
        .expect("the insert succeeds");
    transaction.rollback().await.expect("the rollback succeeds");
    assert_eq!(
        counts(&store).await,
        counted(2, 0, 0),
        "rolled back with the caller"
    );
    assert_eq!(
        store
            .insert(&[keyed(6, "order-2")])
            .await
            .expect("insert")
            .stored,
        1,
        "the key was rolled back too"
    );

    // Outside a transaction, on the bare client: stored at once.
    store
        .insert_in(&own, &[emit(7)])
        .await
        .expect("the insert succeeds");
    let mut delivered: Vec<u64> = claim(&store, 10, LONG_LEASE)
        .await
        .iter()
        .map(n_of)
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, [1, 3, 6, 7]);

    // A caller whose transaction already failed gets an error, and nothing is stored.
    let transaction = own.transaction().await.expect("a transaction begins");
    let _ = transaction.execute("SELECT 1/0", &[]).await;
    let error = store
        .insert_in(&transaction, &[emit(8)])
        .await
        .expect_err("an aborted transaction stores nothing");
    assert!(error.to_string().contains("25P02"), "{error}");
}

#[tokio::test]
async fn wait_for_work_wakes_on_an_insert_from_another_process() {
    let Some(server) = shared() else { return };
    let config = PostgresConfig::new(server.url()).schema("wake");
    let waiter = open(config.clone()).await;
    let emitter = open(config).await;

    // Nothing to do: the wait lasts its timeout.
    let started = Instant::now();
    waiter.wait_for_work(Duration::from_millis(300)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The first wait started the listener; it may not have connected yet, so keep emitting.
    let started = Instant::now();
    let wait = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.wait_for_work(Duration::from_secs(600)).await }
    });
    let mut n = 0;
    while !wait.is_finished() {
        assert!(
            started.elapsed() < PATIENCE,
            "no wake-up after {PATIENCE:?}"
        );
        n += 1;
        emitter
            .insert(&[emit(n)])
            .await
            .expect("the insert succeeds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A commit through `insert_in` wakes it too.
    let mut own = client(&server.url()).await;
    // Drain the wake-ups the inserts above may have left pending.
    loop {
        let started = Instant::now();
        waiter.wait_for_work(Duration::from_millis(300)).await;
        if started.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    let wait = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.wait_for_work(Duration::from_secs(600)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!wait.is_finished(), "nothing was committed yet");
    let transaction = own.transaction().await.expect("a transaction begins");
    store_in(&emitter, &transaction).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!wait.is_finished(), "a notification waits for the commit");
    transaction.commit().await.expect("the commit succeeds");
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the commit wakes the waiter")
        .expect("the waiter ends");
}

async fn store_in(store: &PostgresStore, transaction: &tokio_postgres::Transaction<'_>) {
    store
        .insert_in(transaction, &[emit(1000)])
        .await
        .expect("the insert succeeds");
}

#[tokio::test]
async fn a_stopped_server_gives_unreachable_errors_and_the_store_recovers() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    let port = server.port();
    let store = open(PostgresConfig::new(server.url()).schema("outage")).await;
    store
        .insert(&[emit(1), emit(2)])
        .await
        .expect("the insert succeeds");
    let claimed = claim(&store, 1, LONG_LEASE).await.remove(0);
    store.wait_for_work(Duration::from_millis(200)).await; // starts the listener

    server.stop();
    let address = format!("127.0.0.1:{port}");
    let receipt = claimed.receipt.clone();
    let errors = vec![
        ("insert", store.insert(&[emit(3)]).await.err()),
        (
            "claim",
            store.claim("w", &[MAILER], 1, LONG_LEASE).await.err(),
        ),
        (
            "extend",
            store
                .extend(std::slice::from_ref(&receipt), LONG_LEASE)
                .await
                .err(),
        ),
        ("ack", store.ack(std::slice::from_ref(&receipt)).await.err()),
        (
            "retry",
            store.retry(&receipt, SystemTime::now(), "x").await.err(),
        ),
        ("dead_letter", store.dead_letter(&receipt, "x").await.err()),
        ("dead_letters", store.dead_letters(1).await.err()),
        ("replay", store.replay("1").await.err()),
        ("discard", store.discard("1").await.err()),
        ("counts", store.counts().await.err()),
        ("migrate", store.migrate().await.err()),
        ("connect", PostgresStore::connect(&server.url()).await.err()),
    ];
    for (method, error) in errors {
        let error = error.unwrap_or_else(|| panic!("{method} succeeded with the server stopped"));
        let message = error.to_string();
        assert!(
            message.contains("unreachable") && message.contains(&address),
            "{method}: {message}"
        );
        assert_eq!(error.kind(), BackendErrorKind::Unreachable, "{method}");
    }
    let started = Instant::now();
    store.wait_for_work(Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < PATIENCE,
        "wait_for_work does not hang on a dead server"
    );

    server.restart();
    assert_eq!(
        counts(&store).await,
        counted(1, 1, 0),
        "committed deliveries and leases survived; the store reconnected"
    );
    store
        .ack(&[claimed.receipt])
        .await
        .expect("the ack succeeds after the restart");

    // A restart between two calls: the pooled connections died while idle; the next call still
    // succeeds, on a new connection.
    server.restart();
    assert_eq!(counts(&store).await, counted(1, 0, 0));
    let receipts: Vec<Receipt> = claim(&store, 10, LONG_LEASE)
        .await
        .into_iter()
        .map(|claimed| claimed.receipt)
        .collect();
    server.restart();
    store
        .ack(&receipts)
        .await
        .expect("the ack succeeds after the restart");
    assert_eq!(counts(&store).await, counted(0, 0, 0));

    // The listener reconnects too: an insert wakes a waiter again.
    let started = Instant::now();
    let wait = tokio::spawn({
        let store = store.clone();
        async move { store.wait_for_work(Duration::from_secs(600)).await }
    });
    let mut n = 10;
    while !wait.is_finished() {
        assert!(started.elapsed() < PATIENCE, "no wake-up after the restart");
        n += 1;
        store.insert(&[emit(n)]).await.expect("the insert succeeds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_password_never_shows() {
    const PASSWORD: &str = "hunter2-Secret";
    let dead = dead_port();
    let urls = [
        format!("postgres://emitter:{PASSWORD}@127.0.0.1:{dead}/postgres"),
        format!("postgresql://emitter@127.0.0.1:{dead}/postgres?password={PASSWORD}"),
        format!("host=127.0.0.1 port={dead} user=emitter password={PASSWORD} dbname=postgres"),
        format!("postgres://emitter:{PASSWORD}@127.0.0.1:notaport/postgres"),
        format!("postgres://emitter:{PASSWORD}@127.0.0.1:{dead}/postgres?sslmode=bogus"),
        format!("host=127.0.0.1 port=x password={PASSWORD}"),
    ];
    for url in &urls {
        let config = PostgresConfig::new(url.clone());
        let debug = format!("{config:?}");
        assert!(!debug.contains(PASSWORD), "{debug}");
        let error = config.connect().await.expect_err("nothing listens there");
        let (shown, debugged) = (error.to_string(), format!("{error:?}"));
        assert!(
            !shown.contains(PASSWORD) && !debugged.contains(PASSWORD),
            "{shown} / {debugged}"
        );
    }
    let error = PostgresStore::connect(&urls[0])
        .await
        .expect_err("nothing listens there");
    assert!(error.to_string().contains("unreachable"), "{error}");
    let error = PostgresStore::connect(&urls[3])
        .await
        .expect_err("not a port");
    assert!(
        error.to_string().contains("invalid PostgreSQL URL"),
        "{error}"
    );

    // Connected (the test server trusts everyone, so any password does).
    let Some(server) = shared() else { return };
    let url = format!(
        "postgres://emitter:{PASSWORD}@127.0.0.1:{}/postgres",
        server.port()
    );
    let store = open(PostgresConfig::new(url).schema("secret")).await;
    let debug = format!("{store:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(
        debug.contains(&format!("127.0.0.1:{}", server.port())),
        "{debug}"
    );
}

#[tokio::test]
async fn schema_names_are_validated_and_reserved_words_work() {
    let Some(server) = shared() else { return };
    let too_long = "s".repeat(49);
    for name in [
        "",
        "Emitter",
        "1st",
        "a-b",
        "events; DROP TABLE users",
        "x\"y",
        "pg_temp",
        "événements",
        too_long.as_str(),
    ] {
        let error = PostgresConfig::new(server.url())
            .schema(name)
            .connect()
            .await
            .expect_err("an invalid name is refused");
        assert!(
            error.to_string().contains("invalid PostgreSQL schema name"),
            "{name:?}: {error}"
        );
        assert_eq!(error.kind(), BackendErrorKind::Misconfigured);
    }

    let store = open(PostgresConfig::new(server.url()).schema("select")).await;
    assert_eq!(store.schema(), "select");
    store.insert(&[emit(1)]).await.expect("the insert succeeds");
    assert_eq!(claim(&store, 10, LONG_LEASE).await.len(), 1);
    let longest = open(PostgresConfig::new(server.url()).schema("l".repeat(48))).await;
    longest
        .insert(&[emit(1)])
        .await
        .expect("the insert succeeds");
    longest.wait_for_work(Duration::from_millis(10)).await;
}

/// A schema written by version 1 of the store (as its statements created it) is migrated on
/// open: its deliveries are kept and claimed as before.
#[tokio::test]
async fn a_version_1_schema_is_migrated_keeping_its_deliveries() {
    let Some(server) = shared() else { return };
    let schema = "old_version";
    let table = |name: &str| format!("\"{schema}\".{name}");
    let v1 = include_str!("../emitter/src/durable/postgres/sql/schema_v1.sql")
        .replace("{schema}", &format!("\"{schema}\""))
        .replace("{deliveries}", &table("deliveries"))
        .replace("{dead_letters}", &table("dead_letters"))
        .replace("{keys}", &table("idempotency_keys"))
        .replace("{leases}", &table("leases"))
        .replace("{versions}", &table("schema_version"));
    let sql = client(&server.url()).await;
    sql.batch_execute(&v1).await.expect("version 1 is created");
    sql.batch_execute(&format!(
        "INSERT INTO {} (event_id, emit_id, emitted_at, payload, listener, run_at)
         VALUES ('user_signed_up', '00000000-0000-0000-0000-000000000007', now(), '\\x7b7d',
                 'send_welcome_email', now())",
        table("deliveries")
    ))
    .await
    .expect("a delivery of version 1 is stored");
    let store = open(PostgresConfig::new(server.url()).schema(schema)).await;
    let version: i32 = sql
        .query_one(
            &format!("SELECT max(version) FROM {}", table("schema_version")),
            &[],
        )
        .await
        .expect("the version is read")
        .get(0);
    assert_eq!(version, 6);
    let claimed = claim(&store, 10, LONG_LEASE).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.emit_id, EmitId::from_u128(7));
    assert_eq!(claimed[0].event.trace, None);
    assert_eq!(claimed[0].event.version, 1, "stored before versions were");
}

#[tokio::test]
async fn a_schema_of_a_newer_version_or_without_one_is_refused() {
    let Some(server) = shared() else { return };
    let store = open(PostgresConfig::new(server.url()).schema("versions")).await;
    store.migrate().await.expect("migrating twice is fine");
    let sql = client(&server.url()).await;

    sql.batch_execute("INSERT INTO versions.schema_version (version) VALUES (7)")
        .await
        .expect("the version is set");
    let error = store
        .migrate()
        .await
        .expect_err("a newer schema is refused");
    let message = error.to_string();
    assert!(
        message.contains("version 6")
            && message.contains("newer")
            && message.contains("`versions`"),
        "{message}"
    );

    sql.batch_execute("DELETE FROM versions.schema_version")
        .await
        .expect("the versions are gone");
    let error = store
        .migrate()
        .await
        .expect_err("an unknown version is refused");
    assert!(
        error.to_string().contains("has no schema version"),
        "{error}"
    );
}

#[tokio::test]
async fn concurrent_opens_create_the_schema_once() {
    let Some(server) = shared() else { return };
    let mut opening = Vec::new();
    for _ in 0..4 {
        let config = PostgresConfig::new(server.url()).schema("racing_opens");
        opening.push(tokio::spawn(async move {
            let store = config.connect().await?;
            store.migrate().await?;
            Ok::<_, emitter::BackendError>(store)
        }));
    }
    for open in opening {
        open.await
            .expect("the task ends")
            .expect("every open succeeds");
    }
    let sql = client(&server.url()).await;
    let versions: Vec<i32> = sql
        .query(
            "SELECT version FROM racing_opens.schema_version ORDER BY version",
            &[],
        )
        .await
        .expect("the versions are read")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6], "each migration applied once");
}

#[tokio::test]
async fn a_corrupt_row_is_dead_lettered_with_the_reason_and_an_altered_table_gives_errors() {
    let Some(server) = shared() else { return };
    let Some(store) = store("corrupt").await else {
        return;
    };
    store.insert(&[emit(1)]).await.expect("the insert succeeds");
    let sql = client(&server.url()).await;
    sql.batch_execute(
        "ALTER TABLE corrupt.deliveries DROP CONSTRAINT deliveries_attempt_check;
         UPDATE corrupt.deliveries SET attempt = -5;",
    )
    .await
    .expect("the row is damaged");
    let claimed = store
        .claim("w", &[MAILER], 10, LONG_LEASE)
        .await
        .expect("a claim goes past a row it cannot read");
    assert!(claimed.is_empty(), "the corrupt row is not handed out");
    let dead = store.dead_letters(10).await.expect("listed");
    assert_eq!((dead.len(), dead[0].attempts), (1, 0));
    assert!(
        dead[0].reason.contains("attempt -4") && dead[0].reason.contains("negative"),
        "{}",
        dead[0].reason
    );

    // A table altered under the store: the statement fails with the server's reason.
    sql.batch_execute("ALTER TABLE corrupt.deliveries RENAME COLUMN payload TO body")
        .await
        .expect("the table is altered");
    let error = store
        .insert(&[emit(2)])
        .await
        .expect_err("no payload column");
    assert!(error.to_string().contains("payload"), "{error}");
}

#[tokio::test]
async fn tls_settings_are_checked() {
    let Some(server) = shared() else { return };
    let error = PostgresConfig::new(server.url())
        .tls(Tls::Require)
        .connect()
        .await
        .expect_err("the test server has no TLS");
    assert!(error.to_string().contains("TLS"), "{error}");
    let error = PostgresConfig::new(format!("{}?sslmode=require", server.url()))
        .connect()
        .await
        .expect_err("sslmode=require asks for TLS");
    assert!(error.to_string().contains("TLS"), "{error}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("missing.pem");
    let error = PostgresConfig::new(server.url())
        .tls(Tls::CaFile(missing.clone()))
        .connect()
        .await
        .expect_err("no such file");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("the file is written");
    let error = PostgresConfig::new(server.url())
        .tls(Tls::CaFile(garbage))
        .connect()
        .await
        .expect_err("no certificate in the file");
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}

/// Runs openssl with `args` in `dir`; `false` if it is missing or fails.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test]
async fn tls_with_a_private_ca_verifies_the_server() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let made = openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=emitter test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    ) && openssl(
        dir.path(),
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    ) && std::fs::write(dir.path().join("san.ext"), "subjectAltName=IP:127.0.0.1\n")
        .is_ok()
        && openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.pem",
            ],
        );
    if !made {
        let message = "openssl could not make test certificates (install the `openssl` package)";
        assert!(
            std::env::var("EMITTER_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "{message}"
        );
        eprintln!("*** SKIPPED: {message} ***");
        return;
    }
    let path = dir.path().display();
    // The server runs as `postgres` when we are root: it must own its key.
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir.path())
        .output();
    let _ = Command::new("chmod").arg("0755").arg(dir.path()).output();
    let _ = Command::new("chmod")
        .arg("0600")
        .arg(dir.path().join("server.key"))
        .output();
    server.psql(&format!(
        "ALTER SYSTEM SET ssl_cert_file = '{path}/server.pem'"
    ));
    server.psql(&format!(
        "ALTER SYSTEM SET ssl_key_file = '{path}/server.key'"
    ));
    server.psql("ALTER SYSTEM SET ssl = on");
    server.psql("SELECT pg_reload_conf()");

    let store = open(
        PostgresConfig::new(server.url())
            .schema("tls")
            .tls(Tls::CaFile(dir.path().join("ca.pem"))),
    )
    .await;
    store
        .insert(&[emit(1)])
        .await
        .expect("the insert succeeds over TLS");
    assert_eq!(claim(&store, 10, LONG_LEASE).await.len(), 1);
    let sql = client(&server.url()).await;
    let encrypted: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE ssl AND datname = 'postgres'",
            &[],
        )
        .await
        .expect("the TLS connections are listed")
        .get(0);
    assert!(encrypted >= 1, "the store's connections use TLS");

    let error = PostgresConfig::new(server.url())
        .tls(Tls::Require)
        .connect()
        .await
        .expect_err("a private CA is not among the public roots");
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[tokio::test]
async fn a_call_without_an_answer_fails_after_the_operation_timeout() {
    let Some(server) = shared() else { return };
    let store = open(
        PostgresConfig::new(server.url())
            .schema("hang")
            .operation_timeout(Duration::from_millis(500)),
    )
    .await;
    store.insert(&[emit(1)]).await.expect("the insert succeeds");
    let mut locker = client(&server.url()).await;
    let transaction = locker.transaction().await.expect("a transaction begins");
    transaction
        .batch_execute("LOCK TABLE hang.deliveries IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the table is locked");

    let error = store.counts().await.expect_err("the table stays locked");
    assert!(
        error.to_string().contains("did not answer within"),
        "{error}"
    );
    assert_eq!(error.kind(), BackendErrorKind::TimedOut);
    transaction.rollback().await.expect("the lock is released");
    assert_eq!(
        counts(&store).await,
        counted(1, 0, 0),
        "the store works again"
    );
}

/// The claim of a suspect reads the index of leased deliveries and suspects, which a backlog does
/// not grow, and nothing else: on a fresh table with a long backlog and no statistics yet (the
/// planner's worst case), and once the table is analyzed.
#[tokio::test]
async fn claiming_a_suspect_reads_the_suspects_not_the_backlog() {
    let Some(server) = shared() else { return };
    let schema = "suspect_plan";
    let Some(store) = store(schema).await else {
        return;
    };
    let emits: Vec<NewEmit> = (0..20_000).map(emit).collect();
    for batch in emits.chunks(1_000) {
        store.insert(batch).await.expect("the backlog is stored");
    }
    let sql = client(&server.url()).await;
    let statement = Statements::new(schema).claim_suspect.text;
    let listeners = vec![MAILER];
    let (lease, worker) = (60_000_i64, "w");
    for analyzed in [false, true] {
        if analyzed {
            sql.batch_execute(&format!("ANALYZE {schema}.deliveries"))
                .await
                .expect("the table is analyzed");
        }
        let plan: Vec<String> = sql
            .query(
                &format!("EXPLAIN {statement}"),
                &[&listeners, &lease, &worker],
            )
            .await
            .expect("the claim is explained")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        // Sorting the few suspects is fine, and so is reading the small table of paused
        // listeners; reading the backlog is not.
        let scans_deliveries = plan
            .lines()
            .any(|line| line.contains("Seq Scan") && !line.contains("paused"));
        assert!(
            plan.contains("deliveries_suspects")
                && !plan.contains("deliveries_due")
                && !plan.contains("deliveries_order")
                && !scans_deliveries,
            "analyzed: {analyzed}\n{plan}"
        );
    }
}
