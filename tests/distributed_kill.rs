//! Three worker processes deliver from one store; one is killed with SIGKILL a quarter of the way
//! through. The two others finish, taking over the dead worker's deliveries once its leases
//! expire: no delivery is lost, and only deliveries the dead worker had run without their
//! acknowledgement reaching the store run twice. Once on Redis, once on PostgreSQL.
//!
//! The workers are this test binary run again (`kill_worker`, a test that does nothing unless
//! [`WORKER`] is set). This process emits [`EVENTS`] events from an emit-only emitter. Every
//! listener run appends `n listener worker attempt` to a log file shared by all processes before
//! it returns, so the log holds every run, whoever ran it and whether or not it was acknowledged.

#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use emitter_tests::children::{self, runtime, Kind, RunLog, Workers};
use emitter_tests::servers::{Postgres, Redis};
use emitter_tests::with_store;

/// Events emitted; each is one delivery to each of [`LISTENERS`].
const EVENTS: u64 = 3_000;

/// The listeners of [`Numbered`].
const LISTENERS: [&str; 2] = ["distributed_kill.first", "distributed_kill.second"];

/// Worker processes.
const WORKERS: usize = 3;

/// The workers' lease: short, so that the survivors take the dead worker's deliveries over soon.
const LEASE: Duration = Duration::from_secs(1);

/// Deliveries a worker runs at once.
const MAX_IN_FLIGHT: usize = 16;

/// How long a delivery takes after it logged itself (a timer of 1 ms: 1 to 2 ms).
const DELIVERY_TIME: Duration = Duration::from_millis(1);

/// How long to wait for a worker or the store to reach a point: a liveness bound, not a speed
/// check.
const PATIENCE: Duration = Duration::from_secs(120);

/// The key prefix (Redis) or schema (PostgreSQL): each test has a server of its own.
const NAMESPACE: &str = "distributed_kill";

/// Set in a worker's environment to its id.
const WORKER: &str = "EMITTER_DISTRIBUTED_KILL_WORKER";
/// Set in a worker's environment to `redis` or `postgres`.
const STORE: &str = "EMITTER_DISTRIBUTED_KILL_STORE";
/// Set in a worker's environment to the server's URL.
const URL: &str = "EMITTER_DISTRIBUTED_KILL_URL";
/// Set in a worker's environment to the directory of the log and the ready markers.
const DIR: &str = "EMITTER_DISTRIBUTED_KILL_DIR";

/// The worker test's name, for `--exact`.
const CHILD: &str = "kill_worker";

#[derive(Event, Debug, Clone)]
#[event(id = "distributed_kill.numbered")]
pub struct Numbered {
    pub n: u64,
}

/// The log every run appends to, shared through `State`, with the id of the process.
#[derive(Clone)]
struct Log {
    runs: RunLog,
    worker: String,
}

impl Log {
    fn open(path: &Path, worker: &str) -> Log {
        Log {
            runs: RunLog::open(path),
            worker: worker.to_owned(),
        }
    }

    fn append(&self, n: u64, meta: &EventMeta) {
        self.runs.append(&format!(
            "{n} {} {} {}",
            meta.listener(),
            self.worker,
            meta.attempt()
        ));
    }
}

// Logged before returning `Ok`: a line means the listener ran, acknowledged or not.
#[listener(events = [Numbered], name = "distributed_kill.first")]
async fn first(n: u64, meta: EventMeta, State(log): State<Log>) {
    log.append(n, &meta);
    tokio::time::sleep(DELIVERY_TIME).await;
}

#[listener(events = [Numbered], name = "distributed_kill.second")]
async fn second(n: u64, meta: EventMeta, State(log): State<Log>) {
    log.append(n, &meta);
    tokio::time::sleep(DELIVERY_TIME).await;
}

// ---------------------------------------------------------------------------------------------
// The worker.

/// A worker process of [`survive_a_kill`]; returns at once unless [`WORKER`] is set. Delivers
/// until killed, or until its stdin closes (then it shuts down and exits).
#[test]
fn kill_worker() {
    let Ok(id) = std::env::var(WORKER) else {
        return;
    };
    let env = |name: &str| std::env::var(name).expect("the parent sets the worker's environment");
    let kind = Kind::parse(&env(STORE));
    let url = env(URL);
    let dir = PathBuf::from(env(DIR));
    runtime().block_on(async {
        with_store!(kind, &url, NAMESPACE, |store| serve(store, &id, &dir).await);
    });
}

async fn serve<S: Store>(store: S, id: &str, dir: &Path) {
    let config = DurableConfig::default()
        .lease(LEASE)
        .poll_interval(Duration::from_millis(50))
        .max_in_flight(MAX_IN_FLIGHT)
        .worker_id(id);
    let emitter = Emitter::builder()
        .listeners(listeners![first, second])
        .state(Log::open(&dir.join("deliveries.log"), id))
        .backend(Durable::with_config(store, config))
        .start()
        .await
        .expect("the emitter starts");
    children::serve_until_stdin_closes(emitter, &dir.join(format!("{id}.ready"))).await;
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// The two tests take turns: six worker processes and two servers at once on a small machine
/// would only make each run's timing noisier.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_worker_killed_mid_run_loses_no_delivery_on_redis() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Redis::start() else { return };
    survive_a_kill(Kind::Redis, &server.url());
}

#[test]
fn a_worker_killed_mid_run_loses_no_delivery_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Postgres::start() else {
        return;
    };
    survive_a_kill(Kind::Postgres, &server.url());
}

/// One run of a listener, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    worker: String,
    attempt: u32,
}

fn survive_a_kill(kind: Kind, url: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("deliveries.log");
    File::create(&log).expect("the log is created");
    let started = Instant::now();
    let mut workers = start_workers(kind, url, dir.path());
    workers.wait_ready();
    let ready = started.elapsed();

    let kill = runtime().block_on(async {
        with_store!(kind, url, NAMESPACE, |store| emit_kill_settle(
            store,
            &mut workers,
            &log
        )
        .await)
    });
    let survivors = workers.stop();

    let runs = read_log(&log);
    let total = EVENTS * LISTENERS.len() as u64;
    let expected: BTreeSet<(u64, String)> = (0..EVENTS)
        .flat_map(|n| LISTENERS.map(|listener| (n, listener.to_owned())))
        .collect();
    let lost: Vec<&(u64, String)> = expected
        .iter()
        .filter(|pair| !runs.contains_key(pair))
        .collect();
    let strays: Vec<&(u64, String)> = runs
        .keys()
        .filter(|pair| !expected.contains(pair))
        .collect();
    let delivered: u64 = runs.values().map(|runs| runs.len() as u64).sum();
    let duplicates = delivered - runs.len() as u64;
    let repeated: Vec<(&(u64, String), &Vec<Run>)> =
        runs.iter().filter(|(_, runs)| runs.len() > 1).collect();
    let redelivered = runs
        .values()
        .flatten()
        .filter(|run| run.attempt > 1)
        .count();
    let mut by_worker: BTreeMap<&str, u64> = BTreeMap::new();
    for run in runs.values().flatten() {
        *by_worker.entry(run.worker.as_str()).or_default() += 1;
    }
    let killed_runs = by_worker.get(kill.worker.as_str()).copied().unwrap_or(0);
    // Deliveries the killed worker had claimed but not started: a survivor ran them first, as a
    // later attempt.
    let never_started = runs
        .values()
        .filter(|runs| runs[0].worker != kill.worker && runs[0].attempt > 1)
        .count();
    println!(
        "distributed_kill on {}: events={EVENTS} deliveries={total} lost={} duplicates={duplicates} \
         runs={delivered} attempts>1={redelivered} | killed {} at {} of {total} runs logged \
         (its runs: {killed_runs}, ran twice: {duplicates}, claimed but not started: \
         {never_started}) | by worker: {by_worker:?} | workers ready in {ready:.2?}, emitted in \
         {:.2?}, killed at {:.2?}, settled {:.2?} after the kill, survivors stopped in \
         {survivors:.2?}, total {:.2?}",
        kind.name(),
        lost.len(),
        kill.worker,
        kill.ran_at_kill,
        kill.emitted,
        kill.at,
        kill.settled,
        started.elapsed()
    );

    assert!(lost.is_empty(), "{} deliveries lost: {lost:?}", lost.len());
    assert!(
        strays.is_empty(),
        "the log names deliveries never emitted: {strays:?}"
    );
    assert!(
        kill.ran_at_kill < total as usize,
        "the kill came after every delivery had run ({} of {total}): it was not mid-run",
        kill.ran_at_kill
    );
    assert!(
        killed_runs > 0,
        "the killed worker had run nothing: the kill proved nothing"
    );
    // A delivery runs twice only when the killed worker ran it and its acknowledgement never
    // reached the store: the store handed it to a survivor once the dead worker's lease expired,
    // as the next attempt. A survivor runs each delivery once: it keeps extending its leases.
    for ((n, listener), runs) in &repeated {
        assert!(
            runs.len() == 2
                && runs[0].worker == kill.worker
                && runs[1].worker != kill.worker
                && runs[1].attempt > runs[0].attempt,
            "delivery ({n}, {listener}) ran other than once by the killed worker and then once by \
             a survivor as a later attempt: {runs:?}"
        );
    }
    // What the killed worker held at its death, and so what the survivors ran again: every
    // delivery it had claimed and not yet acknowledged (not started, running, or finished with
    // its acknowledgement queued or on its way). Each holds one of its `MAX_IN_FLIGHT` permits
    // until the acknowledgement is stored, and a claim asks for no more than the free permits,
    // so at most `MAX_IN_FLIGHT` deliveries run again, whatever the store's latency.
    let held = duplicates as usize + never_started;
    assert!(
        held <= MAX_IN_FLIGHT,
        "{held} deliveries of the killed worker ran again ({duplicates} it had run, \
         {never_started} it had not started), more than the {MAX_IN_FLIGHT} it could hold"
    );
}

/// What happened around the kill.
struct Kill {
    /// The worker killed.
    worker: String,
    /// Runs logged, all workers together, once it was dead.
    ran_at_kill: usize,
    /// How long storing the events took.
    emitted: Duration,
    /// When the worker was killed, from the first emit.
    at: Duration,
    /// How long the survivors took from the kill until the store held nothing unfinished.
    settled: Duration,
}

/// Emits every event from an emitter that runs no listener; kills the busiest worker once a
/// quarter of the deliveries ran; waits until the store holds nothing unfinished.
async fn emit_kill_settle<S: Store>(store: S, workers: &mut Workers, log: &Path) -> Kill {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let emitter = Emitter::builder()
        .listeners(listeners![first, second])
        // Start checks that every listener's state is provided, even where none runs.
        .state(Log::open(log, "parent"))
        .backend(backend.clone())
        .start()
        .await
        .expect("the emitter starts");
    let started = Instant::now();
    let emitting = tokio::spawn({
        let emitter = emitter.clone();
        async move {
            // All at once, so that the engine's writer stores them in batches.
            let mut emits = tokio::task::JoinSet::new();
            for n in 0..EVENTS {
                let emitter = emitter.clone();
                emits.spawn(async move { emitter.emit_async(Numbered { n }).await });
            }
            while let Some(emitted) = emits.join_next().await {
                emitted.expect("the emit task ran").expect("stored");
            }
            started.elapsed()
        }
    });

    let quarter = EVENTS as usize * LISTENERS.len() / 4;
    let deadline = Instant::now() + PATIENCE;
    while RunLog::count(log) < quarter {
        workers.assert_running();
        assert!(
            Instant::now() < deadline,
            "a quarter of the deliveries did not run within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut busiest: BTreeMap<String, usize> = BTreeMap::new();
    for run in read_log(log).into_values().flatten() {
        *busiest.entry(run.worker).or_default() += 1;
    }
    let worker = busiest
        .into_iter()
        .max_by_key(|(_, runs)| *runs)
        .map(|(worker, _)| worker)
        .expect("someone ran something");
    workers.kill(&worker);
    let at = started.elapsed();
    let ran_at_kill = RunLog::count(log);

    let emitted = tokio::time::timeout(PATIENCE, emitting)
        .await
        .expect("every event is stored")
        .expect("the emitting task ran");
    let killed = Instant::now();
    tokio::time::timeout(PATIENCE, backend.wait_settled())
        .await
        .expect("the survivors finish every delivery")
        .expect("the store answers");
    let settled = killed.elapsed();
    emitter.shutdown().await.expect("shutdown");
    Kill {
        worker,
        ran_at_kill,
        emitted,
        at,
        settled,
    }
}

/// The worker processes.
/// Starts the [`WORKERS`] worker processes on the store of `kind` at `url`, without waiting.
fn start_workers(kind: Kind, url: &str, dir: &Path) -> Workers {
    let mut workers = Workers::new(CHILD, dir, PATIENCE);
    for number in 1..=WORKERS {
        let id = format!("worker-{number}");
        let env = [
            (WORKER, id.as_ref()),
            (STORE, kind.name().as_ref()),
            (URL, url.as_ref()),
            (DIR, dir.as_os_str()),
        ];
        workers.start(&id, &env);
    }
    workers
}

/// The runs in the log, by (n, listener), in the order they were logged.
fn read_log(log: &Path) -> BTreeMap<(u64, String), Vec<Run>> {
    let lines = RunLog::read(log, |line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let [n, listener, worker, attempt] = fields[..] else {
            return None;
        };
        Some((
            n.parse().ok()?,
            listener.to_owned(),
            worker.to_owned(),
            attempt.parse().ok()?,
        ))
    });
    let mut runs: BTreeMap<(u64, String), Vec<Run>> = BTreeMap::new();
    for (n, listener, worker, attempt) in lines {
        runs.entry((n, listener))
            .or_default()
            .push(Run { worker, attempt });
    }
    runs
}
