//! Emits are bounded while the store is away: `emit_async`, and the storing that `emit` leaves to
//! the background, give up at `DurableConfig::emit_timeout` with an error that says what is
//! known. A stopped server refuses the connection: the event was not stored. A frozen server
//! takes the write and never answers: it may or may not be stored, and the error carries the
//! emit id and idempotency key, so that emitting again with the key stores the event once.
//! A shutdown deadline during an outage names every delivery it leaves unstored.
//!
//! The figures are printed; the checks on time are a lower bound (the emit was retried until its
//! deadline, not refused at the first failure) and a wide upper one.

use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, EmitError, EmitId, EmitOptions, Emitter, Event};
use emitter_tests::children::{postgres_store, redis_store};
use emitter_tests::servers::{Postgres, Redis, RedisOptions, Restartable};

/// The emit timeout of these tests.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Far more than [`TIMEOUT`]: an emit that waited this long was not bounded by it.
const UNBOUNDED: Duration = Duration::from_secs(15);

/// The key prefix (Redis) or schema (PostgreSQL).
const NAMESPACE: &str = "store_outage";

#[derive(Event, Debug, Clone)]
#[event(id = "store_outage.order")]
pub struct Order {
    pub n: u64,
}

#[listener(events = [Order], name = "store_outage.record")]
async fn record(n: u64) {
    let _ = n;
}

/// An emit-only emitter over `store`: what the store holds stays there to be counted.
async fn producer<S: Store>(store: S) -> (Emitter, Durable<S>) {
    let backend = Durable::with_config(
        store,
        DurableConfig::default()
            .deliver(false)
            .emit_timeout(TIMEOUT),
    );
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .backend(backend.clone())
        .start()
        .await
        .expect("the emitter starts");
    (emitter, backend)
}

async fn postgres(url: &str) -> impl Store {
    postgres_store(url, NAMESPACE).await
}

async fn redis(url: &str) -> impl Store {
    redis_store(url, NAMESPACE).await
}

/// Emits order `n` with the idempotency key `order-n`; returns the result and how long it took.
async fn emit_keyed(emitter: &Emitter, n: u64) -> (Result<(), emitter::BackendError>, Duration) {
    let started = Instant::now();
    let result = emitter
        .emit_async_with(
            Order { n },
            EmitOptions::new().idempotency_key(format!("order-{n}")),
        )
        .await;
    let took = started.elapsed();
    let result = match result {
        Ok(_) => Ok(()),
        Err(EmitError::Backend { source, .. }) => Err(source),
        Err(other) => panic!("emit {n} failed otherwise than by the store: {other}"),
    };
    (result, took)
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_to_a_stopped_postgres_fails_at_its_deadline_as_not_stored() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    let (emitter, backend) = producer(postgres(&server.url()).await).await;
    stopped_server("postgres", &emitter, &backend, &mut server).await;
    assert_stored_once(&backend, 2).await;
    emitter.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_to_a_stopped_redis_fails_at_its_deadline_as_not_stored() {
    let Some(mut server) = Redis::start_with(RedisOptions { append_only: true }) else {
        return;
    };
    let (emitter, backend) = producer(redis(&server.url()).await).await;
    stopped_server("redis", &emitter, &backend, &mut server).await;
    assert_stored_once(&backend, 2).await;
    emitter.shutdown().await.expect("shutdown");
}

/// Order 0 is stored; the server stops; order 1 fails at its deadline as not stored; the server
/// comes back and order 1 is emitted again.
///
/// A call of the store fails first, so that the client has seen its connection die: a write on
/// a connection that dies under it is in doubt (with Redis, the client cannot tell a command
/// that never left from one the server ran before it went away), and the emit with it.
async fn stopped_server<S: Store>(
    name: &str,
    emitter: &Emitter,
    backend: &Durable<S>,
    server: &mut impl Restartable,
) {
    let (stored, _) = emit_keyed(emitter, 0).await;
    stored.expect("order 0 is stored while the server runs");
    tokio::task::block_in_place(|| server.stop());
    backend
        .counts()
        .await
        .expect_err("the store cannot count while its server is stopped");
    let (refused, took) = emit_keyed(emitter, 1).await;
    let error = refused.expect_err("order 1 is refused while the server is stopped");
    println!("store_outage on {name}: emit_async to a stopped server failed after {took:?} (emit timeout {TIMEOUT:?}): {error}");
    assert!(
        !error.is_in_doubt(),
        "a server that refused the connection stored nothing: {error}"
    );
    assert!(error.to_string().contains("was not stored"), "{error}");
    assert_eq!(error.idempotency_key(), Some("order-1"), "{error}");
    assert!(error.emit_id().is_some(), "{error}");
    assert!(
        took >= TIMEOUT,
        "the emit was retried until its deadline, not refused at once: {took:?}"
    );
    assert!(took < UNBOUNDED, "the emit waited {took:?}");
    tokio::task::block_in_place(|| server.restart());
    let (again, _) = emit_keyed(emitter, 1).await;
    again.expect("order 1 is stored once the server is back");
}

/// The store holds `waiting` deliveries and nothing else: each order once.
async fn assert_stored_once<S: Store>(backend: &Durable<S>, waiting: u64) {
    let counts = backend.counts().await.expect("the store counts");
    assert_eq!(
        (counts.waiting, counts.leased, counts.dead),
        (waiting, 0, 0),
        "each order is stored once"
    );
}

/// A frozen Redis takes the write and does not answer: the emit fails at its deadline, in doubt,
/// with its idempotency key. Once the server thaws it runs the write it took; emitting again
/// with the key leaves one delivery in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_to_a_frozen_redis_fails_at_its_deadline_in_doubt_and_a_retry_with_its_key_stores_it_once(
) {
    let Some(server) = Redis::start_with(RedisOptions::default()) else {
        return;
    };
    let (emitter, backend) = producer(redis(&server.url()).await).await;
    let (stored, _) = emit_keyed(&emitter, 0).await;
    stored.expect("order 0 is stored while the server runs");
    let pid = server.pid().expect("the server runs");
    signal(pid, "STOP");
    let (result, took) = emit_keyed(&emitter, 1).await;
    signal(pid, "CONT");
    let error = result.expect_err("order 1 is not confirmed while the server is frozen");
    println!("store_outage on redis: emit_async to a frozen server failed after {took:?} (emit timeout {TIMEOUT:?}): {error}");
    assert!(
        error.is_in_doubt(),
        "the write was sent and not answered: it may be stored: {error}"
    );
    assert!(
        error.to_string().contains("may or may not be stored"),
        "{error}"
    );
    assert_eq!(error.idempotency_key(), Some("order-1"), "{error}");
    assert!(error.emit_id().is_some(), "{error}");
    assert!(
        took >= TIMEOUT,
        "the emit waited for its deadline: {took:?}"
    );
    assert!(took < UNBOUNDED, "the emit waited {took:?}");
    let (again, _) = emit_keyed(&emitter, 1).await;
    again.expect("order 1 is stored once the server answers again");
    assert_stored_once(&backend, 2).await;
    emitter.shutdown().await.expect("shutdown");
}

/// `emit` returns at once; the background storing gives up at the deadline too: each delivery of
/// an event given up fails for good without running (attempt 0), which the error hook hears with
/// the reason, and a shutdown without a deadline returns soon after it although the server never
/// comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_storing_gives_up_at_the_deadline_and_tells_the_error_hook() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    let heard = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::clone(&heard);
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .on_error(move |error| {
            hook.lock().unwrap_or_else(PoisonError::into_inner).push((
                error.emit_id,
                error.attempt,
                error.failure.to_string(),
            ));
        })
        .backend(Durable::with_config(
            postgres(&server.url()).await,
            DurableConfig::default()
                .deliver(false)
                .emit_timeout(TIMEOUT),
        ))
        .start()
        .await
        .expect("the emitter starts");
    tokio::task::block_in_place(|| server.stop());
    let mut emitted = Vec::new();
    for n in 0..10 {
        emitted.push(emitter.emit(Order { n }).expect("accepted"));
    }
    let started = Instant::now();
    let report = tokio::time::timeout(UNBOUNDED, emitter.shutdown())
        .await
        .expect("the shutdown is not held up by the outage past the emit timeout")
        .expect("shutdown");
    println!(
        "store_outage on postgres: a shutdown with 10 emits unstorable returned after {:?}: {report}",
        started.elapsed()
    );
    assert_eq!(report.failed(), 10, "{report}");
    let heard = heard.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut named: Vec<EmitId> = heard.iter().map(|(emit_id, _, _)| *emit_id).collect();
    named.sort_unstable();
    emitted.sort_unstable();
    assert_eq!(named, emitted, "the hook hears of each emit given up");
    for (_, attempt, failure) in &heard {
        assert_eq!(*attempt, 0, "it never ran");
        assert!(failure.contains("was not stored"), "{failure}");
    }
}

/// A shutdown deadline that passes while the server is away names every delivery of every emit
/// it could not store, by event, listener and emit id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_deadline_during_an_outage_names_every_unstored_delivery() {
    let Some(mut server) = Redis::start() else {
        return;
    };
    let store = redis(&server.url()).await;
    let backend = Durable::with_config(
        store,
        DurableConfig::default()
            .deliver(false)
            .emit_timeout(Duration::from_secs(60)),
    );
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .backend(backend)
        .start()
        .await
        .expect("the emitter starts");
    tokio::task::block_in_place(|| server.stop());
    let mut emitted = Vec::new();
    for n in 0..10 {
        emitted.push(emitter.emit(Order { n }).expect("accepted"));
    }
    let report = emitter
        .shutdown_timeout(Duration::from_millis(500))
        .await
        .expect("shutdown");
    println!("store_outage on redis: {report}");
    assert!(!report.is_complete(), "{report}");
    let row = report
        .delivery("store_outage.order", "store_outage.record")
        .expect("the listener's row");
    let mut named = row.queued.clone();
    named.sort_unstable();
    emitted.sort_unstable();
    assert_eq!(named, emitted, "every unstored delivery is named: {report}");
    let text = report.to_string();
    for emit_id in &emitted {
        assert!(text.contains(&emit_id.to_string()), "{emit_id} in {text}");
    }
}

/// An `emit_async` that waits for room in a full emitter during an outage is held to its deadline
/// too: room frees when the emits ahead of it are given up, and it fails, as not stored, instead
/// of waiting for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_async_waiting_for_room_during_an_outage_is_bounded() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    let backend = Durable::with_config(
        postgres(&server.url()).await,
        DurableConfig::default()
            .deliver(false)
            .emit_timeout(TIMEOUT),
    );
    let emitter = Emitter::builder()
        .listeners(listeners![record])
        .capacity(emitter::Capacity::Bounded(1))
        .backend(backend.clone())
        .start()
        .await
        .expect("the emitter starts");
    tokio::task::block_in_place(|| server.stop());
    backend
        .counts()
        .await
        .expect_err("the store cannot count while its server is stopped");
    emitter
        .emit(Order { n: 0 })
        .expect("accepted: the emitter has room for one");
    let (result, took) = emit_keyed(&emitter, 1).await;
    let error = result.expect_err("order 1 is not stored while the server is stopped");
    println!("store_outage on postgres: emit_async behind a full emitter failed after {took:?} (emit timeout {TIMEOUT:?}): {error}");
    assert!(!error.is_in_doubt(), "{error}");
    assert!(error.to_string().contains("was not stored"), "{error}");
    assert!(took < UNBOUNDED, "the emit waited {took:?}");
    emitter.shutdown().await.expect("shutdown");
}
