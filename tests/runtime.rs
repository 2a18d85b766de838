//! The emitter's runtime: building and checking the event table, the builder's options,
//! concurrency of listeners, error isolation and the backend contract.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use emitter::{
    emit, listener, listeners, Dispatcher, EmitError, Emitter, Envelope, Event,
    EventEmitterBackend, EventMeta, Failure, ListenerError, StartError, State,
};
use tokio::sync::Barrier;

#[derive(Event, Debug, Clone, PartialEq)]
pub struct Signup {
    pub email: String,
    pub plan: String,
}

#[derive(Event, Debug, Clone)]
#[event(id = "account.closed")]
pub struct AccountClosed {
    pub email: String,
}

#[derive(Event)]
pub struct NobodyListens {
    pub n: u32,
}

/// Records what listeners saw, in the order they saw it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn sorted(&self) -> Vec<String> {
        let mut lines = self.0.lock().unwrap().clone();
        lines.sort();
        lines
    }
}

#[listener(events = [Signup])]
async fn zeta_on_signup(email: &str, seen: State<Seen>) {
    seen.push(format!("zeta:{email}"));
}

#[listener(events = [Signup])]
async fn alpha_on_signup(plan: String, seen: &State<Seen>) {
    seen.push(format!("alpha:{plan}"));
}

#[listener(events = [Signup, AccountClosed], name = "tests.any_account")]
async fn any_account(email: &str, meta: &EventMeta, seen: State<Seen>) {
    seen.push(format!(
        "{}:{email}:attempt{}",
        meta.event_id(),
        meta.attempt()
    ));
}

#[listener(events = [Signup])]
async fn needs_a_counter(email: &str, counter: State<Arc<AtomicUsize>>) {
    let _ = email;
    counter.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test]
async fn table_lists_listeners_in_name_order_with_locations() {
    let emitter = Emitter::builder()
        .listeners(listeners![zeta_on_signup, alpha_on_signup, any_account])
        .state(Seen::default())
        .build()
        .unwrap();
    let names: Vec<&str> = emitter.table().listeners_of::<Signup>().collect();
    assert_eq!(
        names,
        [
            "runtime::alpha_on_signup",
            "runtime::zeta_on_signup",
            "tests.any_account"
        ]
    );
    let printed = emitter.table().to_string();
    assert!(
        printed.contains("signup (runtime::Signup, tests/runtime.rs:"),
        "{printed}"
    );
    assert!(
        printed.contains("  -> tests.any_account (tests/runtime.rs:"),
        "{printed}"
    );
    assert!(
        printed.contains("account.closed (runtime::AccountClosed"),
        "{printed}"
    );
    assert!(
        printed.contains("nobody_listens (runtime::NobodyListens"),
        "{printed}"
    );
    let without: Vec<&str> = emitter.table().events_without_listeners().collect();
    // This emitter was given a subset: the other listeners of this binary are not in its table.
    assert_eq!(
        without,
        ["job", "needs_timer", "nobody_listens", "rendezvous"]
    );
    assert_eq!(emitter.table().len(), 4);
}

#[tokio::test]
async fn every_listener_of_an_event_receives_its_own_fields() {
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .listeners(listeners![zeta_on_signup, alpha_on_signup, any_account])
        .state(seen.clone())
        .start()
        .await
        .unwrap();
    emit!(emitter, Signup, email = "a@example.com", plan = "pro").unwrap();
    emit!(emitter, AccountClosed, email = "b@example.com").unwrap();
    emitter.shutdown().await.unwrap();
    assert_eq!(
        seen.sorted(),
        [
            "account.closed:b@example.com:attempt1",
            "alpha:pro",
            "signup:a@example.com:attempt1",
            "zeta:a@example.com",
        ]
    );
}

#[tokio::test]
async fn missing_state_is_a_start_error_naming_listener_and_type() {
    let error = Emitter::builder()
        .listeners(listeners![needs_a_counter])
        .start()
        .await
        .unwrap_err();
    match &error {
        StartError::MissingState {
            listener,
            type_name,
        } => {
            assert_eq!(*listener, "runtime::needs_a_counter");
            assert!(type_name.contains("AtomicUsize"), "{type_name}");
        }
        other => panic!("expected MissingState, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("`runtime::needs_a_counter`"), "{message}");
    assert!(message.contains(".state(value)"), "{message}");
}

#[tokio::test]
async fn provided_state_reaches_the_listener() {
    let counter = Arc::new(AtomicUsize::new(0));
    let emitter = Emitter::builder()
        .listeners(listeners![needs_a_counter])
        .state(Arc::clone(&counter))
        .start()
        .await
        .unwrap();
    for _ in 0..3 {
        emit!(emitter, Signup, email = "x", plan = "free").unwrap();
    }
    emitter.shutdown().await.unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn expected_listener_that_is_not_registered_is_a_start_error() {
    let error = Emitter::builder()
        .listeners(listeners![zeta_on_signup])
        .state(Seen::default())
        .expect_listener("runtime::zeta_on_signup")
        .expect_listener("billing::on_signup")
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, StartError::MissingListener { name } if name == "billing::on_signup"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("use that_crate as _;"),
        "{error}"
    );
}

#[tokio::test]
async fn starting_twice_is_an_error() {
    let emitter = Emitter::builder().listeners([]).start().await.unwrap();
    assert!(matches!(
        emitter.start().await,
        Err(StartError::AlreadyStarted)
    ));
    emitter.shutdown().await.unwrap();
    assert!(matches!(emitter.start().await, Err(StartError::ShutDown)));
    // Shutdown is idempotent.
    emitter.shutdown().await.unwrap();
}

#[derive(Event)]
pub struct Rendezvous {
    pub n: u32,
}

#[listener(events = [Rendezvous])]
async fn meets_first(barrier: State<Arc<Barrier>>) {
    barrier.wait().await;
}

#[listener(events = [Rendezvous])]
async fn meets_second(barrier: State<Arc<Barrier>>) {
    barrier.wait().await;
}

/// Both listeners wait on a two-party barrier: if they ran one after the other, the first
/// would wait forever and shutdown would never return.
#[tokio::test(flavor = "current_thread")]
async fn listeners_of_one_event_run_concurrently() {
    let emitter = Emitter::builder()
        .listeners(listeners![meets_first, meets_second])
        .state(Arc::new(Barrier::new(2)))
        .start()
        .await
        .unwrap();
    emit!(emitter, Rendezvous, n = 1).unwrap();
    emitter.shutdown().await.unwrap();
}

#[derive(Event)]
pub struct Job {
    pub n: u32,
}

#[listener(events = [Job])]
async fn fails_on_odd(n: u32) -> Result<(), String> {
    if n % 2 == 1 {
        return Err(format!("job {n} is odd"));
    }
    Ok(())
}

#[listener(events = [Job])]
fn panics_on_three(n: u32, done: State<Arc<AtomicUsize>>) {
    done.fetch_add(1, Ordering::SeqCst);
    assert_ne!(n, 3, "three is right out");
}

#[tokio::test]
async fn errors_and_panics_reach_the_hook_with_their_context() {
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let hook_failures = Arc::clone(&failures);
    let emitter = Emitter::builder()
        .listeners(listeners![fails_on_odd, panics_on_three])
        .state(Arc::clone(&done))
        .on_error(move |error: &ListenerError| {
            let kind = match &error.failure {
                Failure::Error(error) => format!("error {error}"),
                Failure::Panic(message) => format!("panic {message}"),
                other => format!("{other:?}"),
            };
            hook_failures.lock().unwrap().push(format!(
                "{} {} {}: {kind}",
                error.listener, error.event_id, error.attempt
            ));
        })
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..5u32 {
        ids.push(emit!(emitter, Job, n = n).unwrap());
    }
    emitter.shutdown().await.unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        5,
        "the blocking listener ran for every job"
    );
    let mut failures = failures.lock().unwrap().clone();
    failures.sort();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(
        failures[0],
        "runtime::fails_on_odd job 1: error job 1 is odd"
    );
    assert_eq!(
        failures[1],
        "runtime::fails_on_odd job 1: error job 3 is odd"
    );
    assert!(
        failures[2].starts_with("runtime::panics_on_three job 1: panic assertion `left != right` failed: three is right out"),
        "{failures:?}"
    );
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 5, "emit ids are unique");
}

/// A backend that refuses everything, to check that a backend error reaches the caller and that
/// the refused event does not keep shutdown waiting.
struct Refusing {
    refused: AtomicUsize,
}

impl EventEmitterBackend for Refusing {
    async fn start(&self, _dispatcher: Dispatcher) -> Result<(), emitter::BackendError> {
        Ok(())
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), emitter::BackendError> {
        self.refused.fetch_add(1, Ordering::SeqCst);
        Err(emitter::BackendError::new(format!(
            "refusing {}",
            envelope.event_id()
        )))
    }

    async fn shutdown(&self) -> Result<(), emitter::BackendError> {
        Ok(())
    }
}

#[tokio::test]
async fn backend_errors_reach_the_caller_and_do_not_block_shutdown() {
    let emitter = Emitter::builder()
        .listeners(listeners![zeta_on_signup])
        .state(Seen::default())
        .backend(Refusing {
            refused: AtomicUsize::new(0),
        })
        .start()
        .await
        .unwrap();
    let error = emit!(emitter, Signup, email = "a", plan = "b").unwrap_err();
    assert!(
        matches!(
            &error,
            EmitError::Backend {
                event_id: "signup",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("refusing signup"), "{error}");
    emitter.shutdown().await.unwrap();
}

#[listener(events = [Signup], name = "tests.same_name")]
async fn first_with_same_name(email: &str) {
    let _ = email;
}

#[listener(events = [AccountClosed], name = "tests.same_name")]
async fn second_with_same_name(email: &str) {
    let _ = email;
}

#[tokio::test]
async fn two_listeners_with_one_name_is_a_start_error_naming_both_places() {
    let error = Emitter::builder()
        .listeners(listeners![first_with_same_name, second_with_same_name])
        .build()
        .unwrap_err();
    let StartError::DuplicateListenerName {
        name,
        first,
        second,
    } = &error
    else {
        panic!("expected DuplicateListenerName, got {error:?}");
    };
    assert_eq!(*name, "tests.same_name");
    assert!(first.starts_with("tests/runtime.rs:"), "{first}");
    assert!(second.starts_with("tests/runtime.rs:"), "{second}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn naming_a_listener_twice_runs_it_once() {
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .listeners(listeners![zeta_on_signup, zeta_on_signup])
        .listeners(listeners![zeta_on_signup])
        .state(seen.clone())
        .start()
        .await
        .unwrap();
    emit!(emitter, Signup, email = "once", plan = "p").unwrap();
    emitter.shutdown().await.unwrap();
    assert_eq!(seen.sorted(), ["zeta:once"]);
}

#[derive(Event)]
pub struct NeedsTimer {
    pub n: u32,
}

#[listener(events = [NeedsTimer], attempts = 3)]
async fn retries_need_a_timer(n: u32) {
    let _ = n;
}

/// A runtime built without `enable_time` cannot wait between retries: start says so, instead of
/// a delivery panicking at its first retry.
#[test]
fn a_listener_that_retries_needs_a_runtime_with_a_timer() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = runtime
        .block_on(
            Emitter::builder()
                .listeners(listeners![retries_need_a_timer])
                .start(),
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            StartError::TimersDisabled {
                listener: "runtime::retries_need_a_timer"
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("enable_time()"), "{error}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emitter = Emitter::builder()
            .listeners(listeners![retries_need_a_timer])
            .start()
            .await
            .unwrap();
        emitter.shutdown().await.unwrap();
    });
}
