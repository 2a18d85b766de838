//! Exactly-once effects under faults, on SQLite and on PostgreSQL: [`EVENTS`] emits to a listener
//! that inserts one row per emit into an application table without a unique constraint, while
//! worker processes are SIGKILLed at random (mid-transaction, since transactions are always
//! running), stalled with SIGSTOP for longer than their lease (so that another worker claims
//! their deliveries and the stalled one resumes with a lost lease), and the listener fails at
//! random after its insert.
//!
//! With a transactional listener (`tx: &SqliteTx`, `tx: &PgTx`) the table ends with exactly one
//! row per emit and the store empty. The same workload with a plain listener (the insert in its
//! own transaction) ends with duplicated rows, which the test counts and prints: the README
//! quotes both counts.
//!
//! The workers are this test binary run again (`exactly_once_worker`, a test that does nothing
//! unless [`WORKER`] is set). Every listener run appends `n attempt` to a log before it returns,
//! so the log counts the runs, committed or not.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use emitter::durable::postgres::tokio_postgres::{self, NoTls};
use emitter::durable::postgres::PgTx;
use emitter::durable::sqlite::rusqlite;
use emitter::durable::sqlite::SqliteTx;
use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, BoxError, Emitter, EmitterBuilder, Event, EventMeta, State};
use emitter_tests::children::{self, runtime, Kind, RunLog};
use emitter_tests::servers::Postgres;
use emitter_tests::with_store;

/// Emits, each one delivery.
const EVENTS: i64 = 10_000;
/// Worker processes running at once.
const WORKERS: usize = 2;
/// The workers' lease: short, so that a stalled worker loses its deliveries soon.
const LEASE: Duration = Duration::from_millis(600);
/// How long a stalled worker stays stopped: longer than its lease.
const STALL: Duration = Duration::from_millis(1_000);
/// Deliveries a worker runs at once.
const MAX_IN_FLIGHT: usize = 16;
/// In how many of 100 attempts the listener fails after its insert.
const FAIL_PERCENT: u64 = 10;
/// The faults (kills and stalls) of one run, spread over its deliveries.
const FAULTS: usize = 12;
/// A liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(240);

/// Set in a worker's environment to its id.
const WORKER: &str = "EMITTER_EXACTLY_ONCE_WORKER";
/// Set in a worker's environment to `sqlite` or `postgres`.
const STORE: &str = "EMITTER_EXACTLY_ONCE_STORE";
/// Set in a worker's environment to the store's file or server URL.
const URL: &str = "EMITTER_EXACTLY_ONCE_URL";
/// Set in a worker's environment to the store's schema (PostgreSQL).
const NAMESPACE: &str = "EMITTER_EXACTLY_ONCE_NAMESPACE";
/// Set in a worker's environment to `tx` or `plain`.
const MODE: &str = "EMITTER_EXACTLY_ONCE_MODE";
/// Set in a worker's environment to the directory of the log and the ready markers.
const DIR: &str = "EMITTER_EXACTLY_ONCE_DIR";

/// The worker test's name, for `--exact`.
const CHILD: &str = "exactly_once_worker";

#[derive(Event, Debug, Clone)]
#[event(id = "exactly_once.numbered")]
pub struct Numbered {
    pub n: i64,
}

/// What a worker's listeners share: the run log, and (plain listeners) the application's own
/// connection.
#[derive(Clone)]
struct App {
    runs: RunLog,
    db: Db,
}

#[derive(Clone)]
enum Db {
    /// Transactional listeners write through their transaction.
    None,
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(Arc<tokio_postgres::Client>),
}

/// Logs the run, then waits a little now and then (so that kills and stalls land mid-
/// transaction) and fails at random: what every listener does after its insert.
async fn after_insert(n: i64, meta: &EventMeta, app: &App) -> Result<(), BoxError> {
    app.runs.append(&format!("{n} {}", meta.attempt()));
    let roll = mix(
        n as u64,
        u64::from(meta.attempt()),
        u64::from(std::process::id()),
    );
    if roll.is_multiple_of(5) {
        tokio::time::sleep(Duration::from_millis(1 + roll % 4)).await;
    }
    if (roll >> 8) % 100 < FAIL_PERCENT {
        return Err("failed at random after the insert".into());
    }
    Ok(())
}

/// A well-mixed number from three (splitmix64's finalizer).
fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(c.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[listener(events = [Numbered], name = "exactly_once.sqlite_tx", attempts = 40, backoff = "1ms..5ms")]
async fn sqlite_tx(
    n: i64,
    meta: EventMeta,
    tx: &SqliteTx,
    State(app): State<App>,
) -> Result<(), BoxError> {
    tx.with(|conn| conn.execute("INSERT INTO effects (n) VALUES (?1)", [n]))?;
    after_insert(n, &meta, &app).await
}

#[listener(events = [Numbered], name = "exactly_once.sqlite_plain", attempts = 40, backoff = "1ms..5ms")]
async fn sqlite_plain(n: i64, meta: EventMeta, State(app): State<App>) -> Result<(), BoxError> {
    if let Db::Sqlite(conn) = &app.db {
        conn.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .execute("INSERT INTO effects (n) VALUES (?1)", [n])?;
    }
    after_insert(n, &meta, &app).await
}

#[listener(events = [Numbered], name = "exactly_once.pg_tx", attempts = 40, backoff = "1ms..5ms")]
async fn pg_tx(n: i64, meta: EventMeta, tx: &PgTx, State(app): State<App>) -> Result<(), BoxError> {
    tx.execute("INSERT INTO effects (n) VALUES ($1)", &[&n])
        .await?;
    after_insert(n, &meta, &app).await
}

#[listener(events = [Numbered], name = "exactly_once.pg_plain", attempts = 40, backoff = "1ms..5ms")]
async fn pg_plain(n: i64, meta: EventMeta, State(app): State<App>) -> Result<(), BoxError> {
    if let Db::Postgres(client) = &app.db {
        client
            .execute("INSERT INTO effects (n) VALUES ($1)", &[&n])
            .await?;
    }
    after_insert(n, &meta, &app).await
}

/// Whether the listener takes the store's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Transactional,
    Plain,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Transactional => "tx",
            Mode::Plain => "plain",
        }
    }
}

/// The builder with the listener of `kind` and `mode`, and its state.
async fn with_listener(
    builder: EmitterBuilder,
    kind: Kind,
    mode: Mode,
    location: &str,
    runs: RunLog,
) -> EmitterBuilder {
    let (listeners, db) = match (kind, mode) {
        (Kind::Sqlite, Mode::Transactional) => (listeners![sqlite_tx], Db::None),
        (Kind::Sqlite, Mode::Plain) => {
            let conn = rusqlite::Connection::open(location).expect("the database opens");
            conn.busy_timeout(Duration::from_secs(30))
                .expect("a busy timeout");
            (
                listeners![sqlite_plain],
                Db::Sqlite(Arc::new(Mutex::new(conn))),
            )
        }
        (Kind::Postgres, Mode::Transactional) => (listeners![pg_tx], Db::None),
        (Kind::Postgres, Mode::Plain) => {
            let (client, connection) = tokio_postgres::connect(location, NoTls)
                .await
                .expect("the application connects");
            tokio::spawn(connection);
            (listeners![pg_plain], Db::Postgres(Arc::new(client)))
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("a store without transactions"),
    };
    builder.listeners(listeners).state(App { runs, db })
}

// ---------------------------------------------------------------------------------------------
// The worker.

/// A worker process; returns at once unless [`WORKER`] is set. Delivers until killed, or until
/// its stdin closes (then it shuts down and exits).
#[test]
fn exactly_once_worker() {
    let Ok(id) = std::env::var(WORKER) else {
        return;
    };
    let env = |name: &str| std::env::var(name).expect("the parent sets the worker's environment");
    let kind = Kind::parse(&env(STORE));
    let url = env(URL);
    let namespace = env(NAMESPACE);
    let mode = if env(MODE) == "tx" {
        Mode::Transactional
    } else {
        Mode::Plain
    };
    let dir = PathBuf::from(env(DIR));
    runtime().block_on(async {
        with_store!(kind, &url, &namespace, |store| serve(
            store, kind, mode, &url, &id, &dir
        )
        .await);
    });
}

async fn serve<S: Store>(store: S, kind: Kind, mode: Mode, url: &str, id: &str, dir: &Path) {
    let config = DurableConfig::default()
        .lease(LEASE)
        .poll_interval(Duration::from_millis(50))
        .max_in_flight(MAX_IN_FLIGHT)
        .worker_id(id);
    let runs = RunLog::open(&dir.join("runs.log"));
    let builder = Emitter::builder().backend(Durable::with_config(store, config));
    let emitter = with_listener(builder, kind, mode, url, runs)
        .await
        .start()
        .await
        .expect("the emitter starts");
    children::serve_until_stdin_closes(emitter, &dir.join(format!("{id}.ready"))).await;
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// The tests take turns: four worker processes and a server at once on a small machine would
/// only make each run slower.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn every_effect_applies_exactly_once_under_faults_on_sqlite() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let transactional = {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("app.db");
        run(
            Kind::Sqlite,
            Mode::Transactional,
            &path.to_string_lossy(),
            "unused",
            dir.path(),
        )
    };
    let plain = {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("app.db");
        run(
            Kind::Sqlite,
            Mode::Plain,
            &path.to_string_lossy(),
            "unused",
            dir.path(),
        )
    };
    check(Kind::Sqlite, &transactional, &plain);
}

#[test]
fn every_effect_applies_exactly_once_under_faults_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Postgres::start() else {
        return;
    };
    let transactional = {
        let dir = tempfile::tempdir().expect("a temporary directory");
        run(
            Kind::Postgres,
            Mode::Transactional,
            &server.url(),
            "exactly_once_tx",
            dir.path(),
        )
    };
    let plain = {
        let dir = tempfile::tempdir().expect("a temporary directory");
        run(
            Kind::Postgres,
            Mode::Plain,
            &server.url(),
            "exactly_once_plain",
            dir.path(),
        )
    };
    check(Kind::Postgres, &transactional, &plain);
}

/// What one run came to.
#[derive(Debug)]
struct Outcome {
    /// Rows of the application's table, by `n`.
    rows: BTreeMap<i64, u64>,
    /// Listener runs logged (committed or not).
    runs: usize,
    kills: usize,
    stalls: usize,
    /// Deliveries left in the store (unfinished, dead).
    left: (u64, u64),
    took: Duration,
}

impl Outcome {
    /// Emits with more than one row: how many extra rows.
    fn duplicates(&self) -> u64 {
        self.rows
            .values()
            .map(|&count| count.saturating_sub(1))
            .sum()
    }

    /// Emits with no row.
    fn lost(&self) -> usize {
        (0..EVENTS).filter(|n| !self.rows.contains_key(n)).count()
    }
}

fn check(kind: Kind, transactional: &Outcome, plain: &Outcome) {
    for (mode, outcome) in [("transactional", transactional), ("plain", plain)] {
        println!(
            "exactly_once on {}: {mode} listener: emits={EVENTS} rows={} duplicated={} lost={} \
             runs={} kills={} stalls={} left in store (unfinished, dead)={:?} in {:.1?}",
            kind.name(),
            outcome.rows.values().sum::<u64>(),
            outcome.duplicates(),
            outcome.lost(),
            outcome.runs,
            outcome.kills,
            outcome.stalls,
            outcome.left,
            outcome.took,
        );
    }
    assert!(
        transactional.runs > EVENTS as usize,
        "no listener run was repeated: the faults proved nothing"
    );
    assert_eq!(
        transactional.lost(),
        0,
        "transactional: emits without a row"
    );
    assert_eq!(
        transactional.duplicates(),
        0,
        "transactional: duplicated rows"
    );
    assert_eq!(
        transactional.left,
        (0, 0),
        "transactional: the store is not empty"
    );
    assert_eq!(plain.lost(), 0, "plain: emits without a row");
    assert_eq!(plain.left, (0, 0), "plain: the store is not empty");
    // Random failures after the insert alone (10% of attempts) make hundreds of duplicates.
    assert!(
        plain.duplicates() > 0,
        "the plain listener duplicated nothing: the workload proved nothing"
    );
}

/// Creates the application's table, stores every emit, runs the workers through kills and
/// stalls until the store holds nothing unfinished, and reads the table.
fn run(kind: Kind, mode: Mode, location: &str, namespace: &str, dir: &Path) -> Outcome {
    let started = Instant::now();
    let log = dir.join("runs.log");
    File::create(&log).expect("the log is created");
    runtime().block_on(create_table(kind, location));
    runtime().block_on(async {
        with_store!(kind, location, namespace, |store| emit_all(
            store, kind, mode, location, &log
        )
        .await)
    });
    let mut workers = Workers::new(kind, mode, location, namespace, dir);
    for _ in 0..WORKERS {
        workers.spawn();
    }
    let (kills, stalls, left) = runtime().block_on(async {
        with_store!(kind, location, namespace, |store| faults_until_settled(
            store,
            &mut workers,
            &log
        )
        .await)
    });
    workers.stop();
    let rows = runtime().block_on(read_table(kind, location));
    Outcome {
        rows,
        runs: RunLog::count(&log),
        kills,
        stalls,
        left,
        took: started.elapsed(),
    }
}

async fn create_table(kind: Kind, location: &str) {
    const TABLE: &str = "DROP TABLE IF EXISTS effects; CREATE TABLE effects (n bigint NOT NULL)";
    match kind {
        Kind::Sqlite => rusqlite::Connection::open(location)
            .expect("the database opens")
            .execute_batch(TABLE)
            .expect("the table is created"),
        Kind::Postgres => pg_client(location)
            .await
            .batch_execute(TABLE)
            .await
            .expect("the table is created"),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

async fn read_table(kind: Kind, location: &str) -> BTreeMap<i64, u64> {
    const COUNT: &str = "SELECT n, count(*) FROM effects GROUP BY n";
    match kind {
        Kind::Sqlite => {
            let conn = rusqlite::Connection::open(location).expect("the database opens");
            let mut statement = conn.prepare(COUNT).expect("the query prepares");
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))
                .expect("the table is read")
                .collect::<Result<_, _>>()
                .expect("the table is read")
        }
        Kind::Postgres => pg_client(location)
            .await
            .query(COUNT, &[])
            .await
            .expect("the table is read")
            .iter()
            .map(|row| (row.get(0), row.get::<_, i64>(1) as u64))
            .collect(),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the application connects");
    tokio::spawn(connection);
    client
}

/// Stores every emit from an emitter that runs no listener.
async fn emit_all<S: Store>(store: S, kind: Kind, mode: Mode, location: &str, log: &Path) {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let builder = Emitter::builder().backend(backend);
    let emitter = with_listener(builder, kind, mode, location, RunLog::open(log))
        .await
        .start()
        .await
        .expect("the emitter starts");
    let mut emits = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let emitter = emitter.clone();
        emits.spawn(async move { emitter.emit_async(Numbered { n }).await });
    }
    while let Some(emitted) = emits.join_next().await {
        emitted.expect("the emit task ran").expect("stored");
    }
    emitter.shutdown().await.expect("shutdown");
}

/// Kills or stalls a worker each time another `EVENTS / (FAULTS + 1)` runs are logged, until
/// [`FAULTS`] faults; then waits until the store holds nothing unfinished. Returns the kills,
/// the stalls, and what the store holds (unfinished, dead).
async fn faults_until_settled<S: Store>(
    store: S,
    workers: &mut Workers,
    log: &Path,
) -> (usize, usize, (u64, u64)) {
    let deadline = Instant::now() + PATIENCE;
    let (mut kills, mut stalls) = (0, 0);
    let every = EVENTS as usize / (FAULTS + 1);
    let mut roll = mix(u64::from(std::process::id()), 1, 2);
    loop {
        assert!(
            Instant::now() < deadline,
            "the store still held deliveries after {PATIENCE:?}"
        );
        let counts = store.counts().await.expect("the store answers");
        if counts.unfinished() == 0 {
            return (kills, stalls, (counts.unfinished(), counts.dead));
        }
        if kills + stalls < FAULTS && RunLog::count(log) >= every * (kills + stalls + 1) {
            roll = mix(roll, 3, 4);
            let victim = (roll % WORKERS as u64) as usize;
            if roll.is_multiple_of(3) {
                workers.stall(victim).await;
                stalls += 1;
            } else {
                workers.kill(victim);
                workers.spawn();
                kills += 1;
            }
        }
        workers.assert_running();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The worker processes.
/// The workers of one run: two at a time, a new one started for each one killed.
struct Workers {
    workers: children::Workers,
    env: Vec<(&'static str, String)>,
    started: usize,
}

impl Workers {
    fn new(kind: Kind, mode: Mode, location: &str, namespace: &str, dir: &Path) -> Workers {
        Workers {
            workers: children::Workers::new(CHILD, dir, PATIENCE),
            env: vec![
                (STORE, kind.name().to_owned()),
                (URL, location.to_owned()),
                (NAMESPACE, namespace.to_owned()),
                (MODE, mode.name().to_owned()),
                (DIR, dir.to_string_lossy().into_owned()),
            ],
            started: 0,
        }
    }

    /// Starts one more worker and waits until it is ready.
    fn spawn(&mut self) {
        self.started += 1;
        let id = format!("worker-{}", self.started);
        let mut env: Vec<(&str, &std::ffi::OsStr)> = self
            .env
            .iter()
            .map(|(name, value)| (*name, value.as_ref()))
            .collect();
        env.push((WORKER, id.as_ref()));
        self.workers.start(&id, &env);
        self.workers.wait_ready();
    }

    /// Panics, with its output, if a worker exited.
    fn assert_running(&mut self) {
        self.workers.assert_running();
    }

    /// Kills worker `index` with SIGKILL: no destructor, no rollback, no shutdown runs.
    fn kill(&mut self, index: usize) {
        let id = self.workers.id(index);
        self.workers.kill(&id);
    }

    /// Stops worker `index` with SIGSTOP for longer than its lease, then lets it go on: its
    /// leases run out meanwhile, and it resumes mid-transaction with deliveries another worker
    /// may have claimed.
    async fn stall(&mut self, index: usize) {
        let pid = self.workers.pid(&self.workers.id(index)).to_string();
        let signal = |name: &str| {
            let status = Command::new("kill")
                .args([name, &pid])
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill {name} {pid} failed");
        };
        signal("-STOP");
        tokio::time::sleep(STALL).await;
        signal("-CONT");
    }

    /// Closes the workers' stdin, which shuts them down, and waits until they exited.
    fn stop(&mut self) {
        self.workers.stop();
    }
}
