//! The conformance suite: the same cases for every backend.
//!
//! A test target declares `#[macro_use] mod conformance;` and instantiates it with
//! `memory_cases!` (the in-memory backend: the cases that apply without a store) or
//! `durable_cases!` (every case) and a [`Kit`] that makes fresh storage for each case.

#![allow(dead_code, unreachable_pub, unused_macros)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::{Durable, DurableConfig, NewEmit, Store, StoredEvent};
use emitter::{
    listener, listeners, EmitError, EmitOptions, Emitter, Event, EventEmitterBackend, EventMeta,
    Schedule, State,
};

/// How long a case waits for something that should happen well before: a liveness bound, not a
/// speed check.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Fresh storage for one case, and backends over it.
pub trait Kit: Sync {
    /// The store of this kit's backends.
    type Store: Store;
    /// Storage nobody else uses, as a handle to open backends on.
    fn storage(&self) -> impl Future<Output = Self::Storage> + Send;
    /// What [`Kit::storage`] gives.
    type Storage: Storage<Store = Self::Store>;
    /// Whether the kit's server is there; when it is not, the case returns at once (the kit has
    /// printed why, or panicked when `EMITTER_REQUIRE_SERVERS=1`).
    fn available(&self) -> bool {
        true
    }
}

/// One isolated storage: a file, a schema, a key prefix.
pub trait Storage: Send + Sync {
    /// The store type.
    type Store: Store;
    /// A new store handle on this storage: a second worker, or the same worker restarted.
    fn open(&self) -> impl Future<Output = Self::Store> + Send;
}

/// The config every case's durable backend starts from: quick polling and short leases, so that
/// cases about leases finish quickly.
pub fn quick() -> DurableConfig {
    DurableConfig::default()
        .poll_interval(Duration::from_millis(50))
        .lease(Duration::from_millis(600))
}

// ---------------------------------------------------------------------------------------------
// Events, listeners and what they record.

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.signed_up")]
pub struct SignedUp {
    pub user: String,
    pub n: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.audited")]
pub struct Audited {
    pub n: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.flaky")]
pub struct Flaky {
    pub n: u64,
    /// How many attempts fail before one succeeds.
    pub failures: u32,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.ticked")]
pub struct Ticked {
    pub tick_ms: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.blob")]
pub struct Blob {
    pub bytes: String,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.held")]
pub struct Held {
    pub n: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.slow")]
pub struct Slow {
    pub n: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.limited")]
pub struct Limited {
    pub n: u64,
}

#[derive(Event, Debug, Clone, PartialEq)]
#[event(id = "conformance.ordered")]
pub struct Ordered {
    pub n: u64,
    /// Whether its first attempt fails.
    pub fail_first: bool,
}

/// One run of a listener.
#[derive(Debug, Clone)]
pub struct Run {
    pub listener: &'static str,
    pub emit_id: u128,
    pub attempt: u32,
    pub n: u64,
    pub at: Instant,
}

/// What the listeners saw, shared through `State`.
#[derive(Clone, Default)]
pub struct Recorder {
    runs: Arc<Mutex<Vec<Run>>>,
    /// Told of every run, so that waiting for runs needs no polling.
    recorded: Arc<tokio::sync::Notify>,
    /// When set, `held` blocks forever on its first attempt.
    pub hold_first: Arc<std::sync::atomic::AtomicBool>,
    /// When set, `always_fails` succeeds.
    pub heal: Arc<std::sync::atomic::AtomicBool>,
    /// Attempts of `slow` whose future was dropped before it finished.
    cancelled: Arc<std::sync::atomic::AtomicU64>,
    /// Deliveries of `limited` and `ordered` running now, and the most at once.
    running: Arc<std::sync::atomic::AtomicU64>,
    peak: Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    fn record(&self, meta: &EventMeta, n: u64) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Run {
                listener: meta.listener(),
                emit_id: meta.emit_id().as_u128(),
                attempt: meta.attempt(),
                n,
                at: Instant::now(),
            });
        self.recorded.notify_waiters();
    }

    /// Counts a delivery in while `work` runs, keeping the peak.
    async fn counted<T>(&self, work: impl Future<Output = T>) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        let result = work.await;
        self.running.fetch_sub(1, SeqCst);
        result
    }

    /// The most deliveries of `limited` or `ordered` that ran at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn runs(&self) -> Vec<Run> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn runs_of(&self, listener: &str) -> Vec<Run> {
        self.runs()
            .into_iter()
            .filter(|run| run.listener == listener)
            .collect()
    }

    /// Waits until `done` holds for the runs, or panics after [`PATIENCE`] saying what it saw.
    pub async fn until(&self, what: &str, done: impl Fn(&[Run]) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let recorded = self.recorded.notified();
            tokio::pin!(recorded);
            recorded.as_mut().enable();
            let runs = self.runs();
            if done(&runs) {
                return;
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                panic!("gave up waiting for {what}; runs so far: {runs:#?}");
            }
        }
    }
}

#[listener(events = [SignedUp], name = "conformance.welcome")]
async fn welcome(user: &str, n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    assert_eq!(user, format!("user-{n}"));
    recorder.record(&meta, n);
}

#[listener(events = [Audited], name = "conformance.audit_a")]
async fn audit_a(n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder.record(&meta, n);
}

#[listener(events = [Audited], name = "conformance.audit_b")]
async fn audit_b(n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder.record(&meta, n);
}

#[listener(events = [Flaky], name = "conformance.flaky", attempts = 3, backoff = "200ms..200ms")]
async fn flaky(
    n: u64,
    failures: u32,
    meta: EventMeta,
    State(recorder): State<Recorder>,
) -> Result<(), String> {
    recorder.record(&meta, n);
    if meta.attempt() <= failures {
        return Err(format!("flaky failure on attempt {}", meta.attempt()));
    }
    Ok(())
}

#[listener(events = [Audited], name = "conformance.always_fails", attempts = 2, backoff = "50ms..50ms")]
async fn always_fails(
    n: u64,
    meta: EventMeta,
    State(recorder): State<Recorder>,
) -> Result<(), String> {
    recorder.record(&meta, n);
    if recorder.heal.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    Err(format!("the mail server said no to #{n}"))
}

#[listener(events = [Ticked], name = "conformance.tick")]
async fn tick(tick_ms: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder.record(&meta, tick_ms);
}

#[listener(events = [Blob], name = "conformance.blob")]
async fn blob(bytes: &str, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder.record(&meta, bytes.len() as u64);
}

#[listener(events = [Held], name = "conformance.held")]
async fn held(n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder.record(&meta, n);
    if meta.attempt() == 1
        && recorder
            .hold_first
            .load(std::sync::atomic::Ordering::SeqCst)
    {
        std::future::pending::<()>().await;
    }
}

/// Counts an attempt of `slow` as cancelled unless it finished.
struct Unfinished(Arc<std::sync::atomic::AtomicU64>, bool);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Its first attempt outlasts its timeout; the second is quick.
#[listener(events = [Slow], name = "conformance.slow", timeout = "150ms", attempts = 2, backoff = "10ms..10ms")]
async fn slow(n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder.record(&meta, n);
    let mut guard = Unfinished(Arc::clone(&recorder.cancelled), false);
    if meta.attempt() == 1 {
        std::future::pending::<()>().await;
    }
    guard.1 = true;
}

/// At most two at once, across every worker.
#[listener(events = [Limited], name = "conformance.limited", concurrency = 2)]
async fn limited(n: u64, meta: EventMeta, State(recorder): State<Recorder>) {
    recorder
        .counted(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            recorder.record(&meta, n);
        })
        .await;
}

/// One at a time, in emit order, retries included.
#[listener(events = [Ordered], name = "conformance.ordered", concurrency = 1, attempts = 3, backoff = "100ms..100ms")]
async fn ordered(
    n: u64,
    fail_first: bool,
    meta: EventMeta,
    State(recorder): State<Recorder>,
) -> Result<(), String> {
    recorder
        .counted(async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            recorder.record(&meta, n);
            if fail_first && meta.attempt() == 1 {
                return Err(format!("#{n} fails its first attempt"));
            }
            Ok(())
        })
        .await
}

async fn start(backend: impl EventEmitterBackend, recorder: &Recorder) -> Emitter {
    Emitter::builder()
        .listeners(listeners![
            welcome,
            audit_a,
            audit_b,
            flaky,
            always_fails,
            tick,
            blob,
            held,
            limited,
            ordered,
            slow
        ])
        .state(recorder.clone())
        .backend(backend)
        .start()
        .await
        .expect("the emitter starts")
}

fn emit_ids(runs: &[Run], listener: &str) -> BTreeMap<u128, usize> {
    let mut seen = BTreeMap::new();
    for run in runs.iter().filter(|run| run.listener == listener) {
        *seen.entry(run.emit_id).or_insert(0) += 1;
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Cases for every backend.

/// Emitted events reach their listener with their fields.
pub async fn emit_and_deliver(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    for n in 0..20u64 {
        emitter
            .emit(SignedUp {
                user: format!("user-{n}"),
                n,
            })
            .expect("accepted");
    }
    recorder.until("20 welcomes", |runs| runs.len() >= 20).await;
    let seen: BTreeSet<u64> = recorder.runs().iter().map(|run| run.n).collect();
    assert_eq!(seen, (0..20).collect());
    emitter.shutdown().await.expect("shutdown");
}

/// Each (event, listener) pair gets each emit once: two listeners, 100 emits, 200 runs.
pub async fn one_delivery_per_pair(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    recorder
        .heal
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for n in 0..100u64 {
        emitter.emit(Audited { n }).expect("accepted");
    }
    let listeners = [
        "conformance.audit_a",
        "conformance.audit_b",
        "conformance.always_fails",
    ];
    recorder
        .until("100 runs of each audit listener", |runs| {
            listeners
                .iter()
                .all(|listener| emit_ids(runs, listener).len() >= 100)
        })
        .await;
    // Everything handled, and nothing left running: a duplicate would have run by now.
    idle(&emitter).await;
    emitter.shutdown().await.expect("shutdown");
    let runs = recorder.runs();
    for listener in listeners {
        let seen = emit_ids(&runs, listener);
        assert_eq!(seen.len(), 100, "{listener} saw {} emits", seen.len());
        assert!(
            seen.values().all(|&count| count == 1),
            "{listener} ran an emit twice: {seen:?}"
        );
    }
}

/// A failing attempt is retried after the listener's backoff, with the attempt number growing.
pub async fn retry_with_backoff(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    emitter.emit(Flaky { n: 7, failures: 2 }).expect("accepted");
    recorder
        .until("three attempts", |runs| runs.len() >= 3)
        .await;
    let runs = recorder.runs();
    let attempts: Vec<u32> = runs.iter().map(|run| run.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    for pair in runs.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited >= Duration::from_millis(200),
            "retried after {waited:?}, before the 200 ms backoff"
        );
    }
    idle(&emitter).await;
    emitter.shutdown().await.expect("shutdown");
    assert_eq!(recorder.runs().len(), 3, "a succeeded delivery ran again");
}

/// `emit_after` and `emit_at` deliver no earlier than asked; a time in the past delivers now.
pub async fn delayed_emit(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    let emitted = Instant::now();
    emitter
        .emit_after(Duration::from_millis(700), Audited { n: 1 })
        .expect("accepted");
    emitter
        .emit_at(
            SystemTime::now() + Duration::from_millis(400),
            Audited { n: 2 },
        )
        .expect("accepted");
    emitter
        .emit_at(
            SystemTime::now() - Duration::from_secs(60),
            Audited { n: 3 },
        )
        .expect("accepted");
    recorder
        .until("three delayed events", |runs| {
            emit_ids(runs, "conformance.audit_a").len() >= 3
        })
        .await;
    let runs = recorder.runs_of("conformance.audit_a");
    let at = |n: u64| {
        runs.iter()
            .find(|run| run.n == n)
            .map(|run| run.at - emitted)
            .expect("ran")
    };
    assert!(
        at(1) >= Duration::from_millis(700),
        "emit_after(700 ms) ran after {:?}",
        at(1)
    );
    assert!(
        at(2) >= Duration::from_millis(400),
        "emit_at(+400 ms) ran after {:?}",
        at(2)
    );
    assert!(
        at(3) < at(2),
        "the past-due event waited behind a later one"
    );
    let order: Vec<u64> = runs.iter().map(|run| run.n).collect();
    assert_eq!(order, [3, 2, 1]);
    emitter.shutdown().await.expect("shutdown");
}

/// A second emit with a known idempotency key is dropped; other keys are not.
pub async fn idempotency_key(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    let keyed = |key: &str| EmitOptions::new().idempotency_key(key);
    emitter
        .emit_with(Audited { n: 1 }, keyed("order-1"))
        .expect("accepted");
    emitter
        .emit_with(Audited { n: 2 }, keyed("order-1"))
        .expect("a duplicate is accepted and dropped");
    emitter
        .emit_with(Audited { n: 3 }, keyed("order-2"))
        .expect("accepted");
    emitter.emit(Audited { n: 4 }).expect("accepted");
    emitter.emit(Audited { n: 5 }).expect("no key, no dedupe");
    recorder
        .until("four audits", |runs| {
            emit_ids(runs, "conformance.audit_a").len() >= 4
        })
        .await;
    idle(&emitter).await;
    emitter.shutdown().await.expect("shutdown");
    let seen: BTreeSet<u64> = recorder
        .runs_of("conformance.audit_a")
        .iter()
        .map(|run| run.n)
        .collect();
    assert_eq!(seen, BTreeSet::from([1, 3, 4, 5]));
}

/// A cron schedule fires once per tick, each tick once, on every process that runs it.
pub async fn cron_once_per_tick<B: EventEmitterBackend>(backends: Vec<B>) {
    let recorder = Recorder::default();
    let mut emitters = Vec::new();
    for backend in backends {
        let schedule = Schedule::cron("conformance-every-second", "* * * * * *", |tick| Ticked {
            tick_ms: tick
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64),
        })
        .expect("a valid expression");
        emitters.push(
            Emitter::builder()
                .listeners(listeners![tick])
                .state(recorder.clone())
                .backend(backend)
                .schedule(schedule)
                .start()
                .await
                .expect("starts"),
        );
    }
    recorder.until("three ticks", |runs| runs.len() >= 3).await;
    for emitter in &emitters {
        emitter.shutdown().await.expect("shutdown");
    }
    let runs = recorder.runs();
    let mut per_tick: BTreeMap<u64, usize> = BTreeMap::new();
    for run in &runs {
        *per_tick.entry(run.n).or_insert(0) += 1;
    }
    assert!(
        per_tick.values().all(|&count| count == 1),
        "a tick fired more than once: {per_tick:?}"
    );
    assert!(
        per_tick.keys().all(|tick| tick % 1000 == 0),
        "ticks not on the second: {per_tick:?}"
    );
    let ticks: Vec<u64> = per_tick.keys().copied().collect();
    assert!(
        ticks.windows(2).all(|pair| pair[1] - pair[0] == 1000),
        "ticks skipped or doubled: {ticks:?}"
    );
}

/// `wait_idle` returns once everything emitted through the emitter was handled: delivered, or
/// failed for good after its last attempt. What the listeners did is there to read at once.
pub async fn wait_idle_means_handled(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    for n in 0..50u64 {
        emitter
            .emit(SignedUp {
                user: format!("user-{n}"),
                n,
            })
            .expect("accepted");
    }
    // Each goes to `audit_a`, `audit_b` and `always_fails` (two attempts, then given up).
    for n in 0..5u64 {
        emitter.emit(Audited { n }).expect("accepted");
    }
    // Fails once, succeeds on its second attempt 200 ms later.
    emitter
        .emit(Flaky { n: 99, failures: 1 })
        .expect("accepted");
    idle(&emitter).await;
    let runs = recorder.runs();
    assert_eq!(emit_ids(&runs, "conformance.welcome").len(), 50);
    for listener in ["conformance.audit_a", "conformance.audit_b"] {
        assert_eq!(emit_ids(&runs, listener).len(), 5, "{listener}");
    }
    let failing = recorder.runs_of("conformance.always_fails");
    assert_eq!(
        failing.len(),
        10,
        "both attempts of each failing delivery ran before wait_idle returned: {failing:#?}"
    );
    let flaky: Vec<u32> = recorder
        .runs_of("conformance.flaky")
        .iter()
        .map(|run| run.attempt)
        .collect();
    assert_eq!(flaky, [1, 2], "the retry ran before wait_idle returned");
    emitter.shutdown().await.expect("shutdown");
}

/// `shutdown_timeout(d)` returns at about `d` whatever still runs, and its report names the
/// delivery that was running: event, listener, emit id and attempt. Returns the emit id.
pub async fn shutdown_deadline_names_what_runs(backend: impl EventEmitterBackend) -> u128 {
    let recorder = Recorder::default();
    recorder
        .hold_first
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let emitter = start(backend, &recorder).await;
    let emit_id = emitter.emit(Held { n: 1 }).expect("accepted");
    recorder
        .until("the held delivery to start", |runs| !runs.is_empty())
        .await;
    let asked = Instant::now();
    let report = emitter
        .shutdown_timeout(Duration::from_millis(300))
        .await
        .expect("shutdown");
    let took = asked.elapsed();
    // Durable cases lease for a minute: a shutdown that waited for the lease would take that.
    assert!(
        took < Duration::from_secs(10),
        "shutdown_timeout(300 ms) took {took:?}"
    );
    assert!(!report.is_complete(), "{report}");
    let row = report
        .delivery("conformance.held", "conformance.held")
        .expect("the held listener's row");
    assert_eq!(row.running.len(), 1, "{report}");
    assert_eq!(row.running[0].emit_id, emit_id);
    assert_eq!(row.running[0].attempt, 1);
    let text = report.to_string();
    assert!(
        text.contains("conformance.held") && text.contains(&emit_id.to_string()),
        "{text}"
    );
    emit_id.as_u128()
}

/// Dropping every handle of an emitter without shutting it down stops what it runs and frees
/// its state (and with it its table and backend), even with a delivery hanging.
pub async fn dropped_emitter_is_freed(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    recorder
        .hold_first
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (probe, freed) = emitter_tests::DropProbe::new();
    let emitter = Emitter::builder()
        .listeners(listeners![held])
        .state(recorder.clone())
        .state(probe)
        .backend(backend)
        .start()
        .await
        .expect("starts");
    emitter.emit(Held { n: 1 }).expect("accepted");
    recorder
        .until("the held delivery to start", |runs| !runs.is_empty())
        .await;
    drop(emitter);
    tokio::time::timeout(PATIENCE, freed)
        .await
        .expect("the emitter's state is freed once every handle is dropped")
        .expect("the last copy of the state was dropped, not leaked");
}

/// An attempt that outlasts the listener's timeout is cancelled (its future dropped) and
/// counts as failed: the next attempt follows.
pub async fn timeout_cancels_the_attempt(backend: impl EventEmitterBackend) {
    let recorder = Recorder::default();
    let emitter = start(backend, &recorder).await;
    emitter.emit(Slow { n: 1 }).expect("accepted");
    idle(&emitter).await;
    emitter.shutdown().await.expect("shutdown");
    let attempts: Vec<u32> = recorder
        .runs_of("conformance.slow")
        .iter()
        .map(|run| run.attempt)
        .collect();
    assert_eq!(attempts, [1, 2], "timed out, then retried");
    assert_eq!(
        recorder.cancelled.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the timed-out attempt was cancelled"
    );
}

/// A listener with `concurrency = 2` never runs more than two deliveries at once, across
/// every worker of the backends given (workers sharing one store).
pub async fn concurrency_limit_holds_across_workers<B: EventEmitterBackend>(backends: Vec<B>) {
    let recorder = Recorder::default();
    let mut emitters = Vec::new();
    for backend in backends {
        emitters.push(start(backend, &recorder).await);
    }
    for n in 0..30u64 {
        emitters[0].emit(Limited { n }).expect("accepted");
    }
    idle(&emitters[0]).await;
    for emitter in &emitters {
        emitter.shutdown().await.expect("shutdown");
    }
    let seen = emit_ids(&recorder.runs(), "conformance.limited");
    assert_eq!(seen.len(), 30);
    assert!(seen.values().all(|&runs| runs == 1), "{seen:?}");
    let peak = recorder.peak();
    assert!(
        peak <= 2,
        "{peak} deliveries of a listener limited to 2 ran at once"
    );
}

/// A listener with `concurrency = 1` runs one delivery at a time in emit order, across every
/// worker, retries included: a delivery waiting for its retry holds back the later ones.
pub async fn one_at_a_time_in_emit_order_retries_included<B: EventEmitterBackend>(
    backends: Vec<B>,
) {
    let recorder = Recorder::default();
    let mut emitters = Vec::new();
    for backend in backends {
        emitters.push(start(backend, &recorder).await);
    }
    for n in 0..12u64 {
        emitters[0]
            .emit(Ordered {
                n,
                fail_first: n % 4 == 1,
            })
            .expect("accepted");
    }
    idle(&emitters[0]).await;
    for emitter in &emitters {
        emitter.shutdown().await.expect("shutdown");
    }
    let runs: Vec<(u64, u32)> = recorder
        .runs_of("conformance.ordered")
        .iter()
        .map(|run| (run.n, run.attempt))
        .collect();
    let mut expected = Vec::new();
    for n in 0..12u64 {
        expected.push((n, 1));
        if n % 4 == 1 {
            expected.push((n, 2));
        }
    }
    assert_eq!(
        runs, expected,
        "in emit order, each retry before the next delivery"
    );
    assert_eq!(recorder.peak(), 1, "one at a time");
}

/// With `propagate_span(true)`, the span current at `emit` is the parent of every delivery
/// span, retries included, on whichever worker of the backends given runs it. When `stored`,
/// the event went through a store, and the delivery spans also record the stored W3C
/// `traceparent`: the emit id as the trace id and the emitting span as the parent (the form
/// used without the `opentelemetry` feature, or without an OpenTelemetry layer).
///
/// The spans are seen by a subscriber global to the test binary (a subscriber of one thread
/// would not see the deliveries other threads run, and would race with the other tests'
/// threads over which spans are recorded at all).
pub async fn spans_follow_the_emit<B: EventEmitterBackend>(backends: Vec<B>, stored: bool) {
    let spans = emitter_tests::SpanLog::global();
    let recorder = Recorder::default();
    let mut emitters = Vec::new();
    for backend in backends {
        emitters.push(
            Emitter::builder()
                .listeners(listeners![welcome, flaky])
                .state(recorder.clone())
                .propagate_span(true)
                .backend(backend)
                .start()
                .await
                .expect("starts"),
        );
    }
    let request = tracing::info_span!("request");
    let (welcomed, retried) = request.in_scope(|| {
        let welcomed = emitters[0]
            .emit(SignedUp {
                user: "user-1".into(),
                n: 1,
            })
            .expect("accepted");
        let retried = emitters[0]
            .emit(Flaky { n: 2, failures: 1 })
            .expect("accepted");
        (welcomed, retried)
    });
    let request_id = request
        .id()
        .expect("the request span is recorded")
        .into_u64();
    drop(request);
    idle(&emitters[0]).await;
    for emitter in &emitters {
        emitter.shutdown().await.expect("shutdown");
    }
    let ours = [welcomed.to_string(), retried.to_string()];
    let deliveries: Vec<_> = spans
        .named("emitter.delivery")
        .into_iter()
        .filter(|span| {
            span.field("emit_id")
                .is_some_and(|id| ours.iter().any(|ours| ours == id))
        })
        .collect();
    assert_eq!(deliveries.len(), 3, "one span per attempt: {deliveries:#?}");
    for span in &deliveries {
        assert_eq!(span.parent, Some("request"), "{span:#?}");
        let emit_id = if span.field("listener") == Some("conformance.welcome") {
            welcomed
        } else {
            retried
        };
        let traceparent = format!("00-{emit_id}-{request_id:016x}-01");
        if stored {
            assert_eq!(
                span.field("traceparent"),
                Some(traceparent.as_str()),
                "{span:#?}"
            );
        } else {
            assert_eq!(span.field("traceparent"), None, "{span:#?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases for durable backends.

/// A delivery that fails on its last attempt is dead-lettered with the reason; the dead letter
/// can be listed, inspected, replayed (and then delivered) and discarded.
pub async fn dead_letters<K: Kit>(kit: &K) {
    let storage = kit.storage().await;
    let backend = Durable::with_config(storage.open().await, quick());
    let recorder = Recorder::default();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let hook_failures = Arc::clone(&failures);
    let emitter = Emitter::builder()
        .listeners(listeners![always_fails])
        .state(recorder.clone())
        .backend(backend.clone())
        .on_error(move |error| {
            hook_failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(error.to_string());
        })
        .start()
        .await
        .expect("starts");
    emitter.emit(Audited { n: 41 }).expect("accepted");
    emitter.emit(Audited { n: 42 }).expect("accepted");
    recorder
        .until("two attempts each", |runs| runs.len() >= 4)
        .await;
    settle(&backend).await;
    let counts = backend.counts().await.expect("counts");
    assert_eq!((counts.waiting, counts.leased, counts.dead), (0, 0, 2));
    let letters = backend.dead_letters(10).await.expect("listed");
    assert_eq!(letters.len(), 2);
    let letter = letters
        .iter()
        .find(|letter| letter.payload_text().contains("42"))
        .expect("the dead letter of #42");
    assert_eq!(letter.listener, "conformance.always_fails");
    assert_eq!(letter.event.event_id, "conformance.audited");
    assert_eq!(letter.attempts, 2);
    assert!(
        letter.reason.contains("the mail server said no to #42")
            && letter.reason.contains("attempt 2 of 2"),
        "reason: {}",
        letter.reason
    );
    let hooked = failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(
        hooked.len(),
        2,
        "the error hook hears of each dead letter once: {hooked:?}"
    );

    // Replay one after the cause is fixed: it is delivered; discard the other.
    recorder
        .heal
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(backend.replay(&letter.id).await.expect("replayed"));
    assert!(!backend.replay(&letter.id).await.expect("no longer there"));
    recorder
        .until("the replayed delivery", |runs| {
            runs.iter()
                .any(|run| run.n == 42 && run.attempt == 1 && runs.len() >= 5)
        })
        .await;
    settle(&backend).await;
    let other = letters
        .iter()
        .find(|other| other.id != letter.id)
        .expect("the other");
    assert!(backend.discard(&other.id).await.expect("discarded"));
    assert!(!backend.discard(&other.id).await.expect("gone"));
    let counts = backend.counts().await.expect("counts");
    assert_eq!((counts.unfinished(), counts.dead), (0, 0));
    emitter.shutdown().await.expect("shutdown");
}

/// A payload that cannot be decoded is dead-lettered with the reason, and deliveries behind it
/// go on.
pub async fn undecodable_payload<K: Kit>(kit: &K) {
    let storage = kit.storage().await;
    let store = storage.open().await;
    let backend = Durable::with_config(storage.open().await, quick());
    let recorder = Recorder::default();
    let emitter = start(backend.clone(), &recorder).await;
    let corrupt = |payload: &[u8]| {
        NewEmit::new(
            StoredEvent::new(
                "conformance.signed_up",
                emitter::EmitId::from_u128(7),
                SystemTime::now(),
                payload.to_vec(),
            ),
            vec!["conformance.welcome"],
            SystemTime::now(),
            None,
        )
    };
    // Schema drift (a field renamed), then bytes that are not JSON at all.
    store
        .insert(&[
            corrupt(br#"{"username":"x","n":1}"#),
            corrupt(&[0xff, 0x00, 0x13]),
        ])
        .await
        .expect("inserted");
    emitter
        .emit(SignedUp {
            user: "user-9".into(),
            n: 9,
        })
        .expect("accepted");
    recorder
        .until("the good event", |runs| runs.iter().any(|run| run.n == 9))
        .await;
    settle(&backend).await;
    let letters = backend.dead_letters(10).await.expect("listed");
    assert_eq!(letters.len(), 2, "{letters:#?}");
    for letter in &letters {
        assert!(
            letter.reason.contains("cannot be decoded"),
            "reason: {}",
            letter.reason
        );
    }
    assert!(letters
        .iter()
        .any(|letter| letter.reason.contains("missing field `user`")));
    emitter.shutdown().await.expect("shutdown");
}

/// An event over the size limit is refused at emit with a clear error, and nothing is stored.
pub async fn payload_limit<K: Kit>(kit: &K) {
    let storage = kit.storage().await;
    let backend = Durable::with_config(storage.open().await, quick().max_payload(1024));
    let recorder = Recorder::default();
    let emitter = start(backend.clone(), &recorder).await;
    let error = emitter
        .emit(Blob {
            bytes: "x".repeat(2000),
        })
        .expect_err("too large");
    match &error {
        EmitError::PayloadTooLarge {
            event_id,
            size,
            limit,
        } => {
            assert_eq!(*event_id, "conformance.blob");
            assert_eq!(*limit, 1024);
            assert!(*size > 2000);
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("over the backend's limit of 1024 bytes"),
        "{error}"
    );
    emitter
        .emit(Blob {
            bytes: "x".repeat(100),
        })
        .expect("small enough");
    recorder
        .until("the small blob", |runs| !runs.is_empty())
        .await;
    settle(&backend).await;
    assert_eq!(recorder.runs().len(), 1);
    emitter.shutdown().await.expect("shutdown");
}

/// A worker that dies mid-delivery loses its lease; another takes the delivery over and runs it
/// again, as attempt 2. Nothing acknowledged to the emitter is lost.
pub async fn at_least_once_across_crash<K: Kit>(kit: &K) {
    let storage = kit.storage().await;
    let recorder = Recorder::default();
    recorder
        .hold_first
        .store(true, std::sync::atomic::Ordering::SeqCst);

    // The first worker, in a runtime of its own on a thread of its own, which the "crash"
    // throws away with everything running on it: no lease is extended, nothing acknowledged.
    let first_recorder = recorder.clone();
    let storage_ref = &storage;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let crashed = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                crashed.block_on(async move {
                    let backend = Durable::with_config(storage_ref.open().await, quick());
                    let emitter = start(backend, &first_recorder).await;
                    for n in 0..3u64 {
                        emitter.emit_async(Held { n }).await.expect("stored");
                    }
                    first_recorder
                        .until("the first attempts to hang", |runs| runs.len() >= 3)
                        .await;
                    // A crashed process runs no destructor.
                    std::mem::forget(emitter);
                });
                crashed.shutdown_background();
            })
            .join()
            .expect("the first worker ran");
    });

    // The worker restarted on the same storage.
    let backend = Durable::with_config(storage.open().await, quick());
    let emitter = start(backend.clone(), &recorder).await;
    recorder
        .until("the redeliveries", |runs| {
            runs.iter().filter(|run| run.attempt == 2).count() >= 3
        })
        .await;
    settle(&backend).await;
    let runs = recorder.runs();
    let mut by_event: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for run in &runs {
        by_event.entry(run.n).or_default().push(run.attempt);
    }
    assert_eq!(
        by_event,
        BTreeMap::from([(0, vec![1, 2]), (1, vec![1, 2]), (2, vec![1, 2])]),
        "each event ran once, hung, and ran again as attempt 2"
    );
    emitter.shutdown().await.expect("shutdown");
}

/// A shutdown deadline gives the leases of the deliveries it cancels back to the store: another
/// worker takes them over at once, not when the lease (a minute here) runs out.
pub async fn shutdown_deadline_gives_leases_back<K: Kit>(kit: &K) {
    let storage = kit.storage().await;
    let long_lease = || quick().lease(Duration::from_secs(60));
    let backend = Durable::with_config(storage.open().await, long_lease());
    let emit_id = shutdown_deadline_names_what_runs(backend).await;
    let recorder = Recorder::default();
    let emitter = start(
        Durable::with_config(storage.open().await, long_lease()),
        &recorder,
    )
    .await;
    recorder
        .until("the cancelled delivery to run again", |runs| {
            runs.iter().any(|run| run.emit_id == emit_id)
        })
        .await;
    idle(&emitter).await;
    emitter.shutdown().await.expect("shutdown");
}

/// Several workers on one storage: every delivery runs once.
pub async fn competing_workers<K: Kit>(kit: &K) {
    let storage = kit.storage().await;
    let recorder = Recorder::default();
    let mut emitters = Vec::new();
    let mut backends = Vec::new();
    for _ in 0..3 {
        let backend = Durable::with_config(storage.open().await, quick());
        backends.push(backend.clone());
        emitters.push(start(backend, &recorder).await);
    }
    for n in 0..300u64 {
        emitters[(n % 3) as usize]
            .emit(SignedUp {
                user: format!("user-{n}"),
                n,
            })
            .expect("accepted");
    }
    recorder
        .until("300 welcomes", |runs| runs.len() >= 300)
        .await;
    settle(&backends[0]).await;
    // Nothing left running anywhere: a duplicate would have run by now.
    for emitter in &emitters {
        emitter.shutdown().await.expect("shutdown");
    }
    let seen = emit_ids(&recorder.runs(), "conformance.welcome");
    assert_eq!(seen.len(), 300);
    assert!(
        seen.values().all(|&count| count == 1),
        "a delivery ran twice"
    );
}

/// `count` durable backends on one storage: workers of different processes, as far as the
/// store can tell. Their leases are long: on a loaded machine a short one could run out under a
/// delivery that is still running, and the cases using them count what runs at once.
pub async fn workers<S: Storage>(storage: &S, count: usize) -> Vec<Durable<S::Store>> {
    let mut backends = Vec::new();
    for _ in 0..count {
        backends.push(Durable::with_config(
            storage.open().await,
            quick().lease(Duration::from_secs(30)),
        ));
    }
    backends
}

/// Waits until everything `emitter` emitted was handled, or panics after [`PATIENCE`].
pub async fn idle(emitter: &Emitter) {
    tokio::time::timeout(PATIENCE, emitter.wait_idle())
        .await
        .expect("everything emitted is handled");
}

/// Waits until the store holds nothing unfinished, or panics after [`PATIENCE`].
pub async fn settle<S: Store>(backend: &Durable<S>) {
    tokio::time::timeout(PATIENCE, backend.wait_settled())
        .await
        .expect("the store settles")
        .expect("the store answers");
}

/// The cases for the in-memory backend: those that need no store.
macro_rules! memory_cases {
    ($backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn emit_and_deliver() {
            conformance::emit_and_deliver($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn one_delivery_per_pair() {
            conformance::one_delivery_per_pair($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn retry_with_backoff() {
            conformance::retry_with_backoff($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn delayed_emit() {
            conformance::delayed_emit($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn idempotency_key() {
            conformance::idempotency_key($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn cron_once_per_tick() {
            conformance::cron_once_per_tick(vec![$backend]).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn wait_idle_means_handled() {
            conformance::wait_idle_means_handled($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn shutdown_deadline_names_what_runs() {
            conformance::shutdown_deadline_names_what_runs($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dropped_emitter_is_freed() {
            conformance::dropped_emitter_is_freed($backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrency_limit_holds() {
            conformance::concurrency_limit_holds_across_workers(vec![$backend]).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn one_at_a_time_in_emit_order_retries_included() {
            conformance::one_at_a_time_in_emit_order_retries_included(vec![$backend]).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn spans_follow_the_emit() {
            conformance::spans_follow_the_emit(vec![$backend], false).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn timeout_cancels_the_attempt() {
            conformance::timeout_cancels_the_attempt($backend).await;
        }
    };
}

/// Every case, for a durable backend made by the [`Kit`] `$kit`.
macro_rules! durable_cases {
    ($kit:expr) => {
        /// Fresh storage (kept alive by the caller while the case runs) and a backend on it.
        async fn fresh() -> (
            impl conformance::Storage,
            emitter::durable::Durable<impl emitter::durable::Store>,
        ) {
            use conformance::Storage as _;
            let storage = conformance::Kit::storage(&$kit).await;
            let backend =
                emitter::durable::Durable::with_config(storage.open().await, conformance::quick());
            (storage, backend)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn emit_and_deliver() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::emit_and_deliver(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn one_delivery_per_pair() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::one_delivery_per_pair(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn retry_with_backoff() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::retry_with_backoff(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn delayed_emit() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::delayed_emit(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn idempotency_key() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::idempotency_key(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn cron_once_per_tick_across_three_workers() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            use conformance::Storage as _;
            let storage = conformance::Kit::storage(&$kit).await;
            let mut backends = Vec::new();
            for _ in 0..3 {
                backends.push(emitter::durable::Durable::with_config(
                    storage.open().await,
                    conformance::quick(),
                ));
            }
            conformance::cron_once_per_tick(backends).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dead_letters() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            conformance::dead_letters(&$kit).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn undecodable_payload() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            conformance::undecodable_payload(&$kit).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn payload_limit() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            conformance::payload_limit(&$kit).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn at_least_once_across_crash() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            conformance::at_least_once_across_crash(&$kit).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn competing_workers() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            conformance::competing_workers(&$kit).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn wait_idle_means_handled() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::wait_idle_means_handled(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn shutdown_deadline_names_what_runs_and_gives_leases_back() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            conformance::shutdown_deadline_gives_leases_back(&$kit).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dropped_emitter_is_freed() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::dropped_emitter_is_freed(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrency_limit_holds_across_three_workers() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let storage = conformance::Kit::storage(&$kit).await;
            conformance::concurrency_limit_holds_across_workers(
                conformance::workers(&storage, 3).await,
            )
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn timeout_cancels_the_attempt() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let (_storage, backend) = fresh().await;
            conformance::timeout_cancels_the_attempt(backend).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn spans_follow_the_emit_through_the_store_to_another_worker() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let storage = conformance::Kit::storage(&$kit).await;
            let emitting = emitter::durable::Durable::with_config(
                conformance::Storage::open(&storage).await,
                conformance::quick().deliver(false),
            );
            let working = emitter::durable::Durable::with_config(
                conformance::Storage::open(&storage).await,
                conformance::quick(),
            );
            conformance::spans_follow_the_emit(vec![emitting, working], true).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn one_at_a_time_in_emit_order_retries_included_across_three_workers() {
            if !conformance::Kit::available(&$kit) {
                return;
            }
            let storage = conformance::Kit::storage(&$kit).await;
            conformance::one_at_a_time_in_emit_order_retries_included(
                conformance::workers(&storage, 3).await,
            )
            .await;
        }
    };
}
