//! Heap allocations per emit, and heap memory per queued event, of the emitter and of the
//! hand-written baseline (a tokio unbounded channel and one worker task).
//!
//! ```sh
//! cargo bench -p emitter-bench --bench alloc_per_emit
//! ```
//!
//! Every allocation of the process goes through a counting allocator. Each event is W1's
//! `Signup`, whose 20-byte e-mail string is the payload's own allocation: it is measured alone
//! first and subtracted (`beyond_payload`). Everything runs on a current-thread runtime, so a
//! loop that does not await runs alone: while it emits, no listener runs.
//!
//! - `emit_only`: the emit loop alone, the listener not yet started (it has not been polled).
//! - `emit_and_delivery`: the emit loop, then `wait_idle` until every listener call finished.
//! - `queued`: heap bytes held (allocated, not freed) per event after the emit loop, listener
//!   gated; `started` the same once every delivery has started and waits at the gate.

use std::alloc::System;
use std::ops::Range;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use emitter::{listeners, Capacity, Emitter, EmitterBuilder, State};
use emitter_bench::baseline::Baseline;
use emitter_bench::counter::Counter;
use emitter_bench::signup::{count_signup, gated_count_signup, Gate, Signup};
use emitter_bench::{check, current_thread_runtime, sum_to};
use stats_alloc::{Region, Stats, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Events per measurement: enough that one-off allocations (a channel's next block, a table
/// growing) average out, few enough to hold them all in memory at once.
const EVENTS: u64 = 100_000;

/// Emits before measuring, so that lazily built state (ids, channels' first blocks) is in place.
const WARM_UP: u64 = 1_000;

/// The ids of the warm-up events; counters then hold `sum_to(WARM_UP)`.
fn warm_up_ids() -> Range<u64> {
    1..WARM_UP + 1
}

/// The ids of the measured events; counters then hold `sum_to(WARM_UP + EVENTS)`.
fn measured_ids() -> Range<u64> {
    WARM_UP + 1..WARM_UP + EVENTS + 1
}

/// What a measured stretch allocated, per event.
#[derive(Debug, Clone, Copy)]
struct PerEvent {
    /// Allocator calls that returned memory: allocations and reallocations.
    allocs: f64,
    /// Bytes those calls asked for (a reallocation counts its growth).
    bytes: f64,
    /// Bytes allocated and not freed by the end of the stretch.
    held: f64,
}

impl PerEvent {
    fn of(stats: Stats, events: u64) -> Self {
        let n = events as f64;
        let grown = stats.bytes_reallocated.max(0) as f64;
        let held = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64
            + stats.bytes_reallocated as f64;
        PerEvent {
            allocs: (stats.allocations + stats.reallocations) as f64 / n,
            bytes: (stats.bytes_allocated as f64 + grown) / n,
            held: held / n,
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("alloc_per_emit: FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let runtime = current_thread_runtime().map_err(|error| format!("no runtime: {error}"))?;
    println!(
        "# alloc_per_emit: {EVENTS} events of W1's Signup {{ email: 20-byte String, id: u64 }}, \
         current_thread runtime, counted by a global allocator; emitter Capacity::Unbounded"
    );

    let payload = payload();
    println!(
        "alloc target=payload allocs_per_event={:.2} bytes_per_event={:.1}",
        payload.allocs, payload.bytes
    );

    let (emit_only, started) = runtime.block_on(emitter_gated())?;
    let delivery = runtime.block_on(emitter_delivered())?;
    print_allocs("emitter", "emit_only", emit_only, payload);
    print_allocs("emitter", "emit_and_delivery", delivery, payload);
    print_held(
        "emitter",
        "queued",
        "bytes_per_queued_event",
        emit_only,
        payload,
    );
    print_held(
        "emitter",
        "started",
        "bytes_per_waiting_delivery",
        started,
        payload,
    );
    println!(
        "alloc target=emitter phase=after_idle retained_bytes_per_event={:.1}",
        delivery.held
    );

    let send_only = runtime.block_on(baseline_queued())?;
    let baseline_delivery = runtime.block_on(baseline_delivered())?;
    print_allocs("baseline", "emit_only", send_only, payload);
    print_allocs("baseline", "emit_and_delivery", baseline_delivery, payload);
    print_held(
        "baseline",
        "queued",
        "bytes_per_queued_event",
        send_only,
        payload,
    );
    println!(
        "alloc target=baseline phase=after_idle retained_bytes_per_event={:.1}",
        baseline_delivery.held
    );
    Ok(())
}

fn print_allocs(target: &str, phase: &str, measured: PerEvent, payload: PerEvent) {
    println!(
        "alloc target={target} phase={phase} allocs_per_emit={:.2} beyond_payload={:.2} \
         bytes_per_emit={:.1} bytes_beyond_payload={:.1}",
        measured.allocs,
        measured.allocs - payload.allocs,
        measured.bytes,
        measured.bytes - payload.bytes
    );
}

fn print_held(target: &str, phase: &str, key: &str, measured: PerEvent, payload: PerEvent) {
    println!(
        "alloc target={target} phase={phase} {key}={:.1} beyond_payload={:.1}",
        measured.held,
        measured.held - payload.held
    );
}

/// The payload's own allocations: building the events and keeping them.
fn payload() -> PerEvent {
    let mut events = Vec::with_capacity(EVENTS as usize);
    let region = Region::new(GLOBAL);
    for id in 0..EVENTS {
        events.push(Signup::new(id));
    }
    let stats = region.change();
    drop(events);
    PerEvent::of(stats, EVENTS)
}

/// Yields to the runtime's other tasks until `done()`, or fails after a minute.
async fn until(what: &str, done: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("not done within a minute: {what}"));
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

async fn start(builder: EmitterBuilder) -> Result<Emitter, String> {
    builder
        // Unbounded, like the baseline's channel, so that every event is accepted while gated.
        .capacity(Capacity::Unbounded)
        .start()
        .await
        .map_err(|error| format!("start failed: {error}"))
}

async fn emit_all(emitter: &Emitter, ids: Range<u64>) -> Result<(), String> {
    for id in ids {
        emitter
            .emit(Signup::new(id))
            .map_err(|error| format!("emit of id {id} failed: {error}"))?;
    }
    Ok(())
}

/// Emit alone, memory held by queued events, and by started deliveries waiting at a gate.
async fn emitter_gated() -> Result<(PerEvent, PerEvent), String> {
    let gate = Gate::closed();
    let counter = Counter::default();
    let emitter = start(
        Emitter::builder()
            .listeners(listeners![gated_count_signup])
            .state(gate.clone())
            .state(counter.clone()),
    )
    .await?;
    gate.open();
    emit_all(&emitter, warm_up_ids()).await?;
    emitter.wait_idle().await;
    gate.close();

    let region = Region::new(GLOBAL);
    emit_all(&emitter, measured_ids()).await?;
    let emitted = region.change();
    // Let the emitter's tasks run until every delivery has started and waits at the gate.
    until("every delivery reaches the gate", || {
        gate.arrived() == WARM_UP + EVENTS
    })
    .await?;
    let waiting = region.change();

    gate.open();
    emitter.wait_idle().await;
    check(
        "gated listener's counter",
        counter.get(),
        sum_to(WARM_UP + EVENTS),
    )?;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("shutdown failed: {error}"))?;
    Ok((PerEvent::of(emitted, EVENTS), PerEvent::of(waiting, EVENTS)))
}

/// Emit, then every delivery to its end.
async fn emitter_delivered() -> Result<PerEvent, String> {
    let counter = Counter::default();
    let emitter = start(
        Emitter::builder()
            .listeners(listeners![count_signup])
            .state(counter.clone()),
    )
    .await?;
    emit_all(&emitter, warm_up_ids()).await?;
    emitter.wait_idle().await;

    let region = Region::new(GLOBAL);
    emit_all(&emitter, measured_ids()).await?;
    emitter.wait_idle().await;
    let stats = region.change();

    check(
        "listener's counter",
        counter.get(),
        sum_to(WARM_UP + EVENTS),
    )?;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("shutdown failed: {error}"))?;
    Ok(PerEvent::of(stats, EVENTS))
}

fn counting_baseline(counter: &Counter) -> Baseline<Signup> {
    let counter = counter.clone();
    Baseline::spawn(move |event: Signup| count_signup(event.id, State(counter.clone())))
}

/// The baseline's send alone, and the memory its queued events hold.
async fn baseline_queued() -> Result<PerEvent, String> {
    let counter = Counter::default();
    let baseline = counting_baseline(&counter);
    for id in warm_up_ids() {
        baseline.send(Signup::new(id))?;
    }
    // The worker has not run yet: the warm-up events are queued too, and the channel has grown.
    let region = Region::new(GLOBAL);
    for id in measured_ids() {
        baseline.send(Signup::new(id))?;
    }
    let sent = region.change();
    baseline.finish().await?;
    check(
        "baseline's counter",
        counter.get(),
        sum_to(WARM_UP + EVENTS),
    )?;
    Ok(PerEvent::of(sent, EVENTS))
}

/// The baseline's send, then the worker's calls to their end.
async fn baseline_delivered() -> Result<PerEvent, String> {
    let counter = Counter::default();
    let baseline = counting_baseline(&counter);
    for id in warm_up_ids() {
        baseline.send(Signup::new(id))?;
    }
    // Let the worker drain the warm-up before measuring.
    until("the warm-up is delivered", || {
        counter.get() == sum_to(WARM_UP)
    })
    .await?;

    let region = Region::new(GLOBAL);
    for id in measured_ids() {
        baseline.send(Signup::new(id))?;
    }
    // Until the worker's last call finished: this also checks the counter.
    until("every event is delivered", || {
        counter.get() == sum_to(WARM_UP + EVENTS)
    })
    .await?;
    let stats = region.change();
    baseline.finish().await?;
    Ok(PerEvent::of(stats, EVENTS))
}
