//! Pausing a listener through one worker's store stops its deliveries on every worker of that
//! store, while its emits keep being stored and the other listeners keep running; resuming lets
//! the workers deliver what waited. Once on PostgreSQL, once on Redis (the stores shared by
//! several processes).
//!
//! The workers are two emitters in this process, each with a store connection of its own: to
//! the store they are two processes. The contract suite's
//! `a_paused_listener_is_claimed_by_no_handle_until_resumed` checks the same promise claim by
//! claim; this test checks it through the engine, as an operator sees it.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use emitter::durable::postgres::PostgresConfig;
use emitter::durable::redis::RedisConfig;
use emitter::durable::{Admin, Durable, DurableConfig};
use emitter::{listener, listeners, Emitter, Event, EventMeta, State};
use emitter_tests::servers::{Postgres, Redis};
use tokio::sync::mpsc;

const PAUSED: &str = "pause_across.paused";
const STEADY: &str = "pause_across.steady";

/// Events per batch.
const BATCH: u64 = 20;

/// How long after `pause` returns a worker may still start one of the listener's deliveries
/// (one it had claimed before): the promise.
const GRACE: Duration = Duration::from_secs(2);

/// How long to wait for deliveries that must come: a liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

const NAMESPACE: &str = "pause_across";

#[derive(Event, Debug, Clone)]
#[event(id = "pause_across.tick")]
pub struct Tick {
    pub n: u64,
}

/// One run of a listener.
#[derive(Debug)]
struct Run {
    listener: String,
    n: u64,
    at: Instant,
}

/// Where every run of every worker is told.
#[derive(Clone)]
struct Runs(mpsc::UnboundedSender<Run>);

impl Runs {
    fn tell(&self, n: u64, meta: &EventMeta) {
        // The receiver lives as long as the test.
        let _ = self.0.send(Run {
            listener: meta.listener().to_owned(),
            n,
            at: Instant::now(),
        });
    }
}

#[listener(events = [Tick], name = "pause_across.paused")]
async fn paused(n: u64, meta: EventMeta, State(runs): State<Runs>) {
    runs.tell(n, &meta);
}

#[listener(events = [Tick], name = "pause_across.steady")]
async fn steady(n: u64, meta: EventMeta, State(runs): State<Runs>) {
    runs.tell(n, &meta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_on_one_worker_stops_the_listener_on_every_worker_on_postgres() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url();
    pause_and_resume(|| {
        let url = url.clone();
        async move {
            PostgresConfig::new(url)
                .schema(NAMESPACE)
                .connect()
                .await
                .expect("the store connects")
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_on_one_worker_stops_the_listener_on_every_worker_on_redis() {
    let Some(server) = Redis::start() else { return };
    let url = server.url();
    pause_and_resume(|| {
        let url = url.clone();
        async move {
            RedisConfig::new(url)
                .prefix(NAMESPACE)
                .connect()
                .await
                .expect("the store connects")
        }
    })
    .await;
}

/// Every run told so far, in the order told.
struct Seen {
    runs: mpsc::UnboundedReceiver<Run>,
    all: Vec<Run>,
}

impl Seen {
    /// Reads runs until `listener` has run every one of `ns` (counting runs read before).
    async fn wait_for(&mut self, listener: &str, ns: std::ops::Range<u64>) {
        let mut missing: BTreeSet<u64> = ns.collect();
        for run in &self.all {
            if run.listener == listener {
                missing.remove(&run.n);
            }
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !missing.is_empty() {
            let run = tokio::time::timeout_at(deadline, self.runs.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("{listener} did not run {missing:?} within {PATIENCE:?}")
                })
                .expect("the workers run");
            if run.listener == listener {
                missing.remove(&run.n);
            }
            self.all.push(run);
        }
    }
}

async fn pause_and_resume<S, F>(open: impl Fn() -> F)
where
    S: Admin,
    F: Future<Output = S>,
{
    let (tell, runs) = mpsc::unbounded_channel();
    let mut seen = Seen {
        runs,
        all: Vec::new(),
    };
    let mut workers = Vec::new();
    for id in ["one", "two"] {
        let backend = Durable::with_config(open().await, DurableConfig::default().worker_id(id));
        let emitter = Emitter::builder()
            .listeners(listeners![paused, steady])
            .state(Runs(tell.clone()))
            .backend(backend.clone())
            .start()
            .await
            .expect("the worker starts");
        workers.push((emitter, backend));
    }
    let producer = Emitter::builder()
        .listeners(listeners![paused, steady])
        .state(Runs(tell))
        .backend(Durable::with_config(
            open().await,
            DurableConfig::default().deliver(false),
        ))
        .start()
        .await
        .expect("the producer starts");
    let emit = |ns: std::ops::Range<u64>| {
        let producer = producer.clone();
        async move {
            for n in ns {
                producer.emit_async(Tick { n }).await.expect("stored");
            }
        }
    };

    emit(0..BATCH).await;
    seen.wait_for(PAUSED, 0..BATCH).await;
    seen.wait_for(STEADY, 0..BATCH).await;
    let before = seen.all.len();

    assert!(workers[0]
        .1
        .store()
        .pause(PAUSED)
        .await
        .expect("the pause is stored"));
    let paused_at = Instant::now();
    emit(BATCH..2 * BATCH).await;
    seen.wait_for(STEADY, BATCH..2 * BATCH).await;
    // Past the grace period, the workers still claim (the steady listener's deliveries) and
    // still hand out nothing of the paused listener.
    tokio::time::sleep_until((paused_at + GRACE).into()).await;
    emit(2 * BATCH..3 * BATCH).await;
    seen.wait_for(STEADY, 2 * BATCH..3 * BATCH).await;

    let late: Vec<&Run> = seen.all[before..]
        .iter()
        .filter(|run| run.listener == PAUSED && (run.n >= BATCH || run.at > paused_at + GRACE))
        .collect();
    assert!(
        late.is_empty(),
        "the paused listener ran on a worker after the pause: {late:?}"
    );
    let counts = workers[1]
        .1
        .store()
        .listener_counts()
        .await
        .expect("the counts are read");
    let waiting = counts
        .iter()
        .find(|counts| counts.listener == PAUSED)
        .map(|counts| counts.waiting);
    assert_eq!(
        waiting,
        Some(2 * BATCH),
        "the paused listener's emits are stored, waiting: {counts:?}"
    );

    assert!(workers[1]
        .1
        .store()
        .resume(PAUSED)
        .await
        .expect("the resume is stored"));
    seen.wait_for(PAUSED, BATCH..3 * BATCH).await;

    producer.shutdown().await.expect("the producer stops");
    for (emitter, _) in workers {
        emitter.shutdown().await.expect("the worker stops");
    }
}
