//! A process killed with SIGKILL in the middle of its deliveries loses no event of the SQLite
//! store: restarted on the same file, it delivers the rest, and runs again only the deliveries
//! that had run without being acknowledged when it died.
//!
//! The test binary runs itself twice as a child process (`crash_child`, a test that does nothing
//! unless [`MODE`] is set): phase 1 stores [`EVENTS`] events and delivers until the parent kills
//! it, phase 2 reopens the file and delivers until nothing is left. Every listener run appends
//! `n attempt` to a log file before it returns, so the log holds every run, whoever ran it.

#![cfg(unix)]

use std::fs::File;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{Counts, Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use emitter_tests::children::{self, runtime, RunLog, SIGKILL};

/// Events emitted by phase 1.
const EVENTS: u64 = 3_000;

/// How long each delivery takes after it logged itself. With [`MAX_IN_FLIGHT`] this paces phase
/// 1 to about `EVENTS / MAX_IN_FLIGHT * DELIVERY_TIME` = 375 ms of deliveries, so that the
/// parent, polling the log, kills the child well before the end.
const DELIVERY_TIME: Duration = Duration::from_millis(2);

/// Deliveries the child runs at once.
const MAX_IN_FLIGHT: usize = 16;

/// Receipts the engine acknowledges in one store call (`durable::engine::acknowledge`).
const ACK_BATCH: usize = 512;

/// How long the parent waits for a child to reach a point: a liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(120);

/// Set in a child's environment to what it does: [`EMIT`] or [`DRAIN`].
const MODE: &str = "EMITTER_SQLITE_CRASH_MODE";
/// Set in a child's environment to the directory of the database, the log and the marker.
const DIR: &str = "EMITTER_SQLITE_CRASH_DIR";
/// Phase 1: store the events, write the marker, deliver until killed.
const EMIT: &str = "emit";
/// Phase 2: deliver until the store is settled, then shut down and exit.
const DRAIN: &str = "drain";

/// The child test's name, for `--exact`.
const CHILD: &str = "crash_child";

#[derive(Event, Debug, Clone)]
#[event(id = "sqlite_crash.numbered")]
pub struct Numbered {
    pub n: u64,
}

#[listener(events = [Numbered], name = "sqlite_crash.record")]
async fn record(n: u64, meta: EventMeta, State(log): State<RunLog>) {
    // Logged before returning `Ok`: a line means the listener ran, acknowledged or not.
    log.append(&format!("{n} {}", meta.attempt()));
    tokio::time::sleep(DELIVERY_TIME).await;
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn db(&self) -> PathBuf {
        self.dir.join("events.db")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("deliveries.log")
    }

    /// Written by phase 1 once every event is stored.
    fn emitted(&self) -> PathBuf {
        self.dir.join("emitted")
    }

    fn output(&self, phase: &str) -> PathBuf {
        self.dir.join(format!("{phase}.out"))
    }
}

// ---------------------------------------------------------------------------------------------
// The child.

/// The child process of [`sigkill_mid_delivery_loses_no_event`]; returns at once unless its
/// environment says which phase to run.
#[test]
fn crash_child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let files = Files {
        dir: PathBuf::from(std::env::var_os(DIR).expect("the parent sets the directory")),
    };
    match mode.as_str() {
        EMIT => runtime().block_on(emit_then_deliver(&files)),
        DRAIN => runtime().block_on(drain(&files)),
        other => panic!("unknown mode `{other}`"),
    }
}

async fn start(files: &Files) -> (Emitter, Durable<SqliteStore>) {
    let store = SqliteStore::open(files.db()).expect("the database opens");
    let config = DurableConfig::default()
        .lease(Duration::from_millis(800))
        .poll_interval(Duration::from_millis(50))
        .max_in_flight(MAX_IN_FLIGHT);
    let backend = Durable::with_config(store, config);
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .state(RunLog::open(&files.log()))
        .backend(backend.clone())
        .start()
        .await
        .expect("the emitter starts");
    (emitter, backend)
}

async fn emit_then_deliver(files: &Files) {
    let (emitter, _backend) = start(files).await;
    // All at once, so that the engine's writer stores them in batches while deliveries begin.
    let mut emits = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let emitter = emitter.clone();
        emits.spawn(async move { emitter.emit_async(Numbered { n }).await });
    }
    while let Some(emitted) = emits.join_next().await {
        emitted.expect("the emit task ran").expect("stored");
    }
    File::create(files.emitted()).expect("the marker is written");
    // Deliver until killed; a parent that never kills is a failure it reports.
    tokio::time::sleep(PATIENCE).await;
    panic!("phase 1 was not killed within {PATIENCE:?}");
}

async fn drain(files: &Files) {
    let (emitter, backend) = start(files).await;
    tokio::time::timeout(PATIENCE, backend.wait_settled())
        .await
        .expect("the store settles")
        .expect("the store answers");
    emitter.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// The parent.

#[test]
fn sigkill_mid_delivery_loses_no_event() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = Files {
        dir: dir.path().to_path_buf(),
    };
    let started = Instant::now();

    // Phase 1: kill the child once every event is stored and a quarter of them delivered.
    let mut child = spawn_child(&files, EMIT);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if files.emitted().exists() && RunLog::count(&files.log()) as u64 >= EVENTS / 4 {
            break;
        }
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            panic!(
                "phase 1 exited before it was killed ({status}):\n{}",
                children::read_output(&files.output(EMIT))
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "phase 1 did not store its events and deliver a quarter of them within \
                 {PATIENCE:?}; {} log lines:\n{}",
                RunLog::count(&files.log()),
                children::read_output(&files.output(EMIT))
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no shutdown runs.
    child.kill().expect("the child is killed");
    let status = child.wait().expect("the killed child is reaped");
    assert_eq!(
        children::signal(status),
        Some(SIGKILL),
        "phase 1 ended otherwise than by SIGKILL: {status}"
    );
    let phase1 = started.elapsed();

    let at_kill = RunLog::attempts(&files.log());
    let ran_at_kill = at_kill.len() as u64;
    assert!(
        at_kill.values().all(|runs| runs.len() == 1),
        "phase 1 ran a delivery twice before the kill"
    );
    assert!(
        ran_at_kill < EVENTS,
        "the kill came after every delivery had run ({ran_at_kill} of {EVENTS}): it was not \
         mid-run"
    );
    let stored_at_kill = store_counts(&files);
    let unacked = stored_at_kill.unfinished();
    let acknowledged = EVENTS - unacked;
    // Every acknowledged delivery logged itself first, so those that ran without being
    // acknowledged are the difference; phase 2 must run exactly these a second time.
    let ran_unacknowledged = ran_at_kill.checked_sub(acknowledged).unwrap_or_else(|| {
        panic!(
            "{acknowledged} deliveries were acknowledged but only {ran_at_kill} ran: an \
             acknowledgement came before its listener ran"
        )
    });

    // Phase 2: the same file, no emits; deliver what is left.
    let phase2_started = Instant::now();
    let mut child = spawn_child(&files, DRAIN);
    let output = files.output(DRAIN);
    let status = children::wait(&mut child, PATIENCE, "finish phase 2", &output);
    assert!(
        status.success(),
        "phase 2 failed ({status}):\n{}",
        children::read_output(&output)
    );
    let phase2 = phase2_started.elapsed();

    let runs = RunLog::attempts(&files.log());
    let lost: Vec<u64> = (0..EVENTS).filter(|n| !runs.contains_key(n)).collect();
    let delivered: u64 = runs.values().map(|runs| runs.len() as u64).sum();
    let duplicates = delivered - runs.len() as u64;
    let retried = runs
        .values()
        .flatten()
        .filter(|&&attempt| attempt > 1)
        .count();
    let most = runs.values().map(Vec::len).max().unwrap_or(0);
    println!(
        "sqlite_crash: events={EVENTS} lost={} delivered={delivered} duplicates={duplicates} \
         attempts>1={retried} | at kill: ran={ran_at_kill} acknowledged={acknowledged} \
         unfinished={unacked} (leased={} waiting={}) ran_unacknowledged={ran_unacknowledged} | \
         phase1={phase1:.2?} phase2={phase2:.2?} total={:.2?}",
        lost.len(),
        stored_at_kill.leased,
        stored_at_kill.waiting,
        started.elapsed()
    );

    assert!(lost.is_empty(), "{} events lost: {lost:?}", lost.len());
    assert!(
        runs.keys().all(|n| *n < EVENTS),
        "the log names events never emitted"
    );
    assert!(most <= 2, "a delivery ran {most} times across one crash");
    assert_eq!(
        duplicates, ran_unacknowledged,
        "phase 2 must run again exactly the deliveries that ran but were not acknowledged at \
         the kill, and no acknowledged one"
    );
    // The bound on what a crash runs twice: what had run without its acknowledgement being
    // committed. That is deliveries still running (at most `MAX_IN_FLIGHT`: each holds a
    // permit) plus finished ones whose receipts the acker had not committed yet. Finished
    // deliveries hold no permit and the acker's queue has no limit, so no setting bounds the
    // second group strictly; the acker commits up to `ACK_BATCH` receipts per transaction, and
    // the group exceeds one batch only if more than `ACK_BATCH` deliveries finish while one
    // acknowledgement waits and commits. Each claim brings at most `MAX_IN_FLIGHT`, and claims
    // and acknowledgements contend for the SQLite store's one connection: that would take more
    // than `ACK_BATCH / MAX_IN_FLIGHT` (32) claims committed during one acknowledgement. Hence
    // in flight plus one batch. The exact number is checked above; this catches an engine whose
    // acknowledgements fall behind its claims, multiplying the redeliveries of every crash.
    let bound = (MAX_IN_FLIGHT + ACK_BATCH) as u64;
    assert!(
        duplicates <= bound,
        "{duplicates} deliveries ran twice, more than the {MAX_IN_FLIGHT} in flight plus one \
         acknowledgement batch of {ACK_BATCH}"
    );
    assert!(
        retried as u64 >= duplicates,
        "every second run carries attempt 2 or more"
    );

    let settled = store_counts(&files);
    assert_eq!(
        (settled.waiting, settled.leased, settled.dead),
        (0, 0, 0),
        "the store holds deliveries after phase 2"
    );
}

fn spawn_child(files: &Files, mode: &str) -> Child {
    let env = [(MODE, mode.as_ref()), (DIR, files.dir.as_os_str())];
    children::command(CHILD, &env, &files.output(mode))
        .spawn()
        .expect("the child starts")
}

/// The store's counts, read through a connection of this process (the child is not running).
fn store_counts(files: &Files) -> Counts {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let store = SqliteStore::open(files.db()).expect("the database opens");
    runtime.block_on(store.counts()).expect("the store counts")
}
