//! Parity with Litestar's own test suite of `litestar.events`.
//!
//! Each of the first tests ports one case of `tests/unit/test_events.py` in
//! `litestar-org/litestar` and carries its name. Litestar emits from the route handlers of a test
//! client; these tests emit directly, because the HTTP layer is not what the cases check. Where
//! Litestar counts calls of a `MagicMock`, these tests record exactly who was called with what, so
//! that a missing, extra or wrong delivery fails them.
//!
//! The tests after the ported ones check promises Litestar does not make: a panicking listener is
//! isolated, emitting works from a thread without a runtime, an emit made during the drain is
//! delivered, and an emit after shutdown is refused.
//!
//! Ordering is made deterministic with tokio primitives, never with sleeps: every test runs on
//! tokio's current-thread runtime, where no other task runs between two `.await`s of the test, and
//! listeners that must still be pending when shutdown begins wait at a [`Gate`] that the test opens
//! only after the shutdown future has been polled once.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::{self, ThreadId};

use emitter::{
    emit, listener, listeners, BoxError, EmitError, EmitId, Emitter, Event, EventMeta, Failure,
    Listener, ListenerError, NoListenersPolicy, State,
};
use emitter_tests::Gate;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

// ---------------------------------------------------------------------------------------------
// Events

/// Litestar's `"test_event"`, emitted there as `emit("test_event", "positional", keyword="keyword-value")`.
#[derive(Event)]
pub struct TestEvent {
    pub positional: String,
    pub keyword: String,
}

/// Litestar's `"async_error_event"`.
#[derive(Event)]
pub struct AsyncErrorEvent {}

/// Litestar's `"sync_error_event"`.
#[derive(Event)]
pub struct SyncErrorEvent {}

/// Litestar's `"test_event_1"`.
#[derive(Event)]
#[event(id = "test_event_1")]
pub struct TestEvent1 {}

/// Litestar's `"test_event_2"`.
#[derive(Event)]
#[event(id = "test_event_2")]
pub struct TestEvent2 {}

/// Litestar's `"x"`: an event no listener listens to.
#[derive(Event)]
#[event(id = "x")]
pub struct X {}

/// An event told apart by its number, to check exactly which emits were delivered.
#[derive(Event)]
pub struct Numbered {
    pub n: u32,
}

/// An event whose listener emits the next one, up to [`LAST_HOP`].
#[derive(Event)]
pub struct Hop {
    pub n: u32,
}

const LAST_HOP: u32 = 5;

/// An event whose listeners panic, but one.
#[derive(Event)]
pub struct PanicEvent {
    pub n: u32,
}

// ---------------------------------------------------------------------------------------------
// Test doubles

/// Everything a listener was called with, in call order: the `MagicMock` of the upstream tests.
struct Recorder<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Recorder<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Recorder<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone> Recorder<T> {
    fn record(&self, call: T) {
        self.0.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    fn sorted_calls(&self) -> Vec<T>
    where
        T: Ord,
    {
        let mut calls = self.calls();
        calls.sort();
        calls
    }
}

/// One call of `sync_listener` or `async_listener`, and the thread it ran on.
#[derive(Debug, Clone)]
struct Call {
    listener: &'static str,
    positional: String,
    keyword: String,
    thread: ThreadId,
}

impl Call {
    fn new(listener: &'static str, positional: &str, keyword: &str) -> Self {
        Call {
            listener,
            positional: positional.to_owned(),
            keyword: keyword.to_owned(),
            thread: thread::current().id(),
        }
    }

    /// The call without its thread, to compare with what was emitted.
    fn args(&self) -> (&'static str, &str, &str) {
        (self.listener, &self.positional, &self.keyword)
    }
}

/// The calls without their threads, sorted by listener: listeners of one event run concurrently.
fn sorted_args(calls: &[Call]) -> Vec<(&'static str, &str, &str)> {
    let mut args: Vec<_> = calls.iter().map(Call::args).collect();
    args.sort_unstable();
    args
}

/// Tells the test which listener runs have started.
#[derive(Clone)]
struct Entered(mpsc::UnboundedSender<u32>);

impl Entered {
    fn signal(&self, n: u32) -> Result<(), mpsc::error::SendError<u32>> {
        self.0.send(n)
    }
}

/// Litestar's `ValueError("test")`.
#[derive(Debug)]
struct ValueError(&'static str);

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ValueError {}

/// What the error hook was given, in a form tests can compare.
#[derive(Debug, PartialEq, Eq)]
struct Reported {
    listener: &'static str,
    event_id: &'static str,
    attempt: u32,
    failure: Reason,
}

#[derive(Debug, PartialEq, Eq)]
enum Reason {
    Error(String),
    Panic(String),
    Other(String),
}

/// An error hook that forwards every failure to the returned receiver.
fn error_hook() -> (
    impl Fn(&ListenerError) + Send + Sync + 'static,
    mpsc::UnboundedReceiver<Reported>,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let hook = move |error: &ListenerError| {
        let failure = match &error.failure {
            Failure::Error(error) => Reason::Error(error.to_string()),
            Failure::Panic(message) => Reason::Panic(message.clone()),
            other => Reason::Other(other.to_string()),
        };
        let _ = sender.send(Reported {
            listener: error.listener,
            event_id: error.event_id,
            attempt: error.attempt,
            failure,
        });
    };
    (hook, receiver)
}

/// Receives `count` reports, sorted by listener name.
async fn reports(receiver: &mut mpsc::UnboundedReceiver<Reported>, count: usize) -> Vec<Reported> {
    let mut reports = Vec::with_capacity(count);
    for _ in 0..count {
        reports.push(receiver.recv().await.expect("the error hook was dropped"));
    }
    reports.sort_by_key(|report| report.listener);
    reports
}

/// The stable name of a listener, as the error hook reports it.
fn name<L: Listener>() -> &'static str {
    L::REGISTRATION.name()
}

/// Polls a future once without waiting for it.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

// ---------------------------------------------------------------------------------------------
// Listeners

/// Litestar's `sync_listener` fixture: a plain function, run on the blocking pool.
#[listener(events = [TestEvent])]
fn sync_listener(positional: &str, keyword: &str, mock: State<Recorder<Call>>) {
    mock.record(Call::new("sync_listener", positional, keyword));
}

/// Litestar's `async_listener` fixture.
#[listener(events = [TestEvent])]
async fn async_listener(positional: &str, keyword: &str, mock: State<Recorder<Call>>) {
    mock.record(Call::new("async_listener", positional, keyword));
}

/// Litestar's `event_handler` of `test_multiple_event_ids`, which also says which event fired.
#[listener(events = [TestEvent1, TestEvent2])]
fn event_handler(meta: EventMeta, mock: State<Recorder<&'static str>>) {
    mock.record(meta.event_id());
}

/// Litestar's `async_raising_listener`.
#[listener(events = [AsyncErrorEvent])]
async fn async_raising_listener(
    error_mock: State<Recorder<&'static str>>,
) -> Result<(), ValueError> {
    error_mock.record("async_raising_listener");
    Err(ValueError("test"))
}

/// Litestar's `sync_raising_listener`.
#[listener(events = [SyncErrorEvent])]
fn sync_raising_listener(error_mock: State<Recorder<&'static str>>) -> Result<(), ValueError> {
    error_mock.record("sync_raising_listener");
    Err(ValueError("test"))
}

/// Starts, then waits at the gate before it counts as done.
#[listener(events = [Numbered])]
async fn gated_listener(
    n: u32,
    gate: State<Gate>,
    entered: State<Entered>,
    done: State<Recorder<u32>>,
) -> Result<(), BoxError> {
    entered.signal(n)?;
    gate.pass().await?;
    done.record(n);
    Ok(())
}

#[listener(events = [Numbered])]
async fn record_number(n: u32, seen: State<Recorder<u32>>) {
    seen.record(n);
}

/// Waits at the gate, then emits the next hop through the emitter it is given.
#[listener(events = [Hop])]
async fn relay(
    n: u32,
    emitter: Emitter,
    gate: State<Gate>,
    seen: State<Recorder<u32>>,
) -> Result<(), BoxError> {
    gate.pass().await?;
    seen.record(n);
    if n < LAST_HOP {
        emit!(emitter, Hop, n = n + 1)?;
    }
    Ok(())
}

/// Panics with a `String` payload.
#[listener(events = [PanicEvent])]
async fn async_panicking_listener(n: u32) {
    panic!("async listener panicked on {n}");
}

/// Panics with a `&'static str` payload, on the blocking pool.
#[listener(events = [PanicEvent])]
fn sync_panicking_listener() {
    panic!("sync listener panicked");
}

#[listener(events = [PanicEvent])]
async fn panic_sibling(n: u32, seen: State<Recorder<u32>>) {
    seen.record(n);
}

// ---------------------------------------------------------------------------------------------
// Ported from litestar-org/litestar, tests/unit/test_events.py

/// Ports `test_event_listener[sync_listener]`: a sync listener receives the emitted arguments
/// (`mock.assert_called_with("positional", keyword="keyword-value")`), and runs on the blocking
/// pool rather than on the runtime's thread.
#[tokio::test]
async fn test_event_listener_sync_listener() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![sync_listener])
        .state(mock.clone())
        .start()
        .await
        .unwrap();

    emit!(
        emitter,
        TestEvent,
        positional = "positional",
        keyword = "keyword-value"
    )
    .unwrap();
    emitter.shutdown().await.unwrap();

    let calls = mock.calls();
    assert_eq!(
        sorted_args(&calls),
        [("sync_listener", "positional", "keyword-value")]
    );
    assert_ne!(
        calls[0].thread,
        thread::current().id(),
        "a sync listener must run on the blocking pool, not on the runtime's thread"
    );
}

/// Ports `test_event_listener[async_listener]`: an async listener receives the emitted arguments
/// (`mock.assert_called_with("positional", keyword="keyword-value")`), as a task of the runtime.
#[tokio::test]
async fn test_event_listener_async_listener() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![async_listener])
        .state(mock.clone())
        .start()
        .await
        .unwrap();

    emit!(
        emitter,
        TestEvent,
        positional = "positional",
        keyword = "keyword-value"
    )
    .unwrap();
    emitter.shutdown().await.unwrap();

    let calls = mock.calls();
    assert_eq!(
        sorted_args(&calls),
        [("async_listener", "positional", "keyword-value")]
    );
    // On a current-thread runtime every task runs on the test's thread.
    assert_eq!(calls[0].thread, thread::current().id());
}

/// Ports `test_shutdown_awaits_pending`: 100 emits, then shutdown; all 100 listener runs completed
/// when it returns (`mock.call_count == 100`).
///
/// Stricter than upstream: when shutdown begins, half of the runs are started and blocked at a
/// gate and the other half are still queued; the gate opens only after the shutdown future was
/// polled once and found pending.
#[tokio::test]
async fn test_shutdown_awaits_pending() {
    let (open, gate) = Gate::closed();
    let (entered_sender, mut entered) = mpsc::unbounded_channel();
    let done = Recorder::<u32>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![gated_listener])
        .state(gate)
        .state(Entered(entered_sender))
        .state(done.clone())
        .start()
        .await
        .unwrap();

    for n in 0..50u32 {
        emit!(emitter, Numbered, n = n).unwrap();
    }
    let mut running = Vec::new();
    for _ in 0..50 {
        running.push(entered.recv().await.unwrap());
    }
    running.sort_unstable();
    assert_eq!(running, (0..50).collect::<Vec<u32>>());
    // No `.await` from here to the shutdown's first poll: on this runtime, these stay queued.
    for n in 50..100u32 {
        emit!(emitter, Numbered, n = n).unwrap();
    }

    let shutdown = emitter.shutdown();
    tokio::pin!(shutdown);
    assert!(
        poll_once(&mut shutdown).await.is_pending(),
        "shutdown returned while 100 listener runs were pending"
    );
    assert_eq!(
        entered.try_recv(),
        Err(TryRecvError::Empty),
        "a run of the second half started before shutdown began"
    );
    assert_eq!(
        done.calls(),
        Vec::<u32>::new(),
        "a listener passed the closed gate"
    );

    open.send_replace(true);
    shutdown.await.unwrap();

    assert_eq!(done.sorted_calls(), (0..100).collect::<Vec<u32>>());
}

/// Ports `test_multiple_event_listeners`: a sync and an async listener of one event are both
/// called (`mock.call_count == 2`), each exactly once.
#[tokio::test]
async fn test_multiple_event_listeners() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![async_listener, sync_listener])
        .state(mock.clone())
        .start()
        .await
        .unwrap();

    emit!(emitter, TestEvent, positional = "p", keyword = "k").unwrap();
    emitter.shutdown().await.unwrap();

    let calls = mock.calls();
    assert_eq!(
        sorted_args(&calls),
        [("async_listener", "p", "k"), ("sync_listener", "p", "k")]
    );
}

/// Ports `test_multiple_event_ids`: one listener of two events is called once per event emitted
/// (`mock.call_count == 2`), and `EventMeta` tells which event fired.
#[tokio::test]
async fn test_multiple_event_ids() {
    let mock = Recorder::<&'static str>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![event_handler])
        .state(mock.clone())
        .start()
        .await
        .unwrap();

    emit!(emitter, TestEvent1).unwrap();
    emit!(emitter, TestEvent2).unwrap();
    emitter.shutdown().await.unwrap();

    assert_eq!(mock.sorted_calls(), ["test_event_1", "test_event_2"]);
}

/// Ports `test_raises_when_decorator_called_without_callable`: Litestar raises
/// `ImproperlyConfiguredException` for `listener("test_even")(True)`; here `#[listener]` on
/// something that is not a function fails to compile, with a message saying where it goes.
#[test]
fn test_raises_when_decorator_called_without_callable() {
    trybuild::TestCases::new().compile_fail("parity/listener_on_non_function.rs");
}

/// Ports `test_raises_when_not_initialized`: emitting on an app that was not started raises
/// `RuntimeError`; here an emitter built but not started refuses with `EmitError::NotStarted`, and
/// the refused event is not delivered once the emitter starts.
#[tokio::test]
async fn test_raises_when_not_initialized() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![async_listener])
        .state(mock.clone())
        .build()
        .unwrap();
    assert!(!emitter.is_running());

    let result = emit!(emitter, TestEvent, positional = "p", keyword = "k");
    assert!(matches!(result, Err(EmitError::NotStarted)), "{result:?}");

    emitter.start().await.unwrap();
    emitter.shutdown().await.unwrap();
    assert_eq!(mock.calls().len(), 0, "the refused event was delivered");
}

/// Ports `test_raises_when_not_listener_are_registered_for_an_event_id`: emitting an event nobody
/// listens to raises `ImproperlyConfiguredException`; here that is the `Error` policy, which
/// refuses with `EmitError::NoListeners` naming the event, and the emitter keeps working.
#[tokio::test]
async fn test_raises_when_not_listener_are_registered_for_an_event_id() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![async_listener])
        .state(mock.clone())
        .on_no_listeners(NoListenersPolicy::Error)
        .start()
        .await
        .unwrap();

    let result = emit!(emitter, X);
    assert!(
        matches!(result, Err(EmitError::NoListeners { event_id: "x" })),
        "{result:?}"
    );

    emit!(emitter, TestEvent, positional = "p", keyword = "k").unwrap();
    emitter.shutdown().await.unwrap();
    let calls = mock.calls();
    assert_eq!(sorted_args(&calls), [("async_listener", "p", "k")]);
}

/// Ports `test_event_listener_raises_exception` (litestar issues 2809 and 4044): a raising async
/// listener and a raising sync listener do not stop later deliveries. Both were called
/// (`error_mock.assert_called()`), both failures reach the error hook as errors, and the event
/// emitted after they failed reaches both of its listeners (`mock.assert_called()`).
#[tokio::test]
async fn test_event_listener_raises_exception() {
    let mock = Recorder::<Call>::default();
    let error_mock = Recorder::<&'static str>::default();
    let (hook, mut reported) = error_hook();
    let emitter = Emitter::builder()
        .listeners(listeners![
            async_listener,
            sync_listener,
            async_raising_listener,
            sync_raising_listener
        ])
        .state(mock.clone())
        .state(error_mock.clone())
        .on_error(hook)
        .start()
        .await
        .unwrap();

    emit!(emitter, AsyncErrorEvent).unwrap();
    emit!(emitter, SyncErrorEvent).unwrap();
    let failures = reports(&mut reported, 2).await;
    let mut expected = [
        Reported {
            listener: name::<async_raising_listener>(),
            event_id: "async_error_event",
            attempt: 1,
            failure: Reason::Error("test".to_owned()),
        },
        Reported {
            listener: name::<sync_raising_listener>(),
            event_id: "sync_error_event",
            attempt: 1,
            failure: Reason::Error("test".to_owned()),
        },
    ];
    expected.sort_by_key(|report| report.listener);
    assert_eq!(failures, expected);

    // Emitted only after both failures were reported.
    emit!(emitter, TestEvent, positional = "after", keyword = "errors").unwrap();
    emitter.shutdown().await.unwrap();

    assert_eq!(
        error_mock.sorted_calls(),
        ["async_raising_listener", "sync_raising_listener"]
    );
    let calls = mock.calls();
    assert_eq!(
        sorted_args(&calls),
        [
            ("async_listener", "after", "errors"),
            ("sync_listener", "after", "errors"),
        ]
    );
    assert_eq!(
        reported.try_recv(),
        Err(TryRecvError::Empty),
        "an unexpected failure was reported"
    );
}

// ---------------------------------------------------------------------------------------------
// Beyond Litestar

/// A panic in a listener, async or sync, is isolated like an error: its sibling still receives the
/// event, a later event is still delivered, and the error hook gets `Failure::Panic` with the
/// panic's message.
#[tokio::test]
async fn panicking_listener_is_isolated() {
    let seen = Recorder::<u32>::default();
    let (hook, mut reported) = error_hook();
    let emitter = Emitter::builder()
        .listeners(listeners![
            async_panicking_listener,
            sync_panicking_listener,
            panic_sibling
        ])
        .state(seen.clone())
        .on_error(hook)
        .start()
        .await
        .unwrap();
    let panics = |n: u32| {
        let mut expected = vec![
            Reported {
                listener: name::<async_panicking_listener>(),
                event_id: "panic_event",
                attempt: 1,
                failure: Reason::Panic(format!("async listener panicked on {n}")),
            },
            Reported {
                listener: name::<sync_panicking_listener>(),
                event_id: "panic_event",
                attempt: 1,
                failure: Reason::Panic("sync listener panicked".to_owned()),
            },
        ];
        expected.sort_by_key(|report| report.listener);
        expected
    };

    emit!(emitter, PanicEvent, n = 1).unwrap();
    assert_eq!(reports(&mut reported, 2).await, panics(1));
    assert!(emitter.is_running());

    emit!(emitter, PanicEvent, n = 2).unwrap();
    assert_eq!(reports(&mut reported, 2).await, panics(2));
    emitter.shutdown().await.unwrap();

    assert_eq!(seen.sorted_calls(), [1, 2]);
    assert_eq!(
        reported.try_recv(),
        Err(TryRecvError::Empty),
        "an unexpected failure was reported"
    );
}

/// Emitting works from a plain thread that has no tokio runtime, and what it emits is delivered.
#[tokio::test]
async fn emit_from_a_thread_without_a_runtime() {
    let seen = Recorder::<u32>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![record_number])
        .state(seen.clone())
        .start()
        .await
        .unwrap();

    let (sender, receiver) = oneshot::channel();
    let handle = emitter.clone();
    thread::spawn(move || {
        let has_runtime = tokio::runtime::Handle::try_current().is_ok();
        let ids: Result<Vec<EmitId>, EmitError> =
            (0..10u32).map(|n| emit!(handle, Numbered, n = n)).collect();
        let _ = sender.send((has_runtime, ids));
    });
    let (has_runtime, ids) = receiver.await.expect("the emitting thread panicked");
    assert!(!has_runtime, "the emitting thread was inside a runtime");
    let ids = ids.unwrap();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        10,
        "emit ids are not unique: {ids:?}"
    );

    emitter.shutdown().await.unwrap();
    assert_eq!(seen.sorted_calls(), (0..10).collect::<Vec<u32>>());
}

/// Events that listeners emit while the emitter drains are accepted and delivered before
/// shutdown returns: a chain of hops, each emitted by the previous hop's listener, all after
/// shutdown began.
#[tokio::test]
async fn emit_by_a_listener_during_the_drain_is_delivered() {
    let (open, gate) = Gate::closed();
    let seen = Recorder::<u32>::default();
    let (hook, mut reported) = error_hook();
    let emitter = Emitter::builder()
        .listeners(listeners![relay])
        .state(gate)
        .state(seen.clone())
        .on_error(hook)
        .start()
        .await
        .unwrap();

    emit!(emitter, Hop, n = 0).unwrap();
    let shutdown = emitter.shutdown();
    tokio::pin!(shutdown);
    assert!(poll_once(&mut shutdown).await.is_pending());
    assert_eq!(
        seen.calls(),
        Vec::<u32>::new(),
        "a hop passed the closed gate"
    );

    open.send_replace(true);
    shutdown.await.unwrap();

    assert_eq!(seen.calls(), (0..=LAST_HOP).collect::<Vec<u32>>());
    assert_eq!(
        reported.try_recv(),
        Err(TryRecvError::Empty),
        "a hop failed to emit the next one"
    );
}

/// Once shutdown returned, emitting is refused with `EmitError::ShutDown`, through every handle,
/// and nothing more is delivered; a second shutdown is a no-op.
#[tokio::test]
async fn emit_after_shutdown_is_refused() {
    let seen = Recorder::<u32>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![record_number])
        .state(seen.clone())
        .start()
        .await
        .unwrap();
    let clone = emitter.clone();

    emit!(emitter, Numbered, n = 1).unwrap();
    emitter.shutdown().await.unwrap();
    assert!(!emitter.is_running());

    let result = emit!(emitter, Numbered, n = 2);
    assert!(matches!(result, Err(EmitError::ShutDown)), "{result:?}");
    let result = emit!(clone, Numbered, n = 3);
    assert!(matches!(result, Err(EmitError::ShutDown)), "{result:?}");
    emitter.shutdown().await.unwrap();

    assert_eq!(seen.calls(), [1]);
}

/// The ignore policy (the default) accepts an event nobody listens to and drops it.
#[tokio::test]
async fn emit_without_listeners_is_ignored_by_default() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![async_listener])
        .state(mock.clone())
        .start()
        .await
        .unwrap();

    emit!(emitter, X).unwrap();
    emitter.shutdown().await.unwrap();
    assert_eq!(mock.calls().len(), 0);
}

/// The warn policy accepts an event nobody listens to, drops it and logs a warning.
#[tokio::test]
async fn emit_without_listeners_with_warn_policy_is_accepted() {
    let mock = Recorder::<Call>::default();
    let emitter = Emitter::builder()
        .listeners(listeners![async_listener])
        .state(mock.clone())
        .on_no_listeners(NoListenersPolicy::Warn)
        .start()
        .await
        .unwrap();

    emit!(emitter, X).unwrap();
    emitter.shutdown().await.unwrap();
    assert_eq!(mock.calls().len(), 0);
}
