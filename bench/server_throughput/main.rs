//! The emitter on its PostgreSQL and Redis stores against raw clients, end to end, with worker
//! processes.
//!
//! ```sh
//! cargo run --release -p emitter-bench --features postgres,redis --example server_throughput
//! cargo run --release -p emitter-bench --features postgres,redis --example server_throughput -- \
//!     --quick
//! # Servers of your own instead of private ones (their data is left alone but for the run's keys
//! # and schemas, which are dropped afterwards):
//! cargo run --release -p emitter-bench --features postgres,redis --example server_throughput -- \
//!     --redis-url redis://127.0.0.1:6379/ --postgres-url postgres://me@127.0.0.1/bench
//! ```
//!
//! The code is in files by concern: `cli` (arguments), `coordinator` (rounds, checks, the
//! table), `produce` (the producer and the run's namespaces), `workers` (worker processes),
//! `cpu` (readings from `/proc`), `stats` (tallies and medians), one baseline per server
//! (`postgres_baseline`, `redis_baseline`) and `servers` (the private servers).
//!
//! Each run stores N events (20,000; `--quick`: 3,000), delivers each to one trivial listener
//! (it records the event's number) in **W worker processes** (1, 2 and 4), and deletes it; the
//! time runs, on the coordinating process's clock, from the first event until that process sees
//! the store settled (nothing waiting, nothing leased), polling every 10 ms as
//! [`Durable::wait_settled`] does. The producer is the coordinating process; the workers are this
//! program run again with a `worker` argument, started and ready (connected, schema in place)
//! before the clock starts.
//!
//! - **emitter**: the producer is an emit-only emitter (`DurableConfig::deliver(false)`) that
//!   `emit`s each event (on `EmitError::Full`, `emit_async`), waits until they are all stored
//!   (`wait_idle`), then `wait_settled()`. Each worker is an emitter over `Durable` with the
//!   default `DurableConfig` but `max_in_flight(256)`, so that the engine's claims (at most
//!   `1 + min(free permits, 255)`) can be as large as the baseline's; the stores are
//!   `PostgresConfig::new(url).schema(..).connect()` (4 pooled connections, the default) and
//!   `RedisConfig::new(url).prefix(..).connect()`. tokio's multi-thread
//!   runtime everywhere, as an application would run it.
//! - **baseline, PostgreSQL**: what one would write by hand with the same driver
//!   (`tokio-postgres`, no TLS) with the store's own schema and statements, taken from the store
//!   (`emitter::durable::postgres::statements`, hidden from the docs) rather than copied: the
//!   producer inserts batches of 512 (the engine's writer batch) with the store's insert of
//!   batches without idempotency keys (one `unnest` statement that also `pg_notify`s); each
//!   worker claims up to 256 rows with the store's `FOR UPDATE SKIP LOCKED` claim, decodes them,
//!   and deletes them with the store's acknowledgement, one claim after the other; when a claim finds nothing it waits
//!   for a notification (`LISTEN`, on a second connection, as the store) or 500 ms (the engine's
//!   poll interval).
//! - **baseline, Redis**: the store's layout (its `listener_key`, a stream with one
//!   consumer group named after the listener; fields `event`, `emit`, `at`, `payload`,
//!   `attempts`) with plain commands on one multiplexed connection: the producer pipelines 512
//!   `XADD`s per round trip; each worker reads up to 256 entries with `XREADGROUP ... BLOCK 500`
//!   (the engine's poll interval), decodes them, and acknowledges them with `XACK` and `XDEL` (the
//!   store's acknowledgement deletes entries too) in one pipelined round trip.
//!
//! The private servers this program starts (unless given URLs) persist nothing durably, for
//! both sides alike: PostgreSQL with `fsync=off` (commits are written, never flushed), Redis with
//! neither snapshots nor an append-only file. PostgreSQL comes from `$EMITTER_PG_BIN`, else the
//! newest `/usr/lib/postgresql/<version>/bin`; as root it runs as the `postgres` user.
//!
//! The two sides alternate which runs first, for 3 rounds (`--quick`: 1) after a warm-up round,
//! per backend and worker count; the program prints each round, the medians, and a table of the
//! ratio of the medians, emitter/baseline. Every run is checked: every event delivered (the
//! emitter at least once, duplicates counted and shown; the baseline exactly once), the store
//! empty at the end, no listener failure. A mismatch makes the program exit with status 1.
//!
//! Each round also shows the run's phases (all stored, first and last delivery, settled) and the
//! CPU time of the producer, the workers and the private server (with PostgreSQL's backends),
//! from `/proc`: on a small machine the server's CPU is often what bounds both sides.
//! `--profile` adds one emitter run per backend and worker count through a store wrapper that
//! counts and times the engine's calls (each is one round trip to the server). `--side emitter`
//! (or `baseline`) runs one side alone, to watch it with `perf` or the server's statistics;
//! `--backend`, `--workers 1,2`, `--events` and `--rounds` narrow a run.

mod cli;
mod coordinator;
mod cpu;
mod postgres_baseline;
mod produce;
mod redis_baseline;
mod servers;
mod stats;
mod workers;

use std::process::ExitCode;
use std::time::Duration;

use emitter::{listener, Event, State};

use cli::{Options, USAGE};
use coordinator::coordinate;
use stats::Tally;
use workers::worker_main;

const EVENTS: u64 = 20_000;
const QUICK_EVENTS: u64 = 3_000;
const ROUNDS: usize = 3;
const QUICK_ROUNDS: usize = 1;
const WORKERS: [usize; 3] = [1, 2, 4];

/// Events per insert: the engine's writer batch (`durable::engine::write`).
const INSERT_BATCH: usize = 512;

/// The most deliveries one claim takes: the engine's cap (`1 + min(free permits, 255)`).
const CLAIM_LIMIT: usize = 256;

/// The workers' `max_in_flight`: high enough for the engine's claims to reach [`CLAIM_LIMIT`]
/// (with the default, 64, they stop at 64).
const MAX_IN_FLIGHT: usize = 256;

/// The engine's default lease, which the baseline's claims take too.
const LEASE: Duration = Duration::from_secs(30);

/// How long an idle worker waits for a wake-up before it looks again: the engine's default
/// `poll_interval`.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// How often the producer looks whether the store settled: `Durable::wait_settled`'s period.
const SETTLE_POLL: Duration = Duration::from_millis(10);

/// A run that takes longer than this has hung (a lost delivery, a store that never settles).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How long a worker process may take to connect and say it is ready, or to report and exit.
const WORKER_LIMIT: Duration = Duration::from_secs(60);

/// How the coordinator hands a worker the server's URL: not on the command line, where `ps`
/// would show a password.
const URL_ENV: &str = "SERVER_THROUGHPUT_URL";

const LISTENER: &str = "server_throughput.count";
const EVENT_ID: &str = "server_throughput.tick";

#[derive(Event, Debug, Clone)]
#[event(id = "server_throughput.tick")]
pub struct Tick {
    pub n: u64,
}

#[listener(events = [Tick], name = "server_throughput.count")]
async fn count(n: u64, State(tally): State<Tally>) {
    tally.add(n);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker_main(&args[1..]);
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("server_throughput: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match coordinate(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("server_throughput: FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}
