//! The emitter on its SQLite store against raw SQLite, end to end, in one process.
//!
//! ```sh
//! cargo run --release -p emitter-bench --features sqlite --example sqlite_throughput
//! cargo run --release -p emitter-bench --features sqlite --example sqlite_throughput -- --quick
//! ```
//!
//! Each side stores N events (50,000; `--quick`: 5,000), claims them, "delivers" them (decodes
//! the JSON payload and adds the number to a tally) and deletes them, on a fresh database file;
//! the time runs from the first event until the last delivery is deleted. `--profile` adds one
//! more emitter run through a store wrapper that counts and times the engine's calls of each
//! store method (how many claims, how many rows per claim, ...).
//!
//! - **emitter**: `Durable<SqliteStore>` with the default `DurableConfig`, one trivial async
//!   listener; `emit` each event (on `EmitError::Full`, `emit_async`), then wait until the
//!   listener saw them all, then `wait_settled()` (which polls every 10 ms: up to 10 ms more than
//!   the baseline's end). On tokio's multi-thread runtime (one worker per core), as an
//!   application would run it.
//! - **baseline**: what one would write by hand with the same driver (the workspace's
//!   `rusqlite`, bundled SQLite) and the store's own connection settings (WAL, `synchronous =
//!   NORMAL`, 5 s busy timeout, fixed query plans), schema and statements, taken from the store
//!   (`emitter::durable::sqlite::statements`, hidden from the docs) rather than copied. A
//!   producer thread inserts batches of 512 in one transaction each (the engine's writer batch)
//!   with the store's insert; a consumer thread claims up to 64 due rows with the store's claim
//!   for one listener (64 is the engine's default `max_in_flight`), decodes them, and deletes
//!   them with the store's acknowledgement, in one transaction. The two run **concurrently**, as
//!   the engine's writer and worker do, sharing **one connection behind a mutex**, as the store
//!   does. (A connection each was tried and was no faster: SQLite lets one writer in at a time,
//!   and the other waits in its busy handler.)
//!
//! The two sides alternate which runs first, for 3 rounds (`--quick`: 1) after a warm-up round;
//! the program prints each round, the medians and the ratio emitter/baseline. Every run is
//! checked (each event delivered once, the right sum, the table empty at the end): a mismatch
//! makes the program exit with status 1.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::sqlite::{self, statements, SqliteStore};
use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listener, listeners, Emitter, Event, State};
use emitter_bench::profile::{Profiled, Stats};
use emitter_bench::{check, emit_each, sum_to};
use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::Notify;

const EVENTS: u64 = 50_000;
const QUICK_EVENTS: u64 = 5_000;

/// Rows per insert transaction: the engine's writer batch (`durable::engine::write`).
const INSERT_BATCH: usize = 512;

/// Rows per claim: the engine's default `max_in_flight`, which caps its claims.
const CLAIM_LIMIT: i64 = 64;

/// A run that takes longer than this has hung (a lost delivery, a deadlock): it fails instead.
const RUN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Event, Debug, Clone)]
#[event(id = "sqlite_throughput.tick")]
pub struct Tick {
    pub n: u64,
}

/// What the listener adds to: how many events it saw and the sum of their numbers, and a
/// signal once it has seen `expected` of them.
#[derive(Clone)]
pub struct Tally {
    count: Arc<AtomicU64>,
    sum: Arc<AtomicU64>,
    expected: u64,
    all_seen: Arc<Notify>,
}

impl Tally {
    fn new(expected: u64) -> Tally {
        Tally {
            count: Arc::default(),
            sum: Arc::default(),
            expected,
            all_seen: Arc::default(),
        }
    }

    fn add(&self, n: u64) {
        self.sum.fetch_add(n, Ordering::Relaxed);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            // A stored permit: the waiter wakes even if it starts waiting later.
            self.all_seen.notify_one();
        }
    }
}

#[listener(events = [Tick], name = "sqlite_throughput.count")]
async fn count(n: u64, State(tally): State<Tally>) {
    tally.add(n);
}

fn main() -> ExitCode {
    let mut quick = false;
    let mut profile = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--profile" => profile = true,
            other => {
                eprintln!(
                    "sqlite_throughput: unknown argument `{other}`; usage: sqlite_throughput \
                     [--quick] [--profile]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let (events, rounds) = if quick {
        (QUICK_EVENTS, 1)
    } else {
        (EVENTS, 3)
    };
    match run(events, rounds, profile) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sqlite_throughput: FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One run's time to the end, and when its phases ended.
#[derive(Debug, Clone, Copy)]
struct Timing {
    total: Duration,
    /// Emitter: the last `emit` returned (the writer stores in the background). Baseline: the
    /// producer committed its last batch.
    emitted: Duration,
    /// Emitter: the listener saw every event. Baseline: the consumer decoded the last one.
    delivered: Duration,
    /// The process's CPU time (every thread, user and system) over the run, setup and
    /// shutdown included; `None` where `/proc/self/stat` cannot be read.
    cpu: Option<Duration>,
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "emitted_ms={} delivered_ms={} done_ms={}",
            self.emitted.as_millis(),
            self.delivered.as_millis(),
            self.total.as_millis()
        )?;
        match self.cpu {
            Some(cpu) => write!(f, " cpu_ms={}", cpu.as_millis()),
            None => Ok(()),
        }
    }
}

/// The CPU time this process has used so far, from `/proc/self/stat` (Linux; in clock ticks,
/// which are 1/100 s on every Linux that matters).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count from after it.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The one-minute load average, from `/proc/loadavg` (`?` where it cannot be read).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split(' ').next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Runs `side`, adding the CPU time it took to its timing.
fn with_cpu(side: impl FnOnce() -> Result<Timing, String>) -> Result<Timing, String> {
    let before = process_cpu();
    let mut timing = side()?;
    timing.cpu = before
        .zip(process_cpu())
        .map(|(before, after)| after.saturating_sub(before));
    Ok(timing)
}

fn run(events: u64, rounds: usize, profile: bool) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# sqlite_throughput: {events} events per run, {rounds} round(s) after a warm-up round, \
         emitter and baseline alternating which goes first; {cores} cores, load {}; eps = \
         events per second from the first event to the last delete; cpu_ratio = baseline CPU \
         per event / emitter CPU per event",
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot build the runtime: {error}"))?;
    let mut emitter_eps = Vec::new();
    let mut baseline_eps = Vec::new();
    let mut emitter_cpu = Vec::new();
    let mut baseline_cpu = Vec::new();
    for round in 0..=rounds {
        let run_emitter = || {
            runtime
                .block_on(emitter_run(events, Ok))
                .map(|(timing, _)| timing)
                .map_err(|error| format!("emitter, round {round}: {error}"))
        };
        let run_baseline =
            || baseline_run(events).map_err(|error| format!("baseline, round {round}: {error}"));
        let (e, b) = if round % 2 == 0 {
            let e = with_cpu(run_emitter)?;
            (e, with_cpu(run_baseline)?)
        } else {
            let b = with_cpu(run_baseline)?;
            (with_cpu(run_emitter)?, b)
        };
        let eps = |timing: &Timing| events as f64 / timing.total.as_secs_f64();
        let label = if round == 0 {
            "warm-up".to_owned()
        } else {
            format!("round={round}")
        };
        println!(
            "{label} first={} emitter_eps={:.0} ({e}) baseline_eps={:.0} ({b}) ratio={:.2}",
            if round % 2 == 0 {
                "emitter"
            } else {
                "baseline"
            },
            eps(&e),
            eps(&b),
            eps(&e) / eps(&b)
        );
        if round > 0 {
            emitter_eps.push(eps(&e));
            baseline_eps.push(eps(&b));
            let per_event = |timing: &Timing| {
                timing
                    .cpu
                    .map_or(f64::NAN, |cpu| cpu.as_secs_f64() * 1e6 / events as f64)
            };
            emitter_cpu.push(per_event(&e));
            baseline_cpu.push(per_event(&b));
        }
    }
    let emitter = median(&mut emitter_eps);
    let baseline = median(&mut baseline_eps);
    let emitter_cpu = median(&mut emitter_cpu);
    let baseline_cpu = median(&mut baseline_cpu);
    // Wall-clock rates depend on the machine's load (the baseline's two threads hand one mutex
    // back and forth, which a busy machine slows); CPU per event depends on it far less.
    println!(
        "sqlite_throughput events={events} rounds={rounds} emitter_eps_median={emitter:.0} \
         baseline_eps_median={baseline:.0} ratio={:.2} emitter_cpu_us_per_event={emitter_cpu:.1} \
         baseline_cpu_us_per_event={baseline_cpu:.1} cpu_ratio={:.2} load={}",
        emitter / baseline,
        baseline_cpu / emitter_cpu,
        load_average()
    );
    if profile {
        let stats = Arc::new(Stats::default());
        let wrap = {
            let stats = Arc::clone(&stats);
            move |store| {
                Ok(Profiled {
                    store,
                    stats: Arc::clone(&stats),
                })
            }
        };
        let (timing, _) = runtime
            .block_on(emitter_run(events, wrap))
            .map_err(|error| format!("emitter, profiled: {error}"))?;
        println!(
            "profile: emitter_eps={:.0} ({timing}); store calls, as the engine awaited them \
             (spawn_blocking and the connection's mutex included):",
            events as f64 / timing.total.as_secs_f64()
        );
        stats.snapshot().print(events);
    }
    Ok(())
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    match samples.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => samples[len / 2],
        len => (samples[len / 2 - 1] + samples[len / 2]) / 2.0,
    }
}

// The emitter. ----------------------------------------------------------------------------------

/// One emitter run on a fresh SQLite store, which `wrap` may wrap (to profile it).
async fn emitter_run<S, W>(events: u64, wrap: W) -> Result<(Timing, S), String>
where
    S: Store + Clone,
    W: FnOnce(SqliteStore) -> Result<S, String>,
{
    let dir = tempfile::tempdir().map_err(|error| format!("no temporary directory: {error}"))?;
    let store = SqliteStore::open(dir.path().join("emitter.db"))
        .map_err(|error| format!("cannot open the store: {error}"))?;
    let backend = Durable::with_config(wrap(store)?, DurableConfig::default());
    let tally = Tally::new(events);
    let emitter = Emitter::builder()
        .listeners(listeners![count])
        .state(tally.clone())
        .backend(backend.clone())
        .start()
        .await
        .map_err(|error| format!("start failed: {error}"))?;
    let timed = tokio::time::timeout(RUN_LIMIT, async {
        let started = Instant::now();
        emit_each(&emitter, (1..=events).map(|n| Tick { n })).await?;
        let emitted = started.elapsed();
        // Waiting for the listener first keeps `wait_settled` from polling (a count over the
        // whole table every 10 ms, on the store's one connection) while the run is busy.
        if events > 0 {
            tally.all_seen.notified().await;
        }
        let delivered = started.elapsed();
        backend
            .wait_settled()
            .await
            .map_err(|error| format!("wait_settled failed: {error}"))?;
        Ok::<_, String>(Timing {
            total: started.elapsed(),
            emitted,
            delivered,
            cpu: None,
        })
    })
    .await
    .map_err(|_| format!("the run did not finish within {RUN_LIMIT:?}"))??;
    check(
        "listener count",
        tally.count.load(Ordering::Acquire),
        events,
    )?;
    check(
        "listener sum",
        tally.sum.load(Ordering::Acquire),
        sum_to(events),
    )?;
    let metrics = emitter.metrics();
    check("emitter metrics: delivered", metrics.delivered, events)?;
    check("emitter metrics: failed", metrics.failed, 0)?;
    let counts = backend
        .counts()
        .await
        .map_err(|error| format!("counts failed: {error}"))?;
    check("store: unfinished deliveries", counts.unfinished(), 0)?;
    check("store: dead letters", counts.dead, 0)?;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("shutdown failed: {error}"))?;
    Ok((timed, backend.store().clone()))
}

// The baseline. ---------------------------------------------------------------------------------

const LISTENER: &str = "sqlite_throughput.count";
const LEASE_MS: i64 = 30_000;

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

fn sql(doing: &'static str) -> impl Fn(rusqlite::Error) -> String {
    move |error| format!("cannot {doing}: {error}")
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens `path` with the store's own connection settings, and creates the store's schema.
fn open_raw(path: &Path) -> Result<Connection, String> {
    let mut conn = Connection::open(path).map_err(sql("open the database"))?;
    sqlite::setup_connection(path, &mut conn).map_err(|error| error.to_string())?;
    conn.execute_batch(statements::SCHEMA_V1)
        .and_then(|()| conn.execute_batch(statements::MIGRATE_V2))
        .and_then(|()| conn.execute_batch(statements::MIGRATE_V3))
        .and_then(|()| conn.execute_batch(statements::MIGRATE_V4))
        .and_then(|()| conn.execute_batch(statements::MIGRATE_V5))
        .map_err(sql("create the schema"))?;
    Ok(conn)
}

fn baseline_run(events: u64) -> Result<Timing, String> {
    let dir = tempfile::tempdir().map_err(|error| format!("no temporary directory: {error}"))?;
    let conn = Mutex::new(open_raw(&dir.path().join("baseline.db"))?);
    let produced = AtomicBool::new(false);
    let started = Instant::now();
    let (stored, consumed) = std::thread::scope(|scope| {
        let producer = scope.spawn(|| produce(&conn, events, &produced, started));
        let consumer = scope.spawn(|| consume(&conn, &produced, started));
        let stored = producer.join();
        let consumed = consumer.join();
        (stored, consumed)
    });
    let stored = stored.map_err(|_| "the producer panicked".to_owned())??;
    let (count, sum, delivered, total) =
        consumed.map_err(|_| "the consumer panicked".to_owned())??;
    check("baseline count", count, events)?;
    check("baseline sum", sum, sum_to(events))?;
    let left: i64 = lock(&conn)
        .query_row("SELECT COUNT(*) FROM emitter_deliveries", [], |row| {
            row.get(0)
        })
        .map_err(sql("count the rows left"))?;
    check(
        "baseline rows left",
        u64::try_from(left).unwrap_or(u64::MAX),
        0,
    )?;
    Ok(Timing {
        total,
        emitted: stored,
        delivered,
        cpu: None,
    })
}

/// Inserts events `1..=events` in transactions of [`INSERT_BATCH`], encoding each batch before
/// taking the connection (the engine encodes at `emit`, before its writer stores).
fn produce(
    conn: &Mutex<Connection>,
    events: u64,
    produced: &AtomicBool,
    started: Instant,
) -> Result<Duration, String> {
    let mut next = 1;
    let mut batch = Vec::with_capacity(INSERT_BATCH);
    while next <= events {
        let end = (next + INSERT_BATCH as u64).min(events + 1);
        let now = now_millis();
        batch.clear();
        for n in next..end {
            let payload = serde_json::to_vec(&Tick { n })
                .map_err(|error| format!("cannot encode event {n}: {error}"))?;
            batch.push((format!("{:032x}", u128::from(n)), payload));
        }
        let mut conn = lock(conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin an insert"))?;
        {
            let mut insert = tx
                .prepare_cached(statements::INSERT_DELIVERY)
                .map_err(sql("prepare the insert"))?;
            for (emit_id, payload) in &batch {
                insert
                    .execute(params![
                        LISTENER,
                        "sqlite_throughput.tick",
                        emit_id,
                        now,
                        payload,
                        None::<String>,
                        now,
                        1
                    ])
                    .map_err(sql("insert"))?;
            }
        }
        tx.commit().map_err(sql("commit an insert"))?;
        next = end;
    }
    produced.store(true, Ordering::Release);
    Ok(started.elapsed())
}

/// Claims, decodes and deletes rows until the producer is done and no row is left. Returns the
/// count and sum of the events and when the last was decoded and deleted.
fn consume(
    conn: &Mutex<Connection>,
    produced: &AtomicBool,
    started: Instant,
) -> Result<(u64, u64, Duration, Duration), String> {
    let (mut count, mut sum) = (0u64, 0u64);
    let mut delivered = Duration::ZERO;
    // The store's claim, for one listener.
    let claim_sql = statements::claim(&[None]);
    let mut claims = 0u64;
    loop {
        if started.elapsed() > RUN_LIMIT {
            return Err(format!(
                "the consumer did not finish within {RUN_LIMIT:?} ({count} events)"
            ));
        }
        // Read before the claim: once the producer is done, an empty claim means nothing is left.
        let done = produced.load(Ordering::Acquire);
        let lease = format!("baseline{claims:016x}");
        claims += 1;
        let now = now_millis();
        let claimed: Vec<(i64, Vec<u8>)> = {
            let mut conn = lock(conn);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("begin a claim"))?;
            let claimed = {
                let mut claim = tx
                    .prepare_cached(&claim_sql)
                    .map_err(sql("prepare the claim"))?;
                let rows = claim
                    .query_map(
                        params![
                            lease,
                            "baseline",
                            now + LEASE_MS,
                            now,
                            CLAIM_LIMIT,
                            LISTENER
                        ],
                        |row| {
                            // Every column the store reads, read the same way.
                            let _listener: String = row.get(1)?;
                            let _attempt: i64 = row.get(2)?;
                            let _event_id: String = row.get(3)?;
                            let _emit_id: String = row.get(4)?;
                            let _emitted_at: i64 = row.get(5)?;
                            Ok((row.get(0)?, row.get(6)?))
                        },
                    )
                    .map_err(sql("claim"))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql("claim"))?
            };
            tx.commit().map_err(sql("commit a claim"))?;
            claimed
        };
        if claimed.is_empty() {
            if done {
                return Ok((count, sum, delivered, started.elapsed()));
            }
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        for (id, payload) in &claimed {
            let tick: Tick = serde_json::from_slice(payload)
                .map_err(|error| format!("row {id} does not decode: {error}"))?;
            sum += tick.n;
            count += 1;
        }
        delivered = started.elapsed();
        let mut conn = lock(conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin a delete"))?;
        {
            let mut delete = tx
                .prepare_cached(statements::ACK)
                .map_err(sql("prepare the delete"))?;
            for (id, _) in &claimed {
                delete.execute(params![id, lease]).map_err(sql("delete"))?;
            }
        }
        tx.commit().map_err(sql("commit a delete"))?;
    }
}
