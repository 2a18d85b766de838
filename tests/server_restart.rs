//! The store's server goes away in the middle of a run and comes back: every emit the emitter
//! acknowledged (`emit_async` returned `Ok`: the event is stored) is delivered, the workers say
//! in their logs that the server is unreachable while it is away, and they resume by themselves.
//! Once on Redis (killed with SIGKILL, with `appendonly yes` and `appendfsync always`, so what it
//! acknowledged is on disk), once on PostgreSQL (stopped with a fast shutdown: open transactions
//! roll back, committed ones stay).
//!
//! In one process: an emit-only emitter that emits all along, paced, each `emit_async` bounded by
//! [`EMIT_TIMEOUT`] (while the server is away the engine's writer retries and `emit_async` waits;
//! an emit that timed out counts as not acknowledged, although the writer may store it later),
//! and two worker emitters, each with a store connection of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::redis::RedisConfig;
use emitter::durable::{Counts, Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use emitter_tests::servers::{Postgres, Redis, RedisOptions as ServerOptions};
use emitter_tests::LogCapture;
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;

/// How long one `emit_async` may take before it counts as not acknowledged. Generous for a
/// server on loopback, far shorter than the outage.
const EMIT_TIMEOUT: Duration = Duration::from_secs(1);

/// The pace of emits: one every this long, whatever the server does.
const EMIT_EVERY: Duration = Duration::from_millis(5);

/// The workers' lease: short, so that deliveries whose acknowledgement was lost in the outage
/// run again soon after it.
const LEASE: Duration = Duration::from_secs(1);

/// Emits acknowledged before the outage, and after it, before the run ends.
const ACKNOWLEDGED_EACH_SIDE: usize = 100;

/// Emits made during the outage that must have timed out before the server comes back.
const TIMED_OUT_DURING: usize = 10;

/// The shortest outage: longer than the engine's worker retries an acknowledgement (five tries,
/// about 3.4 s in all), so that some deliveries that ran just before the outage lose their
/// acknowledgement and must run again after it.
const OUTAGE: Duration = Duration::from_secs(5);

/// How long to wait for something that should happen well before: a liveness bound, not a speed
/// check.
const PATIENCE: Duration = Duration::from_secs(120);

/// The key prefix (Redis) or schema (PostgreSQL): each test has a server of its own.
const NAMESPACE: &str = "server_restart";

#[derive(Event, Debug, Clone)]
#[event(id = "server_restart.numbered")]
pub struct Numbered {
    pub n: u64,
}

/// The runs of the listener: for each event, who ran it, with which attempt.
type Runs = BTreeMap<u64, Vec<(&'static str, u32)>>;

/// Every run of the listener, shared by the workers; each worker's copy knows its name.
#[derive(Clone)]
struct Recorder {
    runs: Arc<Mutex<Runs>>,
    worker: &'static str,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            runs: Arc::default(),
            worker: "",
        }
    }

    fn named(&self, worker: &'static str) -> Recorder {
        Recorder {
            runs: Arc::clone(&self.runs),
            worker,
        }
    }

    fn runs(&self) -> Runs {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn delivered(&self) -> usize {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[listener(events = [Numbered], name = "server_restart.record")]
async fn record(n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder
        .runs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(n)
        .or_default()
        .push((recorder.worker, meta.attempt()));
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Every log line of the process. The engine's tasks run on the runtime's threads, so only a
/// global subscriber sees them; each test picks its lines by its server's address.
fn logs() -> &'static LogCapture {
    static LOGS: OnceLock<LogCapture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogCapture::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(logs.clone()))
            .expect("no other global subscriber");
        logs
    })
}

/// The two tests take turns, so that one's outage does not slow the other's run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_loses_no_acknowledged_emit() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(redis) = Redis::start_with(ServerOptions { append_only: true }) else {
        return;
    };
    let url = redis.url();
    let open = || async {
        RedisConfig::new(&url)
            .prefix(NAMESPACE)
            .connect()
            .await
            .expect("the store connects")
    };
    let stores = [open().await, open().await, open().await];
    outage(Server::Redis(redis), stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_loses_no_acknowledged_emit() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(postgres) = Postgres::start() else {
        return;
    };
    let url = postgres.url();
    let open = || async {
        PostgresConfig::new(&url)
            .schema(NAMESPACE)
            .connect()
            .await
            .expect("the store connects")
    };
    let stores: [PostgresStore; 3] = [open().await, open().await, open().await];
    outage(Server::Postgres(postgres), stores).await;
}

enum Server {
    Redis(Redis),
    Postgres(Postgres),
}

impl Server {
    fn name(&self) -> &'static str {
        match self {
            Server::Redis(_) => "redis",
            Server::Postgres(_) => "postgres",
        }
    }

    fn address(&self) -> String {
        let port = match self {
            Server::Redis(redis) => redis.port(),
            Server::Postgres(postgres) => postgres.port(),
        };
        format!("127.0.0.1:{port}")
    }

    /// Redis: SIGKILL. PostgreSQL: a fast shutdown.
    fn stop(&mut self) {
        // Blocking: waits for the process to go.
        tokio::task::block_in_place(|| match self {
            Server::Redis(redis) => redis.stop(),
            Server::Postgres(postgres) => postgres.stop(),
        });
    }

    fn restart(&mut self) {
        tokio::task::block_in_place(|| match self {
            Server::Redis(redis) => redis.restart(),
            Server::Postgres(postgres) => postgres.restart(),
        });
    }
}

/// Where the run is: before the outage, while the server stops, while it is away, after it
/// came back.
const BEFORE: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const AFTER: u8 = 3;

/// What became of the emits, by the phase each was made in.
#[derive(Default)]
struct Emits {
    /// `emit_async` returned `Ok`: stored.
    acknowledged: [BTreeSet<u64>; 4],
    /// `emit_async` did not return within [`EMIT_TIMEOUT`].
    timed_out: [BTreeSet<u64>; 4],
    /// `emit_async` returned an error.
    refused: Vec<(u64, String)>,
}

async fn outage<S: Store>(mut server: Server, [emitting, first, second]: [S; 3]) {
    let logs = logs();
    let address = server.address();
    let recorder = Recorder::new();
    let emit_only = Durable::with_config(emitting, DurableConfig::default().deliver(false));
    let emitter = start(emit_only.clone(), recorder.named("emitter")).await;
    let mut workers = Vec::new();
    let mut worker_backends = Vec::new();
    for (store, name) in [(first, "worker-1"), (second, "worker-2")] {
        let config = DurableConfig::default()
            .lease(LEASE)
            .poll_interval(Duration::from_millis(50))
            .worker_id(name);
        let backend = Durable::with_config(store, config);
        worker_backends.push(backend.clone());
        workers.push(start(backend, recorder.named(name)).await);
    }

    let phase = Arc::new(AtomicU8::new(BEFORE));
    let emits = Arc::new(Mutex::new(Emits::default()));
    let (stop_emitting, stopped) = watch::channel(false);
    let started = Instant::now();
    let emitting = tokio::spawn(keep_emitting(
        emitter.clone(),
        Arc::clone(&emits),
        Arc::clone(&phase),
        stopped,
    ));
    let count =
        |what: fn(&Emits) -> usize| what(&emits.lock().unwrap_or_else(PoisonError::into_inner));

    until("emits acknowledged and delivered before the outage", || {
        count(|emits| emits.acknowledged[BEFORE as usize].len()) >= ACKNOWLEDGED_EACH_SIDE
            && recorder.delivered() >= ACKNOWLEDGED_EACH_SIDE
    })
    .await;

    phase.store(STOPPING, Ordering::SeqCst);
    let down = Instant::now();
    server.stop();
    phase.store(DOWN, Ordering::SeqCst);
    let reported = |line: &emitter_tests::Logged| {
        line.level <= tracing::Level::WARN
            && line.text.contains("cannot claim deliveries")
            && line.text.contains(&address)
            && line.text.contains("unreachable")
    };
    until("a worker to log that the server is unreachable", || {
        logs.lines().iter().any(reported)
    })
    .await;
    until("emits made during the outage to time out", || {
        count(|emits| emits.timed_out[DOWN as usize].len()) >= TIMED_OUT_DURING
    })
    .await;
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    phase.store(AFTER, Ordering::SeqCst);
    server.restart();
    let outage = down.elapsed();

    let restarted = Instant::now();
    until("emits acknowledged after the restart", || {
        count(|emits| emits.acknowledged[AFTER as usize].len()) >= ACKNOWLEDGED_EACH_SIDE
    })
    .await;
    let recovered = restarted.elapsed();
    stop_emitting.send_replace(true);
    emitting.await.expect("the emitting task ran");

    // The emitter stores every emit it accepted before it shuts down, those whose `emit_async`
    // timed out included; then the workers finish what is stored.
    tokio::time::timeout(PATIENCE, emitter.shutdown())
        .await
        .expect("the emitter stores what it accepted")
        .expect("shutdown");
    let counts = settle(&worker_backends[0]).await;
    for worker in workers {
        worker.shutdown().await.expect("shutdown");
    }

    let emits = Arc::try_unwrap(emits)
        .ok()
        .expect("the emitting task is done")
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let acknowledged: BTreeSet<u64> = emits.acknowledged.iter().flatten().copied().collect();
    let timed_out: BTreeSet<u64> = emits.timed_out.iter().flatten().copied().collect();
    let runs = recorder.runs();
    let lost: Vec<u64> = acknowledged
        .iter()
        .filter(|n| !runs.contains_key(n))
        .copied()
        .collect();
    let delivered = runs.len();
    let run_count: usize = runs.values().map(Vec::len).sum();
    let duplicates = run_count - delivered;
    let timed_out_delivered = timed_out.iter().filter(|n| runs.contains_key(n)).count();
    let emitted = acknowledged.len() + timed_out.len() + emits.refused.len();
    let outage_lines: Vec<String> = logs
        .lines()
        .iter()
        .filter(|line| line.level <= tracing::Level::WARN && line.text.contains(&address))
        .map(|line| format!("{} {}", line.level, line.text))
        .collect();
    println!(
        "server_restart on {}: emitted={emitted} acknowledged={} (before={} stopping={} down={} \
         after={}) timed_out={} (stopping={} down={} after={}) refused={} | delivered={delivered} lost={} duplicates={duplicates} \
         timed-out-but-delivered={timed_out_delivered} dead={} | outage={outage:.2?} \
         {ACKNOWLEDGED_EACH_SIDE} acknowledged after the restart in {recovered:.2?}, total={:.2?} | {} warnings and errors naming \
         {address}, the first: {:?}",
        server.name(),
        acknowledged.len(),
        emits.acknowledged[BEFORE as usize].len(),
        emits.acknowledged[STOPPING as usize].len(),
        emits.acknowledged[DOWN as usize].len(),
        emits.acknowledged[AFTER as usize].len(),
        timed_out.len(),
        emits.timed_out[STOPPING as usize].len(),
        emits.timed_out[DOWN as usize].len(),
        emits.timed_out[AFTER as usize].len(),
        emits.refused.len(),
        lost.len(),
        counts.dead,
        started.elapsed(),
        outage_lines.len(),
        outage_lines.first(),
    );

    assert!(
        lost.is_empty(),
        "{} acknowledged emits were never delivered: {lost:?}",
        lost.len()
    );
    assert!(
        emits.refused.is_empty(),
        "emit_async failed instead of waiting for the store: {:?}",
        emits.refused
    );
    assert!(
        runs.keys().all(|n| *n < emitted as u64),
        "the listener ran for events never emitted"
    );
    assert_eq!(counts.dead, 0, "deliveries were dead-lettered");
}

async fn start<S: Store>(backend: Durable<S>, recorder: Recorder) -> Emitter {
    Emitter::builder()
        .listeners(listeners![record])
        .state(recorder)
        .backend(backend)
        .start()
        .await
        .expect("the emitter starts")
}

/// Emits one event every [`EMIT_EVERY`], each in a task of its own, and records what each
/// `emit_async` came to, until told to stop; then waits for the emits still waiting.
async fn keep_emitting(
    emitter: Emitter,
    emits: Arc<Mutex<Emits>>,
    phase: Arc<AtomicU8>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pending = tokio::task::JoinSet::new();
    let mut every = tokio::time::interval(EMIT_EVERY);
    for n in 0u64.. {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => break,
        }
        let emitter = emitter.clone();
        let emits = Arc::clone(&emits);
        let phase = phase.load(Ordering::SeqCst) as usize;
        pending.spawn(async move {
            let emitted =
                tokio::time::timeout(EMIT_TIMEOUT, emitter.emit_async(Numbered { n })).await;
            let mut emits = emits.lock().unwrap_or_else(PoisonError::into_inner);
            match emitted {
                Ok(Ok(_)) => emits.acknowledged[phase].insert(n),
                Err(_) => emits.timed_out[phase].insert(n),
                Ok(Err(error)) => {
                    emits.refused.push((n, error.to_string()));
                    true
                }
            };
        });
        while pending.try_join_next().is_some() {}
    }
    while pending.join_next().await.is_some() {}
}

/// Waits until `done`, checking every 10 ms; panics after [`PATIENCE`].
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the store holds nothing unfinished, through the errors of a store that is still
/// reconnecting; returns its counts.
async fn settle<S: Store>(backend: &Durable<S>) -> Counts {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts = backend.counts().await;
        if let Ok(counts) = counts {
            if counts.unfinished() == 0 {
                return counts;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the store did not settle within {PATIENCE:?}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
