//! The emitter against a hand-written baseline, in one process, on both tokio runtimes.
//!
//! ```sh
//! cargo run --release --example bench_compare             # full: best of 3 rounds, after a warm-up
//! cargo run --release --example bench_compare -- --quick  # counts / 10, one round, after a warm-up
//! ```
//!
//! The baseline is what one would write without the emitter: a tokio unbounded channel feeding
//! one worker task that calls the same listener functions directly (`#[listener]` leaves them
//! callable). Both sides build the same events, do the same work in the listeners, and are
//! checked the same way: every counter must hold its expected sum, or the program says which
//! did not and exits with a failure. Prints one line per workload and runtime.
//!
//! The workloads are the peer benchmark's (`fanout1`, `fanout3`, `multi_event`, `latency`): the
//! same counts, listeners and event shape (an e-mail formatted from the id and the id, built
//! inside the timed loop), so that the ratios here and the peer table's agree.

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use emitter::{listeners, Capacity, Emitter, EmitterBuilder, State};
use emitter_bench::baseline::Baseline;
use emitter_bench::counter::{Counter, Counters};
use emitter_bench::ping::{ping_started, Ping, Probe};
use emitter_bench::ring::{self, RingEvent};
use emitter_bench::signup::{count_signup, fanout_a, fanout_b, fanout_c, Signup};
use emitter_bench::{check, sum_to};
use tokio::runtime::{Builder, Runtime};

const W1_EMITS: u64 = 1_000_000;
const W2_EMITS: u64 = 300_000;
const W3_EMITS: u64 = 500_000;
const W4_EMITS: u64 = 10_000;

/// A run that takes longer than this has hung (a lost delivery, a deadlock): it fails instead.
const RUN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
        }
    }

    fn runtime(self) -> Result<Runtime, String> {
        let mut builder = match self {
            Flavor::CurrentThread => Builder::new_current_thread(),
            // Tokio's default: one worker per core.
            Flavor::MultiThread => Builder::new_multi_thread(),
        };
        builder
            .enable_all()
            .build()
            .map_err(|error| format!("cannot build the {} runtime: {error}", self.name()))
    }
}

const FLAVORS: [Flavor; 2] = [Flavor::CurrentThread, Flavor::MultiThread];

struct Config {
    /// Counts are divided by this (`--quick`: 10).
    divisor: u64,
    /// Rounds per workload and runtime, each running the emitter and the baseline once.
    rounds: usize,
}

fn main() -> ExitCode {
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            other => {
                eprintln!(
                    "bench_compare: unknown argument `{other}`; usage: bench_compare [--quick]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let config = if quick {
        Config {
            divisor: 10,
            rounds: 1,
        }
    } else {
        Config {
            divisor: 1,
            rounds: 3,
        }
    };
    match run(&config, quick) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_compare: FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config, quick: bool) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let d = config.divisor;
    if quick {
        println!("# mode=quick: every count divided by 10, one round after a warm-up round");
    } else {
        println!(
            "# mode=full: best of {} rounds after a warm-up round, emitter and baseline \
             alternating which goes first; W4 pools the rounds' samples",
            config.rounds
        );
    }
    println!(
        "# W1 fanout1 {} emits, 1 listener | W2 fanout3 {} emits, 3 listeners | W3 multi_event {} \
         emits round-robin over 16 events, 4 listeners each | W4 latency {} emits one at a time",
        W1_EMITS / d,
        W2_EMITS / d,
        W3_EMITS / d,
        W4_EMITS / d
    );
    println!(
        "# baseline: tokio unbounded mpsc + one worker task calling the same listener fns; \
         emitter: Capacity::Unbounded; workloads run as a spawned task; multi_thread has {cores} \
         workers; eps = emits per second"
    );
    for flavor in FLAVORS {
        let (emitter, baseline) =
            throughput(flavor, config, W1_EMITS / d, w1_emitter, w1_baseline)?;
        print_throughput("W1", flavor, W1_EMITS / d, emitter, baseline);
    }
    for flavor in FLAVORS {
        let (emitter, baseline) =
            throughput(flavor, config, W2_EMITS / d, w2_emitter, w2_baseline)?;
        print_throughput("W2", flavor, W2_EMITS / d, emitter, baseline);
    }
    for flavor in FLAVORS {
        let (emitter, baseline) =
            throughput(flavor, config, W3_EMITS / d, w3_emitter, w3_baseline)?;
        print_throughput("W3", flavor, W3_EMITS / d, emitter, baseline);
    }
    for flavor in FLAVORS {
        latency(flavor, config, W4_EMITS / d)?;
    }
    Ok(())
}

/// Runs `workload` as a task of `runtime`, as request code that emits would be, and fails if it
/// takes longer than [`RUN_LIMIT`].
fn run_task<T, F>(runtime: &Runtime, workload: F) -> Result<T, String>
where
    T: Send + 'static,
    F: Future<Output = Result<T, String>> + Send + 'static,
{
    runtime.block_on(async {
        let task = tokio::spawn(tokio::time::timeout(RUN_LIMIT, workload));
        match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => Err(format!("a run did not finish within {RUN_LIMIT:?}")),
            Err(error) => Err(format!("a run's task failed: {error}")),
        }
    })
}

/// The best (shortest) time of the emitter and of the baseline over the rounds, alternating which
/// goes first so that neither always runs on a warmer or a noisier machine.
fn throughput<E, EF, B, BF>(
    flavor: Flavor,
    config: &Config,
    emits: u64,
    emitter: E,
    baseline: B,
) -> Result<(Duration, Duration), String>
where
    E: Fn(u64) -> EF,
    EF: Future<Output = Result<Duration, String>> + Send + 'static,
    B: Fn(u64) -> BF,
    BF: Future<Output = Result<Duration, String>> + Send + 'static,
{
    let runtime = flavor.runtime()?;
    let mut best_emitter = Duration::MAX;
    let mut best_baseline = Duration::MAX;
    // Round 0 warms up (the allocator's pages, the runtime's threads) and is not counted.
    for round in 0..=config.rounds {
        let context = |side: &str, error: String| {
            format!("{side} on {}, round {round}: {error}", flavor.name())
        };
        let run_emitter = || run_task(&runtime, emitter(emits)).map_err(|e| context("emitter", e));
        let run_baseline =
            || run_task(&runtime, baseline(emits)).map_err(|e| context("baseline", e));
        let (e, b) = if round % 2 == 0 {
            let e = run_emitter()?;
            (e, run_baseline()?)
        } else {
            let b = run_baseline()?;
            (run_emitter()?, b)
        };
        if round > 0 {
            best_emitter = best_emitter.min(e);
            best_baseline = best_baseline.min(b);
        }
    }
    Ok((best_emitter, best_baseline))
}

fn print_throughput(
    workload: &str,
    flavor: Flavor,
    emits: u64,
    emitter: Duration,
    baseline: Duration,
) {
    let emitter_eps = emits as f64 / emitter.as_secs_f64();
    let baseline_eps = emits as f64 / baseline.as_secs_f64();
    println!(
        "workload={workload} runtime={} emitter_eps={emitter_eps:.0} baseline_eps={baseline_eps:.0} \
         ratio={:.2}",
        flavor.name(),
        emitter_eps / baseline_eps
    );
}

/// Starts an emitter with the given listeners and state.
async fn start(builder: EmitterBuilder) -> Result<Emitter, String> {
    builder
        // Unbounded, like the baseline's channel: a bounded emitter would refuse events that the
        // baseline accepts, and the two would not do the same work.
        .capacity(Capacity::Unbounded)
        .start()
        .await
        .map_err(|error| format!("start failed: {error}"))
}

/// Checks the emitter's own count of deliveries, then shuts it down.
async fn finish(emitter: Emitter, deliveries: u64) -> Result<(), String> {
    let metrics = emitter.metrics();
    check("emitter metrics: delivered", metrics.delivered, deliveries)?;
    check("emitter metrics: failed", metrics.failed, 0)?;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("shutdown failed: {error}"))?;
    Ok(())
}

fn emit_failed(id: u64, error: impl std::fmt::Display) -> String {
    format!("emit of id {id} failed: {error}")
}

// W1: 1 listener. -----------------------------------------------------------------------------

async fn w1_emitter(emits: u64) -> Result<Duration, String> {
    let counter = Counter::default();
    let emitter = start(
        Emitter::builder()
            .listeners(listeners![count_signup])
            .state(counter.clone()),
    )
    .await?;
    let started = Instant::now();
    for id in 1..=emits {
        emitter
            .emit(Signup::new(id))
            .map_err(|error| emit_failed(id, error))?;
    }
    emitter.wait_idle().await;
    let elapsed = started.elapsed();
    check("W1 counter", counter.get(), sum_to(emits))?;
    finish(emitter, emits).await?;
    Ok(elapsed)
}

async fn w1_baseline(emits: u64) -> Result<Duration, String> {
    let counter = Counter::default();
    let state = counter.clone();
    let baseline =
        Baseline::spawn(move |event: Signup| count_signup(event.id, State(state.clone())));
    let started = Instant::now();
    for id in 1..=emits {
        baseline.send(Signup::new(id))?;
    }
    baseline.finish().await?;
    let elapsed = started.elapsed();
    check("W1 baseline counter", counter.get(), sum_to(emits))?;
    Ok(elapsed)
}

// W2: 3 listeners on one event. -----------------------------------------------------------------

fn check_fanout(side: &str, counters: &Counters, emits: u64) -> Result<(), String> {
    for (slot, value) in counters.values().into_iter().enumerate() {
        check(&format!("W2 {side} counter {slot}"), value, sum_to(emits))?;
    }
    Ok(())
}

async fn w2_emitter(emits: u64) -> Result<Duration, String> {
    let counters = Counters::new(3);
    let emitter = start(
        Emitter::builder()
            .listeners(listeners![fanout_a, fanout_b, fanout_c])
            .state(counters.clone()),
    )
    .await?;
    let started = Instant::now();
    for id in 1..=emits {
        emitter
            .emit(Signup::new(id))
            .map_err(|error| emit_failed(id, error))?;
    }
    emitter.wait_idle().await;
    let elapsed = started.elapsed();
    check_fanout("emitter", &counters, emits)?;
    finish(emitter, 3 * emits).await?;
    Ok(elapsed)
}

async fn w2_baseline(emits: u64) -> Result<Duration, String> {
    let counters = Counters::new(3);
    let state = counters.clone();
    let baseline = Baseline::spawn(move |event: Signup| {
        let state = state.clone();
        async move {
            fanout_a(event.id, State(state.clone())).await;
            fanout_b(event.id, State(state.clone())).await;
            fanout_c(event.id, State(state)).await;
        }
    });
    let started = Instant::now();
    for id in 1..=emits {
        baseline.send(Signup::new(id))?;
    }
    baseline.finish().await?;
    let elapsed = started.elapsed();
    check_fanout("baseline", &counters, emits)?;
    Ok(elapsed)
}

// W3: 16 events, 4 listeners each. --------------------------------------------------------------

fn check_ring(side: &str, counters: &Counters, emits: u64) -> Result<(), String> {
    let expected = ring::expected_sums(emits);
    for (listener, (value, expected)) in counters.values().into_iter().zip(expected).enumerate() {
        check(
            &format!("W3 {side} counter of ring_{listener}"),
            value,
            expected,
        )?;
    }
    Ok(())
}

async fn w3_emitter(emits: u64) -> Result<Duration, String> {
    let counters = Counters::new(ring::EVENTS);
    let emitter = start(ring::with_listeners(Emitter::builder()).state(counters.clone())).await?;
    let started = Instant::now();
    for i in 0..emits {
        ring::emit(&emitter, ring::index_of_emit(i), i + 1)
            .map_err(|error| emit_failed(i + 1, error))?;
    }
    emitter.wait_idle().await;
    let elapsed = started.elapsed();
    check_ring("emitter", &counters, emits)?;
    finish(emitter, ring::FANOUT as u64 * emits).await?;
    Ok(elapsed)
}

async fn w3_baseline(emits: u64) -> Result<Duration, String> {
    let counters = Counters::new(ring::EVENTS);
    let state = counters.clone();
    let baseline = Baseline::spawn(move |event: RingEvent| {
        let state = state.clone();
        async move { ring::deliver_by_hand(event, &state).await }
    });
    let started = Instant::now();
    for i in 0..emits {
        baseline.send(RingEvent::new(ring::index_of_emit(i), i + 1))?;
    }
    baseline.finish().await?;
    let elapsed = started.elapsed();
    check_ring("baseline", &counters, emits)?;
    Ok(elapsed)
}

// W4: latency from emit to listener start, one emit at a time. -----------------------------------

/// Waits for the listener's report of ping `seq` and returns how long after `sent` it started.
async fn started_after(
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<(u64, Instant)>,
    seq: u64,
    sent: Instant,
) -> Result<Duration, String> {
    match reports.recv().await {
        Some((got, at)) if got == seq => Ok(at.saturating_duration_since(sent)),
        Some((got, _)) => Err(format!("W4: ping {seq} was sent, ping {got} started")),
        None => Err("W4: the listener's reports stopped".to_owned()),
    }
}

async fn w4_emitter(emits: u64) -> Result<Vec<Duration>, String> {
    let (probe, mut reports) = Probe::new();
    let emitter = start(
        Emitter::builder()
            .listeners(listeners![ping_started])
            .state(probe.clone()),
    )
    .await?;
    let mut latencies = Vec::with_capacity(emits as usize);
    for seq in 1..=emits {
        let sent = Instant::now();
        emitter
            .emit(Ping { seq })
            .map_err(|error| emit_failed(seq, error))?;
        latencies.push(started_after(&mut reports, seq, sent).await?);
    }
    emitter.wait_idle().await;
    check("W4 emitter sum of seqs", probe.sum(), sum_to(emits))?;
    finish(emitter, emits).await?;
    Ok(latencies)
}

async fn w4_baseline(emits: u64) -> Result<Vec<Duration>, String> {
    let (probe, mut reports) = Probe::new();
    let state = probe.clone();
    let baseline =
        Baseline::spawn(move |event: Ping| ping_started(event.seq, State(state.clone())));
    let mut latencies = Vec::with_capacity(emits as usize);
    for seq in 1..=emits {
        let sent = Instant::now();
        baseline.send(Ping { seq })?;
        latencies.push(started_after(&mut reports, seq, sent).await?);
    }
    baseline.finish().await?;
    check("W4 baseline sum of seqs", probe.sum(), sum_to(emits))?;
    Ok(latencies)
}

/// Pools the latencies of every round (alternating sides, as for throughput) and prints their
/// 50th and 99th percentiles.
fn latency(flavor: Flavor, config: &Config, emits: u64) -> Result<(), String> {
    let runtime = flavor.runtime()?;
    let mut emitter = Vec::new();
    let mut baseline = Vec::new();
    // Round 0 warms up and is not counted, as for throughput.
    for round in 0..=config.rounds {
        let context = |side: &str, error: String| {
            format!("{side} on {}, round {round}: {error}", flavor.name())
        };
        let run_emitter =
            || run_task(&runtime, w4_emitter(emits)).map_err(|e| context("emitter", e));
        let run_baseline =
            || run_task(&runtime, w4_baseline(emits)).map_err(|e| context("baseline", e));
        let (e, b) = if round % 2 == 0 {
            let e = run_emitter()?;
            (e, run_baseline()?)
        } else {
            let b = run_baseline()?;
            (run_emitter()?, b)
        };
        if round > 0 {
            emitter.extend(e);
            baseline.extend(b);
        }
    }
    let (emitter_p50, emitter_p99) = percentiles(&mut emitter);
    let (baseline_p50, baseline_p99) = percentiles(&mut baseline);
    println!(
        "workload=W4 runtime={} emitter_p50_us={emitter_p50:.2} emitter_p99_us={emitter_p99:.2} \
         baseline_p50_us={baseline_p50:.2} baseline_p99_us={baseline_p99:.2}",
        flavor.name()
    );
    Ok(())
}

/// The 50th and 99th percentiles (nearest rank), in microseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |p: usize| {
        let index = (samples.len() * p).div_ceil(100).saturating_sub(1);
        samples
            .get(index)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    };
    (at(50), at(99))
}
