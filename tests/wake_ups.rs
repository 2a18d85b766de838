//! Workers hear of new deliveries at once, not at their next poll: the first emits after a
//! worker starts (PostgreSQL's `LISTEN` is in place before the worker's first claim), and the
//! first emits after the store's server went away and came back (a worker whose wait failed asks
//! the server again every 100 ms, instead of sleeping out its poll interval).
//!
//! The poll interval is long ([`POLL`]), so that a worker that fell back on it is unmistakable:
//! each check is "well under the poll interval" ([`PROMPT`], a tenth of it), not a tight bound on
//! a shared machine. The figures are printed.

use std::time::{Duration, Instant};

use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, State};
use emitter_tests::children::{postgres_store, redis_store};
use emitter_tests::servers::{Postgres, Redis, RedisOptions, Restartable};
use tokio::sync::mpsc;

/// The workers' poll interval: what a missed wake-up would cost.
const POLL: Duration = Duration::from_secs(30);

/// What "at once" is held to: well under the poll interval.
const PROMPT: Duration = Duration::from_secs(3);

/// How long the server stays away: long enough for every wait on it to fail, and for a listener
/// that doubled its wait after each failed reconnection (from 100 ms to at most 5 s, as the
/// PostgreSQL store's did) to come back more than [`PROMPT`] after the server.
const OUTAGE: Duration = Duration::from_secs(7);

/// Workers started one after the other, each with an emit right after its start: the race lost
/// in about half the runs before the `LISTEN` came first.
const STARTS: usize = 5;

/// The key prefix (Redis) or schema (PostgreSQL).
const NAMESPACE: &str = "wake_ups";

#[derive(Event, Debug, Clone)]
#[event(id = "wake_ups.ping")]
pub struct Ping {
    pub n: u64,
}

/// Where the listener says which ping it got.
#[derive(Clone)]
struct Delivered(mpsc::UnboundedSender<u64>);

#[listener(events = [Ping], name = "wake_ups.record")]
async fn record(n: u64, State(delivered): State<Delivered>) {
    let _ = delivered.0.send(n);
}

/// An emitter over `store`: a worker with the long poll interval, or one that only emits.
async fn start<S: Store>(store: S, deliver: bool, delivered: &Delivered) -> Emitter {
    let config = DurableConfig::default()
        .poll_interval(POLL)
        .deliver(deliver);
    Emitter::builder()
        .listeners(listeners![record])
        .state(delivered.clone())
        .backend(Durable::with_config(store, config))
        .start()
        .await
        .expect("the emitter starts")
}

/// Stores ping `n` through `producer` and waits until a worker ran it; returns how long that
/// took from `since`.
async fn ping(
    producer: &Emitter,
    n: u64,
    delivered: &mut mpsc::UnboundedReceiver<u64>,
    since: Instant,
) -> Duration {
    producer.emit_async(Ping { n }).await.expect("stored");
    let waited = tokio::time::timeout(POLL * 2, async {
        while delivered.recv().await != Some(n) {}
    })
    .await;
    assert!(
        waited.is_ok(),
        "ping {n} was not delivered within {:?}",
        POLL * 2
    );
    since.elapsed()
}

async fn postgres(url: &str) -> impl Store {
    postgres_store(url, NAMESPACE).await
}

async fn redis(url: &str) -> impl Store {
    redis_store(url, NAMESPACE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_emits_after_a_worker_starts_wake_it_on_postgres() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (sender, mut delivered) = mpsc::unbounded_channel();
    let sender = Delivered(sender);
    let producer = start(postgres(&server.url()).await, false, &sender).await;
    let mut took = Vec::new();
    for n in 0..STARTS as u64 {
        let worker = start(postgres(&server.url()).await, true, &sender).await;
        // Right after the start: the worker's first claim found nothing, and only the
        // notification of this emit can wake it before its poll.
        took.push(ping(&producer, n, &mut delivered, Instant::now()).await);
        worker.shutdown().await.expect("shutdown");
    }
    println!("wake_ups on postgres: from emit to delivery, right after a worker's start: {took:?}");
    for (n, took) in took.iter().enumerate() {
        assert!(
            *took < PROMPT,
            "start {n}: the worker missed the notification and waited {took:?} (poll {POLL:?})"
        );
    }
    producer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_wakes_soon_after_postgres_is_back() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    let url = server.url();
    back_after_an_outage(
        "postgres",
        postgres(&url).await,
        postgres(&url).await,
        &mut server,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_wakes_soon_after_redis_is_back() {
    let Some(mut server) = Redis::start_with(RedisOptions { append_only: true }) else {
        return;
    };
    let url = server.url();
    back_after_an_outage("redis", redis(&url).await, redis(&url).await, &mut server).await;
}

/// A worker waits for work; its server stops for [`OUTAGE`] and starts again; a producer with a
/// store of its own emits at once. The worker runs the emit well before its poll interval.
async fn back_after_an_outage<S: Store>(
    name: &str,
    producing: S,
    working: S,
    server: &mut impl Restartable,
) {
    let (sender, mut delivered) = mpsc::unbounded_channel();
    let sender = Delivered(sender);
    let producer = start(producing, false, &sender).await;
    let worker = start(working, true, &sender).await;
    let before = ping(&producer, 0, &mut delivered, Instant::now()).await;

    // Blocking: each waits for the server's process.
    tokio::task::block_in_place(|| server.stop());
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(|| server.restart());
    let back = Instant::now();
    let after = ping(&producer, 1, &mut delivered, back).await;
    println!(
        "wake_ups on {name}: from emit to delivery before the outage {before:?}; from the \
         server's return (after {OUTAGE:?} away) to the delivery of an emit made then {after:?}"
    );
    assert!(
        after < PROMPT,
        "the worker ran the first emit {after:?} after the server was back (poll {POLL:?})"
    );
    producer.shutdown().await.expect("shutdown");
    worker.shutdown().await.expect("shutdown");
}

/// The Redis store's wait, begun while the server is away (its blocking read fails at once),
/// returns soon after the server is back, not at the end of its timeout: the worker then claims
/// what was stored and what was left leased while the server was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_failed_on_redis_returns_soon_after_the_server_is_back() {
    let Some(mut server) = Redis::start_with(RedisOptions { append_only: true }) else {
        return;
    };
    let store = redis_store(&server.url(), NAMESPACE).await;
    let setup = emitter::durable::Setup::new(
        vec![emitter::durable::Route {
            event_id: "wake_ups.ping",
            listeners: vec!["wake_ups.record"],
        }],
        Duration::from_secs(3600),
    );
    store.open(&setup).await.expect("the store opens");
    tokio::task::block_in_place(|| Restartable::stop(&mut server));
    let waiting = tokio::spawn(async move {
        store.wait_for_work(POLL).await;
        Instant::now()
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| Restartable::restart(&mut server));
    let back = Instant::now();
    let returned = tokio::time::timeout(POLL * 2, waiting)
        .await
        .expect("the wait returns by its timeout")
        .expect("the waiting task ran");
    let after = returned.saturating_duration_since(back);
    println!("wake_ups on redis: a wait begun while the server was away returned {after:?} after it was back");
    assert!(
        after < PROMPT,
        "the wait returned {after:?} after the server was back (its timeout: {POLL:?})"
    );
}
