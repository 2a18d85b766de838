//! Delivery policies of the in-memory emitter: retry with backoff, timeout, concurrency, the
//! bounded capacity and its overflow policy, shutdown with a deadline, and the counters.
//!
//! Tests that involve waiting run on tokio's paused clock (`start_paused`): timers fire as soon as
//! every task is idle, so the waits are exact and instant, whatever the machine's load.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emitter::testing::Capture;
use emitter::{
    emit, listener, listeners, Backoff, Capacity, DeliveryPolicy, EmitError, Emitter, Event,
    EventMeta, Failure, ListenerError, State,
};
use emitter_tests::Gate;
use tokio::sync::mpsc;

#[derive(Event, Debug, Clone, PartialEq)]
pub struct Job {
    pub n: u64,
}

/// Failures the error hook received, as `(listener, attempts, failure)`.
#[derive(Clone, Default)]
struct Hooked(Arc<Mutex<Vec<(String, u32, String)>>>);

impl Hooked {
    fn hook(&self) -> impl Fn(&ListenerError) + Send + Sync + 'static {
        let seen = Arc::clone(&self.0);
        move |error: &ListenerError| {
            let failure = match &error.failure {
                Failure::Panic(message) => format!("panic: {message}"),
                Failure::Timeout(limit) => format!("timeout: {limit:?}"),
                other => other.to_string(),
            };
            seen.lock()
                .unwrap()
                .push((error.listener.to_owned(), error.attempt, failure));
        }
    }

    fn take(&self) -> Vec<(String, u32, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// Retry

#[listener(events = [Job], attempts = 3, backoff = "10ms..10ms")]
async fn always_panics(n: u64) {
    panic!("job {n} cannot be done");
}

#[tokio::test(start_paused = true)]
async fn panicking_listener_is_retried_then_reported_once() {
    let hooked = Hooked::default();
    let capture = Capture::new();
    let emitter = Emitter::builder()
        .listeners(listeners![always_panics])
        .on_error(hooked.hook())
        .capture(&capture)
        .start()
        .await
        .unwrap();
    let emit_id = emit!(emitter, Job, n = 7).unwrap();
    emitter.shutdown().await.unwrap();

    let attempts = capture.attempts();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(attempts
        .iter()
        .all(|a| a.emit_id == emit_id
            && a.error.as_deref() == Some("panicked: job 7 cannot be done")));
    assert_eq!(
        hooked.take(),
        [(
            "delivery::always_panics".to_owned(),
            3,
            "panic: job 7 cannot be done".to_owned()
        )]
    );
    let metrics = emitter.metrics();
    assert_eq!(
        (metrics.retried, metrics.failed, metrics.delivered),
        (2, 1, 0)
    );
}

#[listener(events = [Job], attempts = 5, backoff = "1s..1s")]
async fn succeeds_on_third_attempt(meta: EventMeta, log: State<Log>) -> Result<(), String> {
    log.push(format!("attempt {} at {:?}", meta.attempt(), log.elapsed()));
    if meta.attempt() < 3 {
        return Err(format!("not yet ({})", meta.attempt()));
    }
    Ok(())
}

/// Lines listeners write, with the paused clock's time since the log was made.
#[derive(Clone)]
struct Log {
    lines: Arc<Mutex<Vec<String>>>,
    start: tokio::time::Instant,
}

impl Log {
    fn new() -> Self {
        Log {
            lines: Arc::default(),
            start: tokio::time::Instant::now(),
        }
    }

    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

#[tokio::test(start_paused = true)]
async fn listener_sees_its_attempt_number_and_waits_the_backoff_between_attempts() {
    let log = Log::new();
    let hooked = Hooked::default();
    let emitter = Emitter::builder()
        .listeners(listeners![succeeds_on_third_attempt])
        .state(log.clone())
        .on_error(hooked.hook())
        // The attribute's `backoff` sets the waits; jitter and factor come from the builder.
        .delivery_policy(DeliveryPolicy::default().backoff(Backoff::default().without_jitter()))
        .start()
        .await
        .unwrap();
    emit!(emitter, Job, n = 1).unwrap();
    emitter.shutdown().await.unwrap();
    // `backoff = "1s..1s"`: constant one second, so the paused clock reads exactly 0, 1, 2 s.
    assert_eq!(
        log.lines(),
        ["attempt 1 at 0ns", "attempt 2 at 1s", "attempt 3 at 2s"]
    );
    assert_eq!(
        hooked.take(),
        [],
        "a delivery that succeeds on retry is not reported"
    );
    let metrics = emitter.metrics();
    assert_eq!(
        (metrics.retried, metrics.failed, metrics.delivered),
        (2, 0, 1)
    );
}

#[listener(events = [Job])]
async fn fails_with_builder_policy(meta: EventMeta, log: State<Log>) -> Result<(), String> {
    log.push(format!("attempt {} at {:?}", meta.attempt(), log.elapsed()));
    Err("always".to_owned())
}

#[tokio::test(start_paused = true)]
async fn builder_policy_applies_to_listeners_without_their_own() {
    let log = Log::new();
    let hooked = Hooked::default();
    let emitter = Emitter::builder()
        .listeners(listeners![fails_with_builder_policy])
        .state(log.clone())
        .on_error(hooked.hook())
        .delivery_policy(DeliveryPolicy::default().attempts(4).backoff(
            Backoff::exponential(Duration::from_secs(1), Duration::from_secs(3)).without_jitter(),
        ))
        .start()
        .await
        .unwrap();
    emit!(emitter, Job, n = 1).unwrap();
    emitter.shutdown().await.unwrap();
    // Waits of 1 s, 2 s, then 3 s (capped): attempts at 0, 1, 3 and 6 s.
    assert_eq!(
        log.lines(),
        [
            "attempt 1 at 0ns",
            "attempt 2 at 1s",
            "attempt 3 at 3s",
            "attempt 4 at 6s"
        ]
    );
    assert_eq!(
        hooked.take(),
        [(
            "delivery::fails_with_builder_policy".to_owned(),
            4,
            "returned an error: always".to_owned()
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Timeout

/// Set when a listener's future is dropped before it finished: proof that it was cancelled.
#[derive(Clone, Default)]
struct Dropped(Arc<AtomicBool>);

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[listener(events = [Job], attempts = 2, timeout = "5s", backoff = "1ms..1ms")]
async fn hangs_on_first_attempt(meta: EventMeta, dropped: State<Dropped>, log: State<Log>) {
    log.push(format!("attempt {} at {:?}", meta.attempt(), log.elapsed()));
    if meta.attempt() == 1 {
        let _armed = SetOnDrop(Arc::clone(&dropped.0 .0));
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_attempt_and_retries() {
    let log = Log::new();
    let dropped = Dropped::default();
    let capture = Capture::new();
    let emitter = Emitter::builder()
        .listeners(listeners![hangs_on_first_attempt])
        .state(log.clone())
        .state(dropped.clone())
        .capture(&capture)
        .start()
        .await
        .unwrap();
    emit!(emitter, Job, n = 1).unwrap();
    emitter.shutdown().await.unwrap();
    assert!(
        dropped.0.load(Ordering::SeqCst),
        "the timed-out attempt was not cancelled"
    );
    // The paused clock fires timers on millisecond ticks: the retry comes at 5 s plus the
    // 1 ms backoff, give or take a tick.
    let lines = log.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "attempt 1 at 0ns");
    assert!(
        ["attempt 2 at 5.001s", "attempt 2 at 5.002s"].contains(&lines[1].as_str()),
        "{lines:?}"
    );
    let errors: Vec<Option<String>> = capture.attempts().into_iter().map(|a| a.error).collect();
    assert_eq!(errors, [Some("timed out after 5s".to_owned()), None]);
    assert_eq!(emitter.metrics().delivered, 1);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[listener(events = [Job], concurrency = 1)]
async fn records_in_order(n: u64, order: State<Order>) {
    // Yield so that, were deliveries run side by side, they would interleave.
    tokio::task::yield_now().await;
    order.push(n);
}

#[derive(Clone, Default)]
struct Order(Arc<Mutex<Vec<u64>>>);

impl Order {
    fn push(&self, n: u64) {
        self.0.lock().unwrap().push(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_one_delivers_10_000_events_in_emit_order() {
    let order = Order::default();
    let emitter = Emitter::builder()
        .listeners(listeners![records_in_order])
        .state(order.clone())
        .start()
        .await
        .unwrap();
    for n in 0..10_000u64 {
        emit!(emitter, Job, n).unwrap();
    }
    emitter.shutdown().await.unwrap();
    let order = order.0.lock().unwrap().clone();
    assert_eq!(order, (0..10_000).collect::<Vec<u64>>());
}

/// Tells the test which job entered a listener.
#[derive(Clone)]
struct Entered(mpsc::UnboundedSender<u64>);

#[listener(events = [Job], concurrency = 3)]
async fn three_at_a_time(n: u64, gate: State<Gate>, entered: State<Entered>) {
    entered.0 .0.send(n).unwrap();
    let _ = gate.pass().await;
}

#[tokio::test]
async fn concurrency_limit_holds_back_deliveries_beyond_it_in_emit_order() {
    let (open, gate) = Gate::closed();
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let emitter = Emitter::builder()
        .listeners(listeners![three_at_a_time])
        .state(gate)
        .state(Entered(entered_tx))
        .start()
        .await
        .unwrap();
    for n in 0..10u64 {
        emit!(emitter, Job, n).unwrap();
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(entered.recv().await.unwrap());
    }
    first.sort_unstable();
    assert_eq!(first, [0, 1, 2], "deliveries start in emit order");
    let metrics = emitter.metrics();
    assert_eq!((metrics.in_flight, metrics.queued), (3, 7));
    assert!(entered.try_recv().is_err(), "a fourth delivery started");
    open.send_replace(true);
    emitter.shutdown().await.unwrap();
    let mut rest: Vec<u64> = std::iter::from_fn(|| entered.try_recv().ok()).collect();
    rest.sort_unstable();
    assert_eq!(rest, (3..10).collect::<Vec<u64>>());
    assert_eq!(emitter.metrics().delivered, 10);
}

// ---------------------------------------------------------------------------------------------
// Capacity

#[listener(events = [Job])]
async fn waits_at_gate(n: u64, gate: State<Gate>, done: State<Order>) {
    let _ = gate.pass().await;
    done.push(n);
}

#[tokio::test]
async fn full_emitter_refuses_with_the_event_handed_back_and_loses_nothing_accepted() {
    let (open, gate) = Gate::closed();
    let done = Order::default();
    let emitter = Emitter::builder()
        .listeners(listeners![waits_at_gate])
        .state(gate)
        .state(done.clone())
        .capacity(Capacity::Bounded(2))
        .start()
        .await
        .unwrap();
    emit!(emitter, Job, n = 1).unwrap();
    emit!(emitter, Job, n = 2).unwrap();
    let error = emit!(emitter, Job, n = 3).unwrap_err();
    assert!(error.to_string().contains("full"), "{error}");
    let EmitError::Full(rejected) = error else {
        panic!("expected Full, got {error:?}");
    };
    assert_eq!(rejected.event_id(), "job");
    assert_eq!(rejected.into_event::<Job>(), Some(Job { n: 3 }));

    open.send_replace(true);
    emitter.wait_idle().await;
    emit!(emitter, Job, n = 4).unwrap();
    emitter.shutdown().await.unwrap();
    let mut done = done.0.lock().unwrap().clone();
    done.sort_unstable();
    assert_eq!(done, [1, 2, 4]);
    let metrics = emitter.metrics();
    assert_eq!(
        (metrics.emitted, metrics.rejected, metrics.delivered),
        (3, 1, 3)
    );
}

#[tokio::test]
async fn emit_async_waits_for_room() {
    let (open, gate) = Gate::closed();
    let done = Order::default();
    let emitter = Emitter::builder()
        .listeners(listeners![waits_at_gate])
        .state(gate)
        .state(done.clone())
        .capacity(Capacity::Bounded(1))
        .start()
        .await
        .unwrap();
    emitter.emit(Job { n: 1 }).unwrap();
    let waiting = emitter.emit_async(Job { n: 2 });
    tokio::pin!(waiting);
    assert!(
        futures_poll_once(waiting.as_mut()).await.is_none(),
        "emit_async returned while the emitter was full"
    );
    open.send_replace(true);
    waiting.await.unwrap();
    emitter.shutdown().await.unwrap();
    let mut done = done.0.lock().unwrap().clone();
    done.sort_unstable();
    assert_eq!(done, [1, 2]);
}

/// Polls a future once; `None` if it is pending.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[listener(events = [Job])]
async fn slow_counter(n: u64, sum: State<Arc<AtomicUsize>>) {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    sum.fetch_add(n as usize, Ordering::Relaxed);
}

/// A million emits from a thread outside the runtime at a slow listener, with room for 256
/// events: the emitter never holds more than 256, every accepted event is delivered, every
/// refused one is reported to its caller and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_emits_at_a_slow_listener_stay_within_capacity() {
    const EMITS: u64 = 1_000_000;
    const CAPACITY: u64 = 256;
    let sum = Arc::new(AtomicUsize::new(0));
    let emitter = Emitter::builder()
        .listeners(listeners![slow_counter])
        .state(Arc::clone(&sum))
        .capacity(Capacity::Bounded(CAPACITY as usize))
        .start()
        .await
        .unwrap();
    let producer = emitter.clone();
    let (accepted, accepted_sum, rejected, most_pending) = std::thread::spawn(move || {
        let (mut accepted, mut accepted_sum, mut rejected, mut most_pending) =
            (0u64, 0u64, 0u64, 0u64);
        for n in 0..EMITS {
            match producer.emit(Job { n }) {
                Ok(_) => {
                    accepted += 1;
                    accepted_sum += n;
                }
                Err(EmitError::Full(event)) => {
                    assert_eq!(event.into_event::<Job>(), Some(Job { n }));
                    rejected += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
            if n % 1024 == 0 {
                most_pending = most_pending.max(producer.metrics().pending_events);
            }
        }
        (accepted, accepted_sum, rejected, most_pending)
    })
    .join()
    .unwrap();
    emitter.shutdown().await.unwrap();

    assert_eq!(accepted + rejected, EMITS);
    assert!(accepted >= CAPACITY, "accepted only {accepted}");
    assert!(most_pending <= CAPACITY, "held {most_pending} events");
    assert_eq!(sum.load(Ordering::Relaxed) as u64, accepted_sum);
    let metrics = emitter.metrics();
    assert_eq!(metrics.emitted, accepted);
    assert_eq!(metrics.rejected, rejected);
    assert_eq!(metrics.delivered, accepted);
    println!("accepted {accepted}, rejected {rejected} of {EMITS}; at most {most_pending} held");
}

// ---------------------------------------------------------------------------------------------
// Shutdown with a deadline

#[listener(events = [Job], concurrency = 1)]
async fn stuck_on_two(n: u64, done: State<Order>) {
    if n == 2 {
        std::future::pending::<()>().await;
    }
    done.push(n);
}

#[tokio::test(start_paused = true)]
async fn shutdown_report_names_the_stuck_delivery_and_what_was_left_queued() {
    let done = Order::default();
    let emitter = Emitter::builder()
        .listeners(listeners![stuck_on_two])
        .state(done.clone())
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 1..=4u64 {
        ids.push(emit!(emitter, Job, n).unwrap());
    }
    let report = emitter
        .shutdown_timeout(Duration::from_secs(30))
        .await
        .unwrap();
    assert!(!report.is_complete());
    let row = report.delivery("job", "delivery::stuck_on_two").unwrap();
    assert_eq!(row.delivered, 1);
    assert_eq!(row.running.len(), 1);
    assert_eq!(row.running[0].emit_id, ids[1]);
    assert_eq!(row.running[0].attempt, 1);
    assert!(row.running[0].running_for >= Duration::from_secs(30));
    let mut queued = row.queued.clone();
    queued.sort_unstable();
    let mut expected = vec![ids[2], ids[3]];
    expected.sort_unstable();
    assert_eq!(
        queued, expected,
        "jobs 3 and 4 were queued behind the stuck one"
    );
    assert_eq!(report.pending_events, 3);
    let printed = report.to_string();
    assert!(
        printed.contains(&format!(
            "running: delivery::stuck_on_two for `job` (emit {}",
            ids[1]
        )),
        "{printed}"
    );
    assert!(printed.contains("2 deliveries dropped"), "{printed}");

    assert_eq!(done.0.lock().unwrap().clone(), [1]);
    assert!(matches!(
        emit!(emitter, Job, n = 5),
        Err(EmitError::ShutDown)
    ));
    let metrics = emitter.metrics();
    assert_eq!(
        (metrics.queued, metrics.in_flight, metrics.pending_events),
        (0, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_with_nothing_stuck_reports_complete() {
    let done = Order::default();
    let emitter = Emitter::builder()
        .listeners(listeners![stuck_on_two])
        .state(done.clone())
        .start()
        .await
        .unwrap();
    emit!(emitter, Job, n = 1).unwrap();
    emit!(emitter, Job, n = 3).unwrap();
    let report = emitter
        .shutdown_timeout(Duration::from_secs(1))
        .await
        .unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.delivered(), 2);
    assert_eq!(
        report.to_string(),
        "shutdown complete: 2 delivered, 0 failed"
    );
}
