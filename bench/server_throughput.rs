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
//!   `RedisStore::connect_with(url, RedisOptions::new().prefix(..))`. tokio's multi-thread
//!   runtime everywhere, as an application would run it.
//! - **baseline, PostgreSQL**: what one would write by hand with the same driver
//!   (`tokio-postgres`, no TLS) on the store's own schema (`schema_v1` of
//!   `emitter/src/durable/postgres.rs`, copied): the producer inserts batches of 512 (the
//!   engine's writer batch) with one `unnest` statement that also `pg_notify`s, as the store's
//!   insert does without its idempotency keys; each worker claims up to 256 rows with the store's
//!   own `FOR UPDATE SKIP LOCKED` statement, decodes them, and deletes them with the store's
//!   acknowledgement statement, one claim after the other; when a claim finds nothing it waits
//!   for a notification (`LISTEN`, on a second connection, as the store) or 500 ms (the engine's
//!   poll interval).
//! - **baseline, Redis**: the store's layout (`{prefix}:listener:{listener}`, a stream with one
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

use std::fmt;
use std::fs;
use std::future::poll_fn;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::redis::{RedisOptions, RedisStore};
use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, EmitError, Emitter, Event, State};
use emitter_bench::profile::{Profile, Profiled, Stats};
use emitter_tests::servers::{Postgres, Redis};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

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

/// What a worker's listener (or its baseline loop) records: how many events, their sum, which
/// numbers (to find duplicates and losses across processes), and when the first and the last
/// came (Unix nanoseconds, comparable across the processes of one machine).
#[derive(Clone)]
pub struct Tally(Arc<Seen>);

struct Seen {
    events: u64,
    count: AtomicU64,
    sum: AtomicU64,
    /// Numbers at or beyond `events`: not ours.
    strange: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
    bits: Vec<AtomicU64>,
}

impl Tally {
    fn new(events: u64) -> Tally {
        Tally(Arc::new(Seen {
            events,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            strange: AtomicU64::new(0),
            first_ns: AtomicU64::new(u64::MAX),
            last_ns: AtomicU64::new(0),
            bits: (0..events.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }))
    }

    fn add(&self, n: u64) {
        let seen = &self.0;
        let now = unix_nanos(SystemTime::now());
        seen.count.fetch_add(1, Ordering::Relaxed);
        seen.sum.fetch_add(n, Ordering::Relaxed);
        match usize::try_from(n / 64)
            .ok()
            .and_then(|word| seen.bits.get(word))
        {
            Some(word) if n < seen.events => {
                word.fetch_or(1 << (n % 64), Ordering::Relaxed);
            }
            _ => {
                seen.strange.fetch_add(1, Ordering::Relaxed);
            }
        }
        seen.first_ns.fetch_min(now, Ordering::Relaxed);
        seen.last_ns.fetch_max(now, Ordering::Relaxed);
    }

    fn report(&self, failed: u64, profile: Option<&Stats>) -> WorkerReport {
        let seen = &self.0;
        WorkerReport {
            count: seen.count.load(Ordering::Acquire),
            sum: seen.sum.load(Ordering::Acquire),
            strange: seen.strange.load(Ordering::Acquire),
            failed,
            first_ns: seen.first_ns.load(Ordering::Acquire),
            last_ns: seen.last_ns.load(Ordering::Acquire),
            cpu_ns: 0,
            bits: seen
                .bits
                .iter()
                .map(|word| word.load(Ordering::Acquire))
                .collect(),
            profile: profile.map(Stats::snapshot),
        }
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// `0 + 1 + ... + (n - 1)`: the sum of the numbers of `n` events.
fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

fn check(what: &str, got: u64, expected: u64) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, expected {expected}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
        }
    }

    fn parse(name: &str) -> Option<Backend> {
        match name {
            "redis" => Some(Backend::Redis),
            "postgres" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Emitter,
    Baseline,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Emitter => "emitter",
            Side::Baseline => "baseline",
        }
    }

    fn parse(name: &str) -> Option<Side> {
        match name {
            "emitter" => Some(Side::Emitter),
            "baseline" => Some(Side::Baseline),
            _ => None,
        }
    }
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

const USAGE: &str = "usage: server_throughput [--quick] [--profile] [--events N] [--rounds R] \
                     [--workers 1,2,4] [--backend redis|postgres] [--side emitter|baseline] \
                     [--redis-url URL] [--postgres-url URL]";

struct Options {
    events: u64,
    rounds: usize,
    workers: Vec<usize>,
    backends: Vec<Backend>,
    /// Both (the default), or one alone: to look at one side with `perf` or server statistics.
    sides: Vec<Side>,
    profile: bool,
    redis_url: Option<String>,
    postgres_url: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut quick = false;
        let mut events = None;
        let mut rounds = None;
        let mut options = Options {
            events: EVENTS,
            rounds: ROUNDS,
            workers: WORKERS.to_vec(),
            backends: vec![Backend::Redis, Backend::Postgres],
            sides: vec![Side::Emitter, Side::Baseline],
            profile: false,
            redis_url: None,
            postgres_url: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("`{arg}` needs a value"))
            };
            match arg.as_str() {
                "--quick" => quick = true,
                "--profile" => options.profile = true,
                "--events" => events = Some(number(arg, &value()?)?),
                "--rounds" => rounds = Some(number(arg, &value()?)?),
                "--workers" => {
                    options.workers = value()?
                        .split(',')
                        .map(|count| number(arg, count))
                        .collect::<Result<_, _>>()?;
                }
                "--backend" => {
                    let name = value()?;
                    let backend =
                        Backend::parse(&name).ok_or_else(|| format!("unknown backend `{name}`"))?;
                    options.backends = vec![backend];
                }
                "--side" => {
                    let name = value()?;
                    let side =
                        Side::parse(&name).ok_or_else(|| format!("unknown side `{name}`"))?;
                    options.sides = vec![side];
                }
                "--redis-url" => options.redis_url = Some(value()?),
                "--postgres-url" => options.postgres_url = Some(value()?),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        options.events = events.map_or(if quick { QUICK_EVENTS } else { EVENTS }, |n| n as u64);
        options.rounds = rounds.unwrap_or(if quick { QUICK_ROUNDS } else { ROUNDS });
        if options.workers.contains(&0) || options.events == 0 {
            return Err("workers and events must be at least 1".to_owned());
        }
        Ok(options)
    }
}

fn number(arg: &str, text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{arg}` takes a number, not `{text}`"))
}

// The coordinator. ------------------------------------------------------------------------------

/// Where one backend's server is, and the private server behind it, if we started it.
struct Target {
    backend: Backend,
    url: String,
    server: Option<Server>,
    description: String,
}

/// Runs every measurement; `Ok(false)` when some failed (they were reported as they failed).
fn coordinate(options: &Options) -> Result<bool, String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# server_throughput: {} events per run, {} round(s) after a warm-up round, emitter and \
         baseline alternating which goes first; worker processes {:?}; {cores} cores; eps = \
         events per second from the first event until the producer sees the store settled",
        options.events, options.rounds, options.workers
    );
    let mut targets = Vec::new();
    for &backend in &options.backends {
        let given = match backend {
            Backend::Redis => options.redis_url.clone(),
            Backend::Postgres => options.postgres_url.clone(),
        };
        let target = match given {
            Some(url) => Target {
                backend,
                url,
                server: None,
                description: "the server given by URL".to_owned(),
            },
            None => {
                let server = match backend {
                    Backend::Redis => Server::redis()?,
                    Backend::Postgres => Server::postgres()?,
                };
                Target {
                    backend,
                    url: server.url(),
                    description: server.description(),
                    server: Some(server),
                }
            }
        };
        println!("# {}: {}", backend.name(), target.description);
        targets.push(target);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot build the runtime: {error}"))?;
    let mut rows = Vec::new();
    let mut all_passed = true;
    for target in &targets {
        for &workers in &options.workers {
            let bench = Bench {
                runtime: &runtime,
                options,
                backend: target.backend,
                url: &target.url,
                server_pid: target.server.as_ref().and_then(Server::pid),
                workers,
            };
            match bench.measure() {
                Ok(row) => rows.push(row),
                Err(error) => {
                    all_passed = false;
                    eprintln!(
                        "server_throughput: FAILED: {} with {workers} worker(s): {error}",
                        target.backend.name()
                    );
                    rows.push(Row {
                        backend: target.backend,
                        workers,
                        emitter: f64::NAN,
                        baseline: f64::NAN,
                        failed: true,
                    });
                }
            }
        }
    }
    println!();
    println!("| backend | workers | emitter ev/s | baseline ev/s | ratio |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        let ratio = row.emitter / row.baseline;
        let ratio = if row.failed {
            "failed".to_owned()
        } else if ratio.is_nan() {
            "-".to_owned()
        } else if ratio < 0.5 {
            format!("{ratio:.2} (below 0.5)")
        } else {
            format!("{ratio:.2}")
        };
        println!(
            "| {} | {} | {} | {} | {ratio} |",
            row.backend.name(),
            row.workers,
            thousands(row.emitter),
            thousands(row.baseline)
        );
    }
    println!(
        "(medians of {} round(s); target ratio >= 0.5)",
        options.rounds
    );
    Ok(all_passed)
}

fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

struct Row {
    backend: Backend,
    workers: usize,
    emitter: f64,
    baseline: f64,
    failed: bool,
}

/// The measurements of one backend with one number of workers.
struct Bench<'a> {
    runtime: &'a Runtime,
    options: &'a Options,
    backend: Backend,
    url: &'a str,
    /// The private server's process, whose CPU time is measured.
    server_pid: Option<u32>,
    workers: usize,
}

/// One run's time to the end, and when its phases ended, from the first event.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Emitter: every emit stored (`wait_idle` returned). Baseline: the last insert returned.
    stored: Duration,
    /// A worker ran the first event.
    first: Duration,
    /// A worker ran the last event.
    delivered: Duration,
    /// The producer saw the store settled.
    total: Duration,
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored_ms={} first_ms={} delivered_ms={} done_ms={}",
            self.stored.as_millis(),
            self.first.as_millis(),
            self.delivered.as_millis(),
            self.total.as_millis()
        )
    }
}

/// A checked run.
struct Outcome {
    timing: Timing,
    cpu: Cpu,
    duplicates: u64,
    profile: Option<Profile>,
}

impl Outcome {
    fn eps(&self, events: u64) -> f64 {
        events as f64 / self.timing.total.as_secs_f64()
    }
}

impl Bench<'_> {
    fn measure(&self) -> Result<Row, String> {
        let events = self.options.events;
        let mut eps: [Vec<f64>; 2] = Default::default();
        for round in 0..=self.options.rounds {
            let mut order = self.options.sides.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            let mut outcomes: [Option<Outcome>; 2] = [None, None];
            for &side in &order {
                let outcome = self
                    .run(side, false)
                    .map_err(|error| format!("{}, round {round}: {error}", side.name()))?;
                outcomes[side as usize] = Some(outcome);
            }
            let label = if round == 0 {
                "warm-up".to_owned()
            } else {
                format!("round={round}")
            };
            let mut line = format!(
                "{} workers={} {label} first={}",
                self.backend.name(),
                self.workers,
                order[0].name()
            );
            for side in [Side::Emitter, Side::Baseline] {
                if let Some(outcome) = &outcomes[side as usize] {
                    line.push_str(&format!(
                        " {}_eps={:.0} ({} {} dups={})",
                        side.name(),
                        outcome.eps(events),
                        outcome.timing,
                        outcome.cpu,
                        outcome.duplicates
                    ));
                    if round > 0 {
                        eps[side as usize].push(outcome.eps(events));
                    }
                }
            }
            if let [Some(e), Some(b)] = &outcomes {
                line.push_str(&format!(" ratio={:.2}", e.eps(events) / b.eps(events)));
            }
            println!("{line}");
        }
        let [emitter, baseline] = eps.map(|mut samples| median(&mut samples));
        println!(
            "{} workers={} events={events} rounds={} emitter_eps_median={emitter:.0} \
             baseline_eps_median={baseline:.0} ratio={:.2}",
            self.backend.name(),
            self.workers,
            self.options.rounds,
            emitter / baseline
        );
        if self.options.profile {
            let profiled = self
                .run(Side::Emitter, true)
                .map_err(|error| format!("emitter, profiled: {error}"))?;
            println!(
                "profile: {} workers={} emitter_eps={:.0} ({} {}); store calls as the engine \
                 awaited them, producer and workers summed (each call is one round trip):",
                self.backend.name(),
                self.workers,
                profiled.eps(events),
                profiled.timing,
                profiled.cpu
            );
            if let Some(profile) = &profiled.profile {
                profile.print(events);
            }
        }
        Ok(Row {
            backend: self.backend,
            workers: self.workers,
            emitter,
            baseline,
            failed: false,
        })
    }

    /// One run of one side in a namespace of its own (a schema, a key prefix), dropped after.
    fn run(&self, side: Side, profile: bool) -> Result<Outcome, String> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let namespace = format!(
            "st{}_{}_{}_w{}_{}",
            std::process::id(),
            &self.backend.name()[..2],
            &side.name()[..1],
            self.workers,
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let events = self.options.events;
        self.runtime
            .block_on(prepare(self.backend, side, self.url, &namespace))?;
        let ran = (|| {
            let spec = WorkerSpec {
                backend: self.backend,
                side,
                url: self.url,
                namespace: &namespace,
                events,
                profile,
            };
            let mut workers = (0..self.workers)
                .map(|_| WorkerProcess::spawn(&spec))
                .collect::<Result<Vec<_>, _>>()?;
            let deadline = Instant::now() + WORKER_LIMIT;
            for worker in &mut workers {
                worker.wait_for("ready", deadline)?;
            }
            let server_before = self.server_pid.and_then(server_cpu);
            let producer_before = own_cpu();
            let produced = self.runtime.block_on(produce(
                self.backend,
                side,
                self.url,
                &namespace,
                events,
                profile,
            ))?;
            let producer = own_cpu()
                .zip(producer_before)
                .map(|(after, before)| after.saturating_sub(before));
            let reports = finish(workers)?;
            let server = server_before
                .zip(self.server_pid.and_then(server_cpu))
                .map(|(before, after)| after.saturating_sub(before));
            let cpu = Cpu {
                producer,
                workers: reports
                    .iter()
                    .map(|report| Duration::from_nanos(report.cpu_ns))
                    .sum(),
                server,
            };
            Ok::<_, String>((produced, reports, cpu))
        })();
        let cleaned = self
            .runtime
            .block_on(cleanup(self.backend, self.url, &namespace));
        let (produced, reports, cpu) = ran?;
        cleaned?;
        verify(side, events, &produced, &reports, cpu)
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    match samples.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => samples[len / 2],
        len => (samples[len / 2 - 1] + samples[len / 2]) / 2.0,
    }
}

/// Checks what the workers reported against what was produced.
fn verify(
    side: Side,
    events: u64,
    produced: &Produced,
    reports: &[WorkerReport],
    cpu: Cpu,
) -> Result<Outcome, String> {
    let mut seen = vec![0u64; usize::try_from(events.div_ceil(64)).unwrap_or(0)];
    let (mut count, mut sum, mut strange, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let (mut first_ns, mut last_ns) = (u64::MAX, 0u64);
    let mut profile = produced.profile.clone();
    for report in reports {
        if report.bits.len() != seen.len() {
            return Err(format!(
                "a worker reported {} words of seen events, expected {}",
                report.bits.len(),
                seen.len()
            ));
        }
        for (all, word) in seen.iter_mut().zip(&report.bits) {
            *all |= word;
        }
        count += report.count;
        sum += report.sum;
        strange += report.strange;
        failed += report.failed;
        first_ns = first_ns.min(report.first_ns);
        last_ns = last_ns.max(report.last_ns);
        if let (Some(total), Some(part)) = (profile.as_mut(), report.profile.as_ref()) {
            total.add(part);
        }
    }
    let distinct: u64 = seen.iter().map(|word| u64::from(word.count_ones())).sum();
    check("events with a number out of range", strange, 0)?;
    check("listener failures", failed, 0)?;
    check("distinct events delivered", distinct, events)?;
    let duplicates = count.saturating_sub(distinct);
    if side == Side::Baseline {
        check("baseline events processed", count, events)?;
    }
    if duplicates == 0 {
        check("sum of the events' numbers", sum, sum_below(events))?;
    }
    let since = |ns: u64| Duration::from_nanos(ns.saturating_sub(produced.started_ns));
    Ok(Outcome {
        timing: Timing {
            stored: produced.stored,
            first: since(first_ns),
            delivered: since(last_ns),
            total: produced.total,
        },
        cpu,
        duplicates,
        profile,
    })
}

/// CPU time (user and system) a run used, from the first event until the workers exited.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    /// The producer (this process), until the store settled.
    producer: Option<Duration>,
    /// The worker processes, from ready until they reported.
    workers: Duration,
    /// A private server, with its child processes (PostgreSQL's backends); unknown for a server
    /// given by URL.
    server: Option<Duration>,
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = |cpu: Option<Duration>| {
            cpu.map_or_else(|| "-".to_owned(), |cpu| cpu.as_millis().to_string())
        };
        write!(
            f,
            "cpu_ms=producer:{},workers:{},server:{}",
            millis(self.producer),
            self.workers.as_millis(),
            millis(self.server)
        )
    }
}

/// From `/proc/<pid>/stat`: the parent's pid, the CPU time of the process, and that of its
/// children it waited for. Times are in clock ticks, taken as 10 ms (Linux's `USER_HZ` on every
/// common platform).
fn proc_stat(pid: &str) -> Option<(u32, Duration, Duration)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let tick = |index: usize| -> Option<u64> { fields.get(index)?.parse().ok() };
    let ticks = |ticks: u64| Duration::from_millis(ticks * 10);
    Some((
        u32::try_from(tick(1)?).ok()?,
        ticks(tick(11)? + tick(12)?),
        ticks(tick(13)? + tick(14)?),
    ))
}

fn own_cpu() -> Option<Duration> {
    proc_stat("self").map(|(_, own, _)| own)
}

/// A server's CPU time: its own, its children's that exited (PostgreSQL's postmaster waits for
/// its backends), and its live children's.
fn server_cpu(pid: u32) -> Option<Duration> {
    let (_, own, exited) = proc_stat(&pid.to_string())?;
    let live: Duration = fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.bytes()
                .all(|byte| byte.is_ascii_digit())
                .then_some(name)
        })
        .filter_map(|child| proc_stat(&child))
        .filter(|(parent, _, _)| *parent == pid)
        .map(|(_, own, exited)| own + exited)
        .sum();
    Some(own + exited + live)
}

// Worker processes, from the coordinator's side. ------------------------------------------------

struct WorkerSpec<'a> {
    backend: Backend,
    side: Side,
    url: &'a str,
    namespace: &'a str,
    events: u64,
    profile: bool,
}

/// A worker process: told to stop by the end of its stdin, it answers on its stdout.
struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl WorkerProcess {
    fn spawn(spec: &WorkerSpec<'_>) -> Result<WorkerProcess, String> {
        let program = std::env::current_exe()
            .map_err(|error| format!("cannot find this program to start workers: {error}"))?;
        let mut child = Command::new(program)
            .arg("worker")
            .arg(spec.backend.name())
            .arg(spec.side.name())
            .arg(spec.namespace)
            .arg(spec.events.to_string())
            .arg(if spec.profile { "profile" } else { "plain" })
            .env(URL_ENV, spec.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start a worker process: {error}"))?;
        let stdout = child.stdout.take().ok_or("a worker has no stdout")?;
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(WorkerProcess {
            stdin: child.stdin.take(),
            child,
            lines: receiver,
        })
    }

    /// The first line of the worker's that starts with `prefix`.
    fn wait_for(&mut self, prefix: &str, deadline: Instant) -> Result<String, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(line) => eprintln!("server_throughput: a worker said: {line}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "worker {} did not say `{prefix}` within {WORKER_LIMIT:?}",
                        self.child.id()
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|status| status.to_string());
                    return Err(format!(
                        "worker {} exited ({}) before saying `{prefix}`",
                        self.child.id(),
                        status.unwrap_or_else(|error| error.to_string())
                    ));
                }
            }
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Only a worker left running by a failure is still there to kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops every worker at once, then collects their reports and exit statuses.
fn finish(mut workers: Vec<WorkerProcess>) -> Result<Vec<WorkerReport>, String> {
    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    let deadline = Instant::now() + WORKER_LIMIT;
    let mut reports = Vec::with_capacity(workers.len());
    for worker in &mut workers {
        let line = worker.wait_for("result ", deadline)?;
        reports.push(WorkerReport::parse(&line)?);
    }
    for worker in &mut workers {
        let status = loop {
            match worker.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => return Err("a worker did not exit after reporting".to_owned()),
                Err(error) => return Err(format!("cannot wait for a worker: {error}")),
            }
        };
        if !status.success() {
            return Err(format!("a worker exited with {status}"));
        }
    }
    Ok(reports)
}

/// What a worker tells the coordinator at the end, as one line.
struct WorkerReport {
    count: u64,
    sum: u64,
    strange: u64,
    failed: u64,
    first_ns: u64,
    last_ns: u64,
    /// CPU time (user and system) the worker used from saying ready until it reported.
    cpu_ns: u64,
    bits: Vec<u64>,
    profile: Option<Profile>,
}

impl WorkerReport {
    fn line(&self) -> String {
        let bits: String = self
            .bits
            .iter()
            .map(|word| format!("{word:016x}"))
            .collect();
        let mut line = format!(
            "result count={} sum={} strange={} failed={} first_ns={} last_ns={} cpu_ns={} \
             seen={bits}",
            self.count,
            self.sum,
            self.strange,
            self.failed,
            self.first_ns,
            self.last_ns,
            self.cpu_ns
        );
        if let Some(profile) = &self.profile {
            line.push(' ');
            line.push_str(&profile.fields());
        }
        line
    }

    fn parse(line: &str) -> Result<WorkerReport, String> {
        let bad = || format!("a worker's report is unreadable: {line:.200}");
        let mut report = WorkerReport {
            count: 0,
            sum: 0,
            strange: 0,
            failed: 0,
            first_ns: u64::MAX,
            last_ns: 0,
            cpu_ns: 0,
            bits: Vec::new(),
            profile: None,
        };
        for field in line.split_whitespace().skip(1) {
            let (name, value) = field.split_once('=').ok_or_else(bad)?;
            let int = || value.parse::<u64>().map_err(|_| bad());
            match name {
                "count" => report.count = int()?,
                "sum" => report.sum = int()?,
                "strange" => report.strange = int()?,
                "failed" => report.failed = int()?,
                "first_ns" => report.first_ns = int()?,
                "last_ns" => report.last_ns = int()?,
                "cpu_ns" => report.cpu_ns = int()?,
                "seen" => {
                    report.bits = (0..value.len())
                        .step_by(16)
                        .map(|at| {
                            value
                                .get(at..at + 16)
                                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(bad)?;
                }
                _ => {
                    let profile = report.profile.get_or_insert_with(Profile::default);
                    if !profile.read(name, value) {
                        return Err(bad());
                    }
                }
            }
        }
        Ok(report)
    }
}

// The producer and the namespaces, in the coordinator. ------------------------------------------

/// What the producer measured.
struct Produced {
    /// When the first event was emitted, in Unix nanoseconds (to place the workers' times).
    started_ns: u64,
    stored: Duration,
    total: Duration,
    profile: Option<Profile>,
}

/// The start of a run on both clocks: `Instant` for durations, the wall clock for the workers.
struct Clock {
    started: Instant,
    started_ns: u64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            started_ns: unix_nanos(SystemTime::now()),
            started: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Creates what a side needs before its workers start: the baseline's schema or consumer group.
/// The emitter's stores create their own at start; for PostgreSQL the schema is migrated here
/// once so that the workers find it, like the baseline's.
async fn prepare(backend: Backend, side: Side, url: &str, namespace: &str) -> Result<(), String> {
    match (backend, side) {
        (Backend::Postgres, Side::Emitter) => postgres_store(url, namespace)
            .await?
            .migrate()
            .await
            .map_err(|error| format!("cannot create the store's schema: {error}")),
        (Backend::Postgres, Side::Baseline) => {
            let client = pg_connect(url, None).await?;
            client
                .batch_execute(&PgSql::schema(namespace))
                .await
                .map_err(pg("create the baseline's schema"))
        }
        (Backend::Redis, Side::Emitter) => Ok(()),
        (Backend::Redis, Side::Baseline) => {
            let mut conn = redis_connect(url).await?;
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream_key(namespace))
                .arg(LISTENER)
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<Value>(&mut conn)
                .await
                .map(drop)
                .map_err(rd("create the consumer group"))
        }
    }
}

/// Drops a run's schema or keys.
async fn cleanup(backend: Backend, url: &str, namespace: &str) -> Result<(), String> {
    match backend {
        Backend::Postgres => {
            let client = pg_connect(url, None).await?;
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{namespace}\" CASCADE"))
                .await
                .map_err(pg("drop the run's schema"))
        }
        Backend::Redis => {
            let mut conn = redis_connect(url).await?;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{namespace}:*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(rd("list the run's keys"))?;
                if !keys.is_empty() {
                    redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async::<Value>(&mut conn)
                        .await
                        .map_err(rd("delete the run's keys"))?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        }
    }
}

/// Stores `events` events and waits for the store to settle; the clock runs in here.
async fn produce(
    backend: Backend,
    side: Side,
    url: &str,
    namespace: &str,
    events: u64,
    profile: bool,
) -> Result<Produced, String> {
    match (backend, side) {
        (Backend::Postgres, Side::Emitter) => {
            emitter_produce(postgres_store(url, namespace).await?, events, profile).await
        }
        (Backend::Redis, Side::Emitter) => {
            emitter_produce(redis_store(url, namespace).await?, events, profile).await
        }
        (Backend::Postgres, Side::Baseline) => pg_produce(url, namespace, events).await,
        (Backend::Redis, Side::Baseline) => redis_produce(url, namespace, events).await,
    }
}

async fn postgres_store(url: &str, namespace: &str) -> Result<PostgresStore, String> {
    PostgresConfig::new(url)
        .schema(namespace)
        .connect()
        .await
        .map_err(|error| format!("cannot connect the PostgreSQL store: {error}"))
}

async fn redis_store(url: &str, namespace: &str) -> Result<RedisStore, String> {
    RedisStore::connect_with(url, RedisOptions::new().prefix(namespace))
        .await
        .map_err(|error| format!("cannot connect the Redis store: {error}"))
}

async fn emitter_produce<S: Store>(
    store: S,
    events: u64,
    profile: bool,
) -> Result<Produced, String> {
    if !profile {
        return emitter_produce_with(store, events).await;
    }
    let stats = Arc::new(Stats::default());
    let mut produced = emitter_produce_with(
        Profiled {
            store,
            stats: Arc::clone(&stats),
        },
        events,
    )
    .await?;
    produced.profile = Some(stats.snapshot());
    Ok(produced)
}

async fn emitter_produce_with<S: Store>(store: S, events: u64) -> Result<Produced, String> {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let emitter = Emitter::builder()
        .listeners(listeners![count])
        // Never used here (this process delivers nothing), but the listener asks for it.
        .state(Tally::new(0))
        .backend(backend.clone())
        .start()
        .await
        .map_err(|error| format!("the producer's emitter did not start: {error}"))?;
    let clock = Clock::start();
    let timed = tokio::time::timeout(RUN_LIMIT, async {
        for n in 0..events {
            match emitter.emit(Tick { n }) {
                Ok(_) => {}
                Err(EmitError::Full(rejected)) => {
                    let tick = rejected.into_event::<Tick>().unwrap_or(Tick { n });
                    emitter
                        .emit_async(tick)
                        .await
                        .map_err(|error| format!("emit_async of {n} failed: {error}"))?;
                }
                Err(error) => return Err(format!("emit of {n} failed: {error}")),
            }
        }
        // On a durable backend an emit is pending until the writer stored it: once idle, every
        // event is in the store, and `wait_settled` cannot mistake "not yet stored" for "done".
        emitter.wait_idle().await;
        let stored = clock.elapsed();
        backend
            .wait_settled()
            .await
            .map_err(|error| format!("wait_settled failed: {error}"))?;
        Ok::<_, String>((stored, clock.elapsed()))
    })
    .await;
    let Ok(timed) = timed else {
        let counts = backend.counts().await;
        return Err(format!(
            "the run did not settle within {RUN_LIMIT:?}; the store counts {counts:?}"
        ));
    };
    let (stored, total) = timed?;
    check(
        "producer metrics: emitted",
        emitter.metrics().emitted,
        events,
    )?;
    let counts = backend
        .counts()
        .await
        .map_err(|error| format!("counts failed: {error}"))?;
    check("store: unfinished deliveries", counts.unfinished(), 0)?;
    check("store: dead letters", counts.dead, 0)?;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("the producer's shutdown failed: {error}"))?;
    Ok(Produced {
        started_ns: clock.started_ns,
        stored,
        total,
        profile: None,
    })
}

/// The baseline's emit ids: 128 bits like the emitter's, a per-process high half and a count.
fn emit_id(n: u64) -> String {
    let process = u128::from(std::process::id()) << 64;
    format!("{:032x}", process | u128::from(n))
}

async fn pg_produce(url: &str, namespace: &str, events: u64) -> Result<Produced, String> {
    let client = pg_connect(url, None).await?;
    let sql = PgSql::new(namespace);
    let insert = client
        .prepare(&sql.insert)
        .await
        .map_err(pg("prepare the insert"))?;
    let counts = client
        .prepare(&sql.counts)
        .await
        .map_err(pg("prepare the count"))?;
    let clock = Clock::start();
    let (stored, total) = tokio::time::timeout(RUN_LIMIT, async {
        let mut next = 0;
        while next < events {
            let end = (next + INSERT_BATCH as u64).min(events);
            let now = SystemTime::now();
            let len = usize::try_from(end - next).unwrap_or(0);
            let mut event_ids = Vec::with_capacity(len);
            let mut emit_ids = Vec::with_capacity(len);
            let mut emitted_at = Vec::with_capacity(len);
            let mut payloads = Vec::with_capacity(len);
            for n in next..end {
                let payload = serde_json::to_vec(&Tick { n })
                    .map_err(|error| format!("cannot encode event {n}: {error}"))?;
                event_ids.push(EVENT_ID);
                emit_ids.push(emit_id(n));
                emitted_at.push(now);
                payloads.push(payload);
            }
            let row = client
                .query_one(
                    &insert,
                    &[&event_ids, &emit_ids, &emitted_at, &payloads, &LISTENER],
                )
                .await
                .map_err(pg("insert"))?;
            let stored: i64 = row.try_get(0).map_err(pg("read the insert's count"))?;
            check(
                "rows inserted",
                u64::try_from(stored).unwrap_or(0),
                end - next,
            )?;
            next = end;
        }
        let stored = clock.elapsed();
        loop {
            let row = client
                .query_one(&counts, &[])
                .await
                .map_err(pg("count the deliveries"))?;
            let count = |index: usize| -> Result<i64, String> {
                row.try_get(index).map_err(pg("read a count"))
            };
            let (waiting, leased, dead) = (count(0)?, count(1)?, count(2)?);
            check("baseline dead letters", u64::try_from(dead).unwrap_or(1), 0)?;
            if waiting + leased == 0 {
                break;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        Ok::<_, String>((stored, clock.elapsed()))
    })
    .await
    .map_err(|_| format!("the run did not settle within {RUN_LIMIT:?}"))??;
    Ok(Produced {
        started_ns: clock.started_ns,
        stored,
        total,
        profile: None,
    })
}

async fn redis_produce(url: &str, namespace: &str, events: u64) -> Result<Produced, String> {
    let mut conn = redis_connect(url).await?;
    let key = stream_key(namespace);
    let clock = Clock::start();
    let (stored, total) = tokio::time::timeout(RUN_LIMIT, async {
        let mut next = 0;
        while next < events {
            let end = (next + INSERT_BATCH as u64).min(events);
            let at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as i64);
            let mut pipe = redis::pipe();
            for n in next..end {
                let payload = serde_json::to_vec(&Tick { n })
                    .map_err(|error| format!("cannot encode event {n}: {error}"))?;
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("event")
                    .arg(EVENT_ID)
                    .arg("emit")
                    .arg(emit_id(n))
                    .arg("at")
                    .arg(at)
                    .arg("payload")
                    .arg(payload)
                    .arg("attempts")
                    .arg(0);
            }
            let ids: Vec<String> = pipe
                .query_async(&mut conn)
                .await
                .map_err(rd("append entries"))?;
            check("entries appended", ids.len() as u64, end - next)?;
            next = end;
        }
        let stored = clock.elapsed();
        loop {
            let (length, pending): (u64, Value) = redis::pipe()
                .cmd("XLEN")
                .arg(&key)
                .cmd("XPENDING")
                .arg(&key)
                .arg(LISTENER)
                .query_async(&mut conn)
                .await
                .map_err(rd("count the entries"))?;
            let pending = match pending {
                Value::Array(summary) => match summary.first() {
                    Some(Value::Int(pending)) => *pending,
                    _ => -1,
                },
                _ => -1,
            };
            if length == 0 && pending == 0 {
                break;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        Ok::<_, String>((stored, clock.elapsed()))
    })
    .await
    .map_err(|_| format!("the run did not settle within {RUN_LIMIT:?}"))??;
    Ok(Produced {
        started_ns: clock.started_ns,
        stored,
        total,
        profile: None,
    })
}

// Worker processes, from their own side. --------------------------------------------------------

/// `worker <backend> <side> <namespace> <events> <profile|plain>`, the URL in [`URL_ENV`].
fn worker_main(args: &[String]) -> ExitCode {
    let parsed = (|| {
        let [backend, side, namespace, events, profile] = args else {
            return None;
        };
        Some((
            Backend::parse(backend)?,
            Side::parse(side)?,
            namespace.clone(),
            events.parse::<u64>().ok()?,
            profile == "profile",
        ))
    })();
    let Some((backend, side, namespace, events, profile)) = parsed else {
        eprintln!("server_throughput worker: bad arguments {args:?}");
        return ExitCode::from(2);
    };
    let Ok(url) = std::env::var(URL_ENV) else {
        eprintln!("server_throughput worker: {URL_ENV} is not set");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("server_throughput worker: cannot build the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let tally = Tally::new(events);
    let stop = Stop::on_end_of_stdin();
    let worked = runtime.block_on(async {
        match (backend, side) {
            (Backend::Postgres, Side::Emitter) => {
                let store = postgres_store(&url, &namespace).await?;
                emitter_worker(store, tally, stop, profile).await
            }
            (Backend::Redis, Side::Emitter) => {
                let store = redis_store(&url, &namespace).await?;
                emitter_worker(store, tally, stop, profile).await
            }
            (Backend::Postgres, Side::Baseline) => pg_worker(&url, &namespace, tally, stop).await,
            (Backend::Redis, Side::Baseline) => redis_worker(&url, &namespace, tally, stop).await,
        }
    });
    match worked {
        Ok(mut report) => {
            let since_ready = own_cpu()
                .zip(READY_CPU.get())
                .map(|(now, ready)| now.saturating_sub(*ready));
            report.cpu_ns =
                since_ready.map_or(0, |cpu| u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX));
            println!("{}", report.line());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("server_throughput worker {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// The worker's CPU time when it said ready.
static READY_CPU: OnceLock<Duration> = OnceLock::new();

fn say_ready() {
    if let Some(cpu) = own_cpu() {
        let _ = READY_CPU.set(cpu);
    }
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
}

/// Set when the coordinator closes the worker's stdin; also wakes an idle baseline worker.
#[derive(Clone)]
struct Stop {
    stopped: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl Stop {
    fn on_end_of_stdin() -> Stop {
        let stop = Stop {
            stopped: Arc::default(),
            wake: Arc::default(),
        };
        let signal = stop.clone();
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            signal.stopped.store(true, Ordering::Release);
            wake(&signal.wake);
        });
        stop
    }

    fn is_set(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        loop {
            let woken = self.wake.notified();
            if self.is_set() {
                return;
            }
            woken.await;
        }
    }
}

/// Wakes every waiter, and the next one to come if none waits (as the PostgreSQL store does).
fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

async fn emitter_worker<S: Store>(
    store: S,
    tally: Tally,
    stop: Stop,
    profile: bool,
) -> Result<WorkerReport, String> {
    if !profile {
        return emitter_worker_with(store, tally, stop, None).await;
    }
    let stats = Arc::new(Stats::default());
    let store = Profiled {
        store,
        stats: Arc::clone(&stats),
    };
    emitter_worker_with(store, tally, stop, Some(&*stats)).await
}

async fn emitter_worker_with<S: Store>(
    store: S,
    tally: Tally,
    stop: Stop,
    stats: Option<&Stats>,
) -> Result<WorkerReport, String> {
    let backend =
        Durable::with_config(store, DurableConfig::default().max_in_flight(MAX_IN_FLIGHT));
    let emitter = Emitter::builder()
        .listeners(listeners![count])
        .state(tally.clone())
        .backend(backend)
        .start()
        .await
        .map_err(|error| format!("the worker's emitter did not start: {error}"))?;
    say_ready();
    stop.wait().await;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("the worker's shutdown failed: {error}"))?;
    Ok(tally.report(emitter.metrics().failed, stats))
}

async fn pg_worker(
    url: &str,
    namespace: &str,
    tally: Tally,
    stop: Stop,
) -> Result<WorkerReport, String> {
    let sql = PgSql::new(namespace);
    let client = pg_connect(url, None).await?;
    let listen = pg_connect(url, Some(Arc::clone(&stop.wake))).await?;
    listen
        .batch_execute(&format!("LISTEN \"{namespace}_deliveries\""))
        .await
        .map_err(pg("listen"))?;
    let claim = client
        .prepare(&sql.claim)
        .await
        .map_err(pg("prepare the claim"))?;
    let delete = client
        .prepare(&sql.ack)
        .await
        .map_err(pg("prepare the delete"))?;
    let worker = format!("baseline-{}", std::process::id());
    let listeners = vec![LISTENER];
    let limit = CLAIM_LIMIT as i64;
    let lease = LEASE.as_millis() as i64;
    say_ready();
    while !stop.is_set() {
        let rows = client
            .query(&claim, &[&listeners, &limit, &lease, &worker])
            .await
            .map_err(pg("claim"))?;
        if rows.is_empty() {
            let _ = tokio::time::timeout(IDLE_WAIT, stop.wake.notified()).await;
            continue;
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut leases = Vec::with_capacity(rows.len());
        for row in &rows {
            // Every column the store reads, read the same way.
            let read = |error| format!("a claimed row is unreadable: {error}");
            let id: i64 = row.try_get("id").map_err(read)?;
            let lease: i64 = row.try_get("lease").map_err(read)?;
            let _attempt: i32 = row.try_get("attempt").map_err(read)?;
            let _due: SystemTime = row.try_get("due").map_err(read)?;
            let _listener: String = row.try_get("listener").map_err(read)?;
            let _event_id: String = row.try_get("event_id").map_err(read)?;
            let emit_id: String = row.try_get("emit_id").map_err(read)?;
            let _emitted_at: SystemTime = row.try_get("emitted_at").map_err(read)?;
            let payload: Vec<u8> = row.try_get("payload").map_err(read)?;
            let hex: String = emit_id.chars().filter(|c| *c != '-').collect();
            u128::from_str_radix(&hex, 16)
                .map_err(|_| format!("row {id} has emit id `{emit_id}`"))?;
            let tick: Tick = serde_json::from_slice(&payload)
                .map_err(|error| format!("row {id} does not decode: {error}"))?;
            tally.add(tick.n);
            ids.push(id);
            leases.push(lease);
        }
        let deleted = client
            .execute(&delete, &[&ids, &leases])
            .await
            .map_err(pg("delete"))?;
        check("rows deleted", deleted, ids.len() as u64)?;
    }
    Ok(tally.report(0, None))
}

async fn redis_worker(
    url: &str,
    namespace: &str,
    tally: Tally,
    stop: Stop,
) -> Result<WorkerReport, String> {
    let mut conn = redis_connect(url).await?;
    let key = stream_key(namespace);
    let consumer = format!("baseline-{}", std::process::id());
    say_ready();
    while !stop.is_set() {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(LISTENER)
            .arg(&consumer)
            .arg("COUNT")
            .arg(CLAIM_LIMIT)
            .arg("BLOCK")
            .arg(IDLE_WAIT.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(&mut conn)
            .await
            .map_err(rd("read the stream"))?;
        let entries = stream_entries(reply)?;
        if entries.is_empty() {
            continue;
        }
        let mut ids = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let entry = Entry::read(&fields).map_err(|problem| format!("entry {id}: {problem}"))?;
            let tick: Tick = serde_json::from_slice(&entry.payload)
                .map_err(|error| format!("entry {id} does not decode: {error}"))?;
            tally.add(tick.n);
            ids.push(id);
        }
        let (acked, deleted): (u64, u64) = redis::pipe()
            .cmd("XACK")
            .arg(&key)
            .arg(LISTENER)
            .arg(&ids)
            .cmd("XDEL")
            .arg(&key)
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .map_err(rd("acknowledge entries"))?;
        check("entries acknowledged", acked, ids.len() as u64)?;
        check("entries deleted", deleted, ids.len() as u64)?;
    }
    Ok(tally.report(0, None))
}

// The raw clients. ------------------------------------------------------------------------------

fn pg(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> String {
    move |error| format!("cannot {doing}: {error}")
}

fn rd(doing: &'static str) -> impl Fn(redis::RedisError) -> String {
    move |error| format!("cannot {doing}: {error}")
}

/// A connection without TLS, driven by a task of its own; notifications wake `wake`.
async fn pg_connect(url: &str, wake: Option<Arc<Notify>>) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg("connect to PostgreSQL (without TLS)"))?;
    tokio::spawn(drive(connection, wake));
    Ok(client)
}

async fn drive(mut connection: Connection<Socket, NoTlsStream>, wake_on: Option<Arc<Notify>>) {
    while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
        match message {
            Ok(AsyncMessage::Notification(_)) => {
                if let Some(notify) = &wake_on {
                    wake(notify);
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// The store's statements for one schema, copied from `emitter/src/durable/postgres.rs` (schema
/// version 1); the insert is the store's without its idempotency keys.
struct PgSql {
    insert: String,
    claim: String,
    ack: String,
    counts: String,
}

impl PgSql {
    fn new(schema: &str) -> PgSql {
        let deliveries = format!("\"{schema}\".deliveries");
        let dead_letters = format!("\"{schema}\".dead_letters");
        let leases = format!("\"{schema}\".leases");
        let channel = format!("{schema}_deliveries");
        PgSql {
            insert: format!(
                "WITH stored AS (
                    INSERT INTO {deliveries}
                        (event_id, emit_id, emitted_at, payload, listener, run_at)
                    SELECT e.event_id, e.emit_id::uuid, e.emitted_at, e.payload, $5::text, now()
                    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[])
                        AS e(event_id, emit_id, emitted_at, payload)
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM stored) AS stored,
                       (SELECT count(*) FROM (SELECT pg_notify('{channel}', '')
                                              WHERE EXISTS (SELECT 1 FROM stored)) AS w) AS woken"
            ),
            claim: format!(
                "WITH due AS (
                    SELECT id, run_at FROM {deliveries}
                    WHERE run_at <= now() AND (lease_until IS NULL OR lease_until <= now())
                      AND listener = ANY($1::text[])
                    ORDER BY run_at, id
                    LIMIT $2::int8
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE {deliveries} AS d
                SET attempt = d.attempt + 1,
                    lease = nextval('{leases}'::regclass),
                    worker = $4::text,
                    lease_until = now() + $3::int8 * interval '1 millisecond',
                    run_at = now() + $3::int8 * interval '1 millisecond'
                FROM due
                WHERE d.id = due.id
                RETURNING d.id, d.lease, d.attempt, due.run_at AS due, d.listener, d.event_id,
                          d.emit_id::text AS emit_id, d.emitted_at, d.payload"
            ),
            ack: format!(
                "DELETE FROM {deliveries} AS d
                USING unnest($1::int8[], $2::int8[]) AS r(id, lease)
                WHERE d.id = r.id AND d.lease = r.lease"
            ),
            counts: format!(
                "SELECT count(*) FILTER (WHERE lease_until IS NULL OR lease_until <= now()),
                        count(*) FILTER (WHERE lease_until > now()),
                        (SELECT count(*) FROM {dead_letters})
                FROM {deliveries}"
            ),
        }
    }

    /// The store's schema version 1 (`schema_v1`).
    fn schema(schema: &str) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
            CREATE TABLE \"{schema}\".schema_version (
                version    integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE \"{schema}\".deliveries (
                id          bigserial PRIMARY KEY,
                event_id    text NOT NULL,
                emit_id     uuid NOT NULL,
                emitted_at  timestamptz NOT NULL,
                payload     bytea NOT NULL,
                listener    text NOT NULL,
                attempt     integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
                run_at      timestamptz NOT NULL,
                lease       bigint,
                lease_until timestamptz,
                worker      text,
                last_error  text
            );
            CREATE INDEX deliveries_due ON \"{schema}\".deliveries (run_at, id);
            CREATE SEQUENCE \"{schema}\".leases;
            CREATE TABLE \"{schema}\".dead_letters (
                id         bigint PRIMARY KEY,
                event_id   text NOT NULL,
                emit_id    uuid NOT NULL,
                emitted_at timestamptz NOT NULL,
                payload    bytea NOT NULL,
                listener   text NOT NULL,
                attempts   integer NOT NULL CHECK (attempts >= 0),
                reason     text NOT NULL,
                failed_at  timestamptz NOT NULL
            );
            CREATE INDEX dead_letters_failed ON \"{schema}\".dead_letters (failed_at, id);
            CREATE TABLE \"{schema}\".idempotency_keys (
                key        text PRIMARY KEY,
                expires_at timestamptz NOT NULL
            );
            CREATE INDEX idempotency_keys_expiry ON \"{schema}\".idempotency_keys (expires_at);
            INSERT INTO \"{schema}\".schema_version (version) VALUES (1);"
        )
    }
}

/// The store's stream of the listener: `{prefix}:listener:{listener}`.
fn stream_key(prefix: &str) -> String {
    format!("{prefix}:listener:{LISTENER}")
}

/// One multiplexed connection with the store's response timeout (10 s), above `BLOCK`.
async fn redis_connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(rd("read the Redis URL"))?;
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(rd("connect to Redis"))
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The entries of an `XREADGROUP` reply on one stream (none when it timed out).
fn stream_entries(reply: Value) -> Result<Vec<(String, Fields)>, String> {
    let bad = |what: &str| format!("an unexpected XREADGROUP reply: {what}");
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        Value::Map(streams) => streams
            .into_iter()
            .map(|(key, entries)| Value::Array(vec![key, entries]))
            .collect(),
        other => return Err(bad(&format!("{other:?}"))),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut stream) = stream else {
            return Err(bad("a stream that is not an array"));
        };
        let Some(Value::Array(entries)) = stream.pop() else {
            return Err(bad("a stream without entries"));
        };
        for entry in entries {
            let Value::Array(mut entry) = entry else {
                return Err(bad("an entry that is not an array"));
            };
            let (Some(Value::Array(flat)), Some(id)) = (entry.pop(), entry.pop()) else {
                return Err(bad("an entry without its id and fields"));
            };
            let id = bytes(id).ok_or_else(|| bad("an entry id"))?;
            let id = String::from_utf8(id).map_err(|_| bad("an entry id"))?;
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                let (Some(name), Some(value)) = (bytes(name), bytes(value)) else {
                    return Err(bad("a field"));
                };
                fields.push((name, value));
            }
            out.push((id, fields));
        }
    }
    Ok(out)
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

/// A stream entry's fields, read as the store reads them.
struct Entry {
    payload: Vec<u8>,
}

impl Entry {
    fn read(fields: &Fields) -> Result<Entry, String> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(field, _)| field == name.as_bytes())
                .map(|(_, value)| value.as_slice())
                .ok_or_else(|| format!("it has no `{name}` field"))
        };
        let number = |name: &str| {
            std::str::from_utf8(field(name)?)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| format!("its `{name}` field is not a number"))
        };
        let _event = String::from_utf8_lossy(field("event")?).into_owned();
        std::str::from_utf8(field("emit")?)
            .ok()
            .filter(|hex| hex.len() == 32)
            .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            .ok_or("its `emit` field is not 32 hexadecimal digits")?;
        let _at = number("at")?;
        let _attempts = number("attempts")?;
        Ok(Entry {
            payload: field("payload")?.to_vec(),
        })
    }
}

// Private servers. ------------------------------------------------------------------------------

/// A private server on 127.0.0.1, started by the tests' harness (`emitter_tests::servers`: the
/// same binaries and settings as the backends' tests), stopped on drop.
enum Server {
    Redis(Redis),
    Postgres(Postgres),
}

impl Server {
    fn redis() -> Result<Server, String> {
        Redis::start().map(Server::Redis).ok_or_else(|| {
            "redis-server not found (install Debian's redis-server, or pass --redis-url)".to_owned()
        })
    }

    fn postgres() -> Result<Server, String> {
        Postgres::start().map(Server::Postgres).ok_or_else(|| {
            "PostgreSQL not found (install Debian's postgresql, or pass --postgres-url)".to_owned()
        })
    }

    fn url(&self) -> String {
        match self {
            Server::Redis(redis) => redis.url(),
            Server::Postgres(postgres) => postgres.url(),
        }
    }

    fn description(&self) -> String {
        match self {
            Server::Redis(redis) => format!(
                "private redis-server on 127.0.0.1:{}, no persistence (--save '' --appendonly no)",
                redis.port()
            ),
            Server::Postgres(postgres) => {
                format!(
                    "private postgres on 127.0.0.1:{}, fsync=off",
                    postgres.port()
                )
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Server::Redis(redis) => redis.pid(),
            Server::Postgres(postgres) => postgres.pid(),
        }
    }
}
