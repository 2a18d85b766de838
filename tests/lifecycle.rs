//! The emitter's lifecycle under races: start against emits, a runtime that goes away, handles
//! dropped without a shutdown, metrics at the end of a shutdown, what a deadline reports, and
//! what a listener may not do to its own emitter. Races show themselves only sometimes, so the
//! racing tests run thousands of rounds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use emitter::{listener, listeners, Capacity, EmitError, Emitter, Event, ShutdownError, State};
use emitter_tests::{DropProbe, Gate};

/// How long a test waits for something that should happen well before: a liveness bound.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Event, Debug, Clone)]
pub struct Tick {
    pub n: u64,
}

#[derive(Event, Debug, Clone)]
pub struct Follow {
    pub n: u64,
}

#[listener(events = [Tick])]
async fn count(n: u64, delivered: State<Arc<AtomicU64>>) {
    let _ = n;
    delivered.fetch_add(1, Ordering::Relaxed);
}

/// Yields once, so that its deliveries go on as tasks rather than finishing at the first poll.
#[listener(events = [Tick])]
async fn count_later(n: u64, delivered: State<Arc<AtomicU64>>) {
    let _ = n;
    tokio::task::yield_now().await;
    delivered.fetch_add(1, Ordering::Relaxed);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn an_emit_racing_start_is_refused_or_delivered_never_lost() {
    let runtime = runtime();
    for round in 0..2_000 {
        let delivered = Arc::new(AtomicU64::new(0));
        let emitter = Emitter::builder()
            .listeners(listeners![count])
            .state(Arc::clone(&delivered))
            .capacity(Capacity::Unbounded)
            .build()
            .expect("builds");
        let started = Arc::new(AtomicBool::new(false));
        let producer = {
            let emitter = emitter.clone();
            let started = Arc::clone(&started);
            std::thread::spawn(move || {
                let (mut accepted, mut refused) = (0u64, 0u64);
                // Emit until a few emits after the start went through.
                for n in 0.. {
                    match emitter.emit(Tick { n }) {
                        Ok(_) => accepted += 1,
                        Err(EmitError::NotStarted) => refused += 1,
                        Err(other) => panic!("round {round}: an emit racing start got {other:?}"),
                    }
                    if started.load(Ordering::SeqCst) && accepted >= 3 {
                        break;
                    }
                }
                (accepted, refused)
            })
        };
        runtime.block_on(emitter.start()).expect("starts");
        started.store(true, Ordering::SeqCst);
        let (accepted, _refused) = producer.join().expect("the producer ran");
        let report = runtime.block_on(emitter.shutdown()).expect("shuts down");
        assert!(report.is_complete(), "round {round}: {report}");
        assert_eq!(
            delivered.load(Ordering::Relaxed),
            accepted,
            "round {round}: every accepted emit is delivered"
        );
    }
}

#[test]
fn an_emit_after_the_runtime_that_ran_start_is_gone_is_an_error() {
    for round in 0..500 {
        let runtime = runtime();
        let delivered = Arc::new(AtomicU64::new(0));
        let emitter = runtime
            .block_on(
                Emitter::builder()
                    .listeners(listeners![count])
                    .state(Arc::clone(&delivered))
                    .capacity(Capacity::Unbounded)
                    .start(),
            )
            .expect("starts");
        assert!(emitter.is_running());
        // A producer emits while the runtime goes away under it.
        let producer = {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                for n in 0..200 {
                    match emitter.emit(Tick { n }) {
                        Ok(_) => {}
                        Err(EmitError::Stopped) => return,
                        Err(other) => panic!("round {round}: unexpected {other:?}"),
                    }
                }
            })
        };
        drop(runtime);
        producer.join().expect("the producer ran");
        assert!(
            !emitter.is_running(),
            "round {round}: an emitter whose runtime is gone says it is not running"
        );
        for n in 0..3 {
            match emitter.emit(Tick { n }) {
                Err(EmitError::Stopped) => {}
                other => panic!("round {round}: an emit after the runtime went away got {other:?}"),
            }
        }
        let message = EmitError::Stopped.to_string();
        assert!(message.contains("runtime"), "{message}");
    }
}

#[listener(events = [Follow])]
async fn hang(n: u64, gate: State<Gate>, _signal: State<DropProbe>) {
    let _ = n;
    let _ = gate.pass().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_without_shutdown_frees_the_emitter() {
    let (signal, freed) = DropProbe::new();
    let (_open, gate) = Gate::closed();
    let emitter = Emitter::builder()
        .listeners(listeners![hang])
        .state(gate)
        .state(signal)
        .start()
        .await
        .expect("starts");
    // One delivery hangs forever, one waits for its time, one is queued behind nothing.
    emitter.emit(Follow { n: 1 }).expect("accepted");
    emitter
        .emit_after(Duration::from_secs(3600), Follow { n: 2 })
        .expect("accepted");
    drop(emitter);
    tokio::time::timeout(PATIENCE, freed)
        .await
        .expect("the state is freed once every handle is dropped")
        .expect("the state's last clone was dropped, not leaked");
}

#[test]
fn metrics_are_exact_after_a_complete_shutdown() {
    let runtime = runtime();
    for round in 0..1_000 {
        let delivered = Arc::new(AtomicU64::new(0));
        let emitter = runtime
            .block_on(
                Emitter::builder()
                    .listeners(listeners![count, count_later])
                    .state(Arc::clone(&delivered))
                    .start(),
            )
            .expect("starts");
        for n in 0..20 {
            emitter.emit(Tick { n }).expect("accepted");
        }
        let report = runtime.block_on(emitter.shutdown()).expect("shuts down");
        let metrics = emitter.metrics();
        assert_eq!(
            (
                metrics.delivered,
                metrics.in_flight,
                metrics.queued,
                metrics.pending_events
            ),
            (40, 0, 0, 0),
            "round {round}: {metrics:?}"
        );
        assert_eq!(report.delivered(), 40, "round {round}: {report}");
        assert_eq!(delivered.load(Ordering::Relaxed), 40);
    }
}

#[listener(events = [Follow])]
async fn idle(n: u64) {
    let _ = n;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_deadline_names_delayed_events_still_waiting() {
    let emitter = Emitter::builder()
        .listeners(listeners![idle])
        .start()
        .await
        .expect("starts");
    let delayed = emitter
        .emit_after(Duration::from_secs(3600), Follow { n: 1 })
        .expect("accepted");
    let report = emitter
        .shutdown_timeout(Duration::from_millis(100))
        .await
        .expect("shuts down");
    assert!(!report.is_complete());
    let row = report
        .delivery(Follow::ID, "lifecycle::idle")
        .expect("the listener's row");
    assert_eq!(row.queued, [delayed], "{report}");
    assert_eq!(report.pending_events, 1);
    assert!(report.to_string().contains("lifecycle::idle"), "{report}");
}

#[listener(events = [Tick])]
async fn emit_follow_up(n: u64, emitter: Emitter, seen: State<Arc<Mutex<Vec<String>>>>) {
    let outcome = match emitter.emit_async(Follow { n }).await {
        Ok(_) => "accepted".to_owned(),
        Err(error) => error.to_string(),
    };
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(outcome);
}

#[listener(events = [Follow])]
async fn follow(n: u64) {
    let _ = n;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listeners_emit_async_into_a_full_emitter_fails_instead_of_waiting_on_itself() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let emitter = Emitter::builder()
        .listeners(listeners![emit_follow_up, follow])
        .state(Arc::clone(&seen))
        .capacity(Capacity::Bounded(1))
        .start()
        .await
        .expect("starts");
    emitter.emit(Tick { n: 1 }).expect("accepted");
    // The listener's own event fills the emitter: waiting for room would wait on itself.
    tokio::time::timeout(PATIENCE, emitter.wait_idle())
        .await
        .expect("the listener does not wait on itself");
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].contains("the emitter is full"), "{seen:?}");
    emitter.shutdown().await.expect("shuts down");
}

#[listener(events = [Tick])]
async fn shut_down_own_emitter(emitter: Emitter, seen: State<Arc<Mutex<Vec<String>>>>) {
    let outcome = match emitter.shutdown().await {
        Ok(report) => format!("shut down: {report}"),
        Err(error) => {
            assert!(matches!(error, ShutdownError::FromListener));
            error.to_string()
        }
    };
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_cannot_shut_down_its_own_emitter() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let emitter = Emitter::builder()
        .listeners(listeners![shut_down_own_emitter])
        .state(Arc::clone(&seen))
        .start()
        .await
        .expect("starts");
    emitter.emit(Tick { n: 1 }).expect("accepted");
    tokio::time::timeout(PATIENCE, emitter.wait_idle())
        .await
        .expect("the listener does not wait on itself");
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].contains("would wait for that listener to finish"),
        "{seen:?}"
    );
    assert!(emitter.is_running(), "the emitter goes on");
    emitter.shutdown().await.expect("shuts down");
}
