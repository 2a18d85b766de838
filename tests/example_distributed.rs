//! The `distributed` example: three worker processes share one store, and each of the 200 orders
//! is charged once and gets one receipt, the deliveries spread across the workers.
//!
//! The example's parent starts its workers by running a program; here that program is this test
//! binary, whose `distributed_worker` test runs the example's worker when [`WORKER_ARGS`] is set
//! (and does nothing otherwise).

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the tests call its functions"
)]
#[path = "../examples/distributed.rs"]
pub mod example;

use std::process::Command;

use emitter_tests::servers::Redis;

/// The worker's arguments, one a line, in a worker process.
const WORKER_ARGS: &str = "EMITTER_EXAMPLE_DISTRIBUTED_WORKER";

/// The worker entry point's test name, for `--exact`.
const WORKER: &str = "distributed_worker";

/// A worker process of [`run`]; returns at once unless [`WORKER_ARGS`] is set.
#[test]
fn distributed_worker() {
    let Ok(args) = std::env::var(WORKER_ARGS) else {
        return;
    };
    let args: Vec<String> = args.lines().map(str::to_owned).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(example::worker(&args)).unwrap();
}

fn launch(args: &[String]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", WORKER, "--nocapture", "--test-threads", "1"])
        .env(WORKER_ARGS, args.join("\n"));
    command
}

async fn run(server: example::Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = example::Config {
        server,
        events: 200,
        workers: 3,
        log: dir.path().join("deliveries.log"),
    };
    let summary = example::run(&config, &launch).await.unwrap();
    assert!(
        summary.missing.is_empty(),
        "never delivered: {:?}",
        summary.missing
    );
    assert!(
        summary.repeated.is_empty(),
        "delivered twice: {:?}",
        summary.repeated
    );
    assert!(
        summary.strays.is_empty(),
        "unexpected log lines: {:?}",
        summary.strays
    );
    assert_eq!(summary.delivered(), 400);
    assert!(summary.exactly_once());
    // Every worker was ready before the first emit, and 400 deliveries of 10 ms, 8 at a time,
    // keep one worker busy for half a second: the others take some.
    assert!(
        summary.by_worker.len() >= 2,
        "one worker ran every delivery: {:?}",
        summary.by_worker
    );
    assert!(
        summary
            .by_worker
            .keys()
            .all(|worker| worker.starts_with("worker-")),
        "{:?}",
        summary.by_worker
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_redis_share_the_deliveries_exactly_once() {
    let Some(redis) = Redis::start() else { return };
    run(example::Server::Redis(redis.url())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_postgres_share_the_deliveries_exactly_once() {
    let Some(postgres) = emitter_tests::servers::Postgres::start() else {
        return;
    };
    run(example::Server::Postgres(postgres.url())).await;
}
