//! A poison message, a delivery whose listener aborts its worker process every time it runs, is
//! dead-lettered alone: the worker is restarted after each crash (as a supervisor would), the
//! poison's crashes pile up until the crash-loop guard dead-letters it, and every other delivery,
//! those that were claimed in the same batch as the poison included, is delivered. Once on each
//! store, with the default `max_in_flight`.
//!
//! The workers are this test binary run again (`poison_worker`, a test that does nothing unless
//! [`STORE`] is set); this process stores the events first, then starts a worker after each crash
//! until one settles the store. Every listener run appends `n attempt` to a log file before it
//! returns (or aborts), so the log holds every run, whatever became of the process.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use emitter::durable::{Counts, DeadLetter, Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use emitter_tests::children::{self, runtime, Kind, RunLog, SIGABRT};
use emitter_tests::servers::{Postgres, Redis};
use emitter_tests::with_store;

/// Events stored; one of them is the poison.
const EVENTS: u64 = 400;

/// The poison: among the oldest, so that the first claim takes it with hundreds of others.
const POISON: u64 = 150;

/// The workers' lease: short, so that a crashed worker's deliveries are claimed again soon.
const LEASE: Duration = Duration::from_secs(1);

/// The crash-loop guard's allowance beyond the listener's one attempt (the default).
const EXTRA_CLAIMS: u32 = 5;

/// Worker runs at most: the poison's crashes and one run that settles the store, with room to
/// spare for a worker that crashes for another reason (which the assertions then catch).
const MAX_RUNS: usize = 3 * (EXTRA_CLAIMS as usize + 2);

/// How long a worker or the store may take to reach a point: a liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(120);

/// The key prefix (Redis) or schema (PostgreSQL): each test has a server of its own.
const NAMESPACE: &str = "poison_message";

/// Set in a worker's environment to `sqlite`, `postgres` or `redis`.
const STORE: &str = "EMITTER_POISON_STORE";
/// Set in a worker's environment to the database file (SQLite) or the server's URL.
const LOCATION: &str = "EMITTER_POISON_LOCATION";
/// Set in a worker's environment to the directory of the log.
const DIR: &str = "EMITTER_POISON_DIR";

/// The worker test's name, for `--exact`.
const CHILD: &str = "poison_worker";

#[derive(Event, Debug, Clone)]
#[event(id = "poison_message.numbered")]
pub struct Numbered {
    pub n: u64,
}

#[listener(events = [Numbered], name = "poison_message.record")]
async fn record(n: u64, meta: EventMeta, State(log): State<RunLog>) {
    log.append(&format!("{n} {}", meta.attempt()));
    if n == POISON {
        // What a stack overflow, a native library's assertion or an OOM kill does: the whole
        // process goes, no unwinding, no destructor.
        std::process::abort();
    }
}

// ---------------------------------------------------------------------------------------------
// The worker.

/// A worker process of [`poison_is_dead_lettered_alone`]; returns at once unless [`STORE`] is
/// set. Delivers until the store holds nothing unfinished (then it shuts down and exits), or
/// until the poison aborts it.
#[test]
fn poison_worker() {
    let Ok(kind) = std::env::var(STORE) else {
        return;
    };
    let env = |name: &str| std::env::var(name).expect("the parent sets the worker's environment");
    let location = env(LOCATION);
    let dir = PathBuf::from(env(DIR));
    runtime().block_on(async {
        with_store!(Kind::parse(&kind), &location, NAMESPACE, |store| serve(
            store, &dir
        )
        .await);
    });
}

async fn serve<S: Store>(store: S, dir: &Path) {
    let config = DurableConfig::default()
        .lease(LEASE)
        .poll_interval(Duration::from_millis(50))
        .extra_claims(EXTRA_CLAIMS);
    let backend = Durable::with_config(store, config);
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .state(RunLog::open(&dir.join("deliveries.log")))
        .backend(backend.clone())
        .start()
        .await
        .expect("the emitter starts");
    tokio::time::timeout(PATIENCE, backend.wait_settled())
        .await
        .expect("the store settles")
        .expect("the store answers");
    emitter.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// The tests take turns: a crash-looping worker and a server per test at once on a small machine
/// would only make each run slower.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_poison_message_is_dead_lettered_alone_on_sqlite() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("events.db");
    poison_is_dead_lettered_alone(Kind::Sqlite, &file.to_string_lossy());
}

#[test]
fn a_poison_message_is_dead_lettered_alone_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Postgres::start() else {
        return;
    };
    poison_is_dead_lettered_alone(Kind::Postgres, &server.url());
}

#[test]
fn a_poison_message_is_dead_lettered_alone_on_redis() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Redis::start() else { return };
    poison_is_dead_lettered_alone(Kind::Redis, &server.url());
}

fn poison_is_dead_lettered_alone(kind: Kind, location: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("deliveries.log");
    let started = Instant::now();
    runtime().block_on(async {
        with_store!(kind, location, NAMESPACE, |store| store_events(store, &log)
            .await)
    });

    // The supervisor: a new worker after each crash, until one settles the store.
    let mut crashes = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(
            runs <= MAX_RUNS,
            "{runs} worker runs did not settle the store; the last one's output:\n{}",
            children::read_output(&output(dir.path(), runs - 1))
        );
        let status = run_worker(kind, location, dir.path(), runs);
        if status.success() {
            break;
        }
        assert_eq!(
            children::signal(status),
            Some(SIGABRT),
            "worker run {runs} ended otherwise than by the poison's abort ({status}):\n{}",
            children::read_output(&output(dir.path(), runs))
        );
        crashes += 1;
    }

    let (letters, counts) = runtime()
        .block_on(async { with_store!(kind, location, NAMESPACE, |store| inspect(&store).await) });
    let runs_by_event = RunLog::attempts(&log);
    let poison_runs = runs_by_event.get(&POISON).map_or(0, Vec::len);
    let missing: Vec<u64> = (0..EVENTS)
        .filter(|n| *n != POISON && !runs_by_event.contains_key(n))
        .collect();
    let ran_twice = runs_by_event
        .iter()
        .filter(|(n, runs)| **n != POISON && runs.len() > 1)
        .count();
    let most = runs_by_event
        .iter()
        .filter(|(n, _)| **n != POISON)
        .map(|(_, runs)| runs.len())
        .max()
        .unwrap_or(0);
    let reasons: Vec<(u64, &str)> = letters
        .iter()
        .map(|letter| (number_of(letter), letter.reason.as_str()))
        .collect();
    println!(
        "poison_message on {}: events={EVENTS} dead={} worker runs={runs} crashes={crashes} \
         poison ran {poison_runs} times | others: missing={} ran twice={ran_twice} most runs={most} \
         | total {:.2?} | dead letters: {reasons:?}",
        kind.name(),
        letters.len(),
        missing.len(),
        started.elapsed(),
    );

    assert_eq!(
        letters.len(),
        1,
        "exactly one dead letter, the poison: {reasons:?}"
    );
    let letter = &letters[0];
    assert_eq!(number_of(letter), POISON, "the dead letter is the poison");
    let crashed = EXTRA_CLAIMS + 1;
    assert!(
        letter.reason.contains(&format!("died {crashed} times")),
        "the reason says how many times the poison's worker died: {:?}",
        letter.reason
    );
    assert!(
        missing.is_empty(),
        "{} deliveries never ran: {missing:?}",
        missing.len()
    );
    assert!(
        most <= 2,
        "a delivery beside the poison runs at most twice (in the poison's first batch, then \
         alone), not once per crash: one ran {most} times"
    );
    assert_eq!(
        (poison_runs, crashes),
        (crashed as usize, crashed as usize),
        "the poison ran, and crashed its worker, once per claim before the guard's"
    );
    assert_eq!(
        (counts.waiting, counts.leased, counts.dead),
        (0, 0, 1),
        "the store holds the dead letter and nothing else"
    );
}

/// Stores every event from an emitter that runs no listener.
async fn store_events<S: Store>(store: S, log: &Path) {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        // Start checks that every listener's state is provided, even where none runs.
        .state(RunLog::open(log))
        .backend(backend)
        .start()
        .await
        .expect("the emitter starts");
    for n in 0..EVENTS {
        emitter.emit_async(Numbered { n }).await.expect("stored");
    }
    emitter.shutdown().await.expect("shutdown");
}

async fn inspect<S: Store>(store: &S) -> (Vec<DeadLetter>, Counts) {
    let letters = store.dead_letters(100).await.expect("dead letters listed");
    let counts = store.counts().await.expect("the store counts");
    (letters, counts)
}

/// The `n` of the event a dead letter carries.
fn number_of(letter: &DeadLetter) -> u64 {
    let value: serde_json::Value =
        serde_json::from_slice(&letter.event.payload).expect("the payload is JSON");
    value["n"].as_u64().expect("the payload has `n`")
}

/// Runs a worker until it exits.
fn run_worker(kind: Kind, location: &str, dir: &Path, run: usize) -> std::process::ExitStatus {
    let output = output(dir, run);
    let env = [
        (STORE, kind.name().as_ref()),
        (LOCATION, location.as_ref()),
        (DIR, dir.as_os_str()),
    ];
    let mut child = children::command(CHILD, &env, &output)
        .spawn()
        .expect("the worker starts");
    children::wait(
        &mut child,
        PATIENCE,
        &format!("settle the store or crash (worker run {run})"),
        &output,
    )
}

fn output(dir: &Path, run: usize) -> PathBuf {
    dir.join(format!("worker-{run}.out"))
}
