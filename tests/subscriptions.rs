//! Emitters and workers as separate binaries deployed at different times, on SQLite, PostgreSQL
//! and Redis:
//!
//! - a worker records its subscriptions in the store at start, and an emit-only process that
//!   links no listener (`subscriptions_emit_only`, a binary of its own) delivers to it; an event emitted before the listener's first worker started is not delivered to it;
//! - a renamed listener (`aliases = ["old name"]`) takes the deliveries stored under its old
//!   name, and emits are routed to its new name only;
//! - a worker checks at start what the store holds against what it registers: unknown listener
//!   names and event ids are logged with the fix, returned by `Durable::compatibility`, and with
//!   `strict_compatibility` refuse the start, naming them.
#![cfg(unix)]

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use emitter::durable::compatibility::Finding;
use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{
    Backlog, Durable, DurableConfig, NewEmit, Setup, Store, StoredEvent, Subscription,
};
use emitter::{listener, listeners, EmitId, Emitter, EmitterBuilder, Event, EventMeta, State};
use emitter_tests::children::{self, runtime, Kind};
use emitter_tests::servers::{Postgres, Redis};
use emitter_tests::LogCapture;
use tokio::sync::Notify;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

const EVENT: &str = "subs.signed_up";
const MAIL: &str = "subs.mail";
const OLD_MAIL: &str = "subs.old_mail";

/// How long to wait for what must come: a liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Event, Debug, Clone)]
#[event(id = "subs.signed_up")]
pub struct SignedUp {
    pub n: u64,
}

/// The listener as an older build named it.
#[listener(events = [SignedUp], name = "subs.old_mail")]
async fn old_mail(n: u64, meta: EventMeta, State(runs): State<Runs>) {
    runs.ran(meta.listener(), n);
}

/// The same listener, renamed: it takes the deliveries stored under its old name.
#[listener(events = [SignedUp], name = "subs.mail", aliases = ["subs.old_mail"])]
async fn mail(n: u64, meta: EventMeta, State(runs): State<Runs>) {
    runs.ran(meta.listener(), n);
}

/// What the listeners ran, as (listener, n), and a wake-up for each run.
#[derive(Clone, Default)]
struct Runs(Arc<Ran>);

#[derive(Default)]
struct Ran {
    runs: Mutex<Vec<(String, u64)>>,
    woken: Notify,
}

impl Runs {
    fn ran(&self, listener: &str, n: u64) {
        self.0
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((listener.to_owned(), n));
        self.0.woken.notify_waiters();
    }

    fn all(&self) -> Vec<(String, u64)> {
        let mut runs = self
            .0
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        runs.sort();
        runs
    }

    /// Waits until `count` runs happened; returns them, sorted.
    async fn wait_for(&self, count: usize) -> Vec<(String, u64)> {
        loop {
            let ran = self.0.woken.notified();
            tokio::pin!(ran);
            ran.as_mut().enable();
            let runs = self.all();
            if runs.len() >= count {
                return runs;
            }
            if tokio::time::timeout(PATIENCE, ran).await.is_err() {
                panic!("{count} runs did not happen within {PATIENCE:?}: {runs:?}");
            }
        }
    }
}

const MAIL_ONLY: fn(EmitterBuilder) -> EmitterBuilder =
    |builder| builder.listeners(listeners![mail]);
const OLD_MAIL_ONLY: fn(EmitterBuilder) -> EmitterBuilder =
    |builder| builder.listeners(listeners![old_mail]);

fn ran(listener: &str, ns: &[u64]) -> Vec<(String, u64)> {
    ns.iter().map(|n| (listener.to_owned(), *n)).collect()
}

// ---------------------------------------------------------------------------------------------
// The emit-only binary.

/// Emits `SignedUp` for each of `ns` from an emitter that runs no listener and delivers
/// nothing, and stops once they are stored.
async fn emit<S: Store>(store: S, ns: &[u64]) {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let emitter = Emitter::builder()
        .listeners(listeners![])
        .backend(backend)
        .start()
        .await
        .expect("the emit-only emitter starts");
    assert_eq!(
        emitter.table().listeners_of::<SignedUp>().count(),
        0,
        "it runs no listener"
    );
    for &n in ns {
        emitter
            .emit_async(SignedUp { n })
            .await
            .expect("the emit is stored");
    }
    emitter.shutdown().await.expect("the emitter stops");
}

/// Runs the emit-only binary (`subscriptions/emit_only.rs`, a binary of its own that defines
/// `SignedUp` and links no listener) on the store of `kind` at `location`, under `namespace`,
/// emitting `n`; waits for it to exit well.
async fn emit_from_another_binary(kind: Kind, location: &str, namespace: &str, n: u64) {
    let (location, namespace) = (location.to_owned(), namespace.to_owned());
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = dir.path().join("emit.out");
        let file = std::fs::File::create(&output).expect("the output file");
        let errors = file.try_clone().expect("the output file");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_subscriptions_emit_only"))
            .args([kind.name(), location.as_str(), namespace.as_str()])
            .arg(n.to_string())
            .stdout(file)
            .stderr(errors)
            .spawn()
            .expect("the emit-only binary starts");
        let status = children::wait(&mut child, PATIENCE, "emit", &output);
        assert!(
            status.success(),
            "the emit-only binary failed ({status}):\n{}",
            children::read_output(&output)
        );
    })
    .await
    .expect("the child is awaited");
}

// ---------------------------------------------------------------------------------------------
// The scenarios, on any store; `open` opens another handle on the same storage.

/// A worker running the listeners `select` gives the builder.
async fn start_worker<S: Store>(
    store: S,
    select: fn(EmitterBuilder) -> EmitterBuilder,
    runs: &Runs,
    config: DurableConfig,
) -> Result<(Emitter, Durable<S>), emitter::StartError> {
    let backend = Durable::with_config(store, config);
    let emitter = select(Emitter::builder())
        .state(runs.clone())
        .backend(backend.clone())
        .start()
        .await?;
    Ok((emitter, backend))
}

/// An emit-only binary delivers to a worker's listener that it does not link; what it emitted
/// before the listener's first worker started is not delivered to it.
async fn emit_only_delivers_to_a_separate_worker<S, F, Fut>(
    open: F,
    kind: Kind,
    location: &str,
    namespace: &str,
) where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    emit_from_another_binary(kind, location, namespace, 1).await;
    let runs = Runs::default();
    let (worker, backend) = start_worker(open().await, MAIL_ONLY, &runs, Default::default())
        .await
        .expect("the worker starts");
    assert_eq!(
        backend.counts().await.expect("counts").unfinished(),
        0,
        "an event emitted before any worker subscribed is delivered to no listener"
    );
    let subscribed: Vec<(String, String)> = backend
        .subscriptions()
        .await
        .expect("subscriptions")
        .into_iter()
        .map(|s| (s.event_id, s.listener))
        .collect();
    assert_eq!(subscribed, [(EVENT.to_owned(), MAIL.to_owned())]);

    emit_from_another_binary(kind, location, namespace, 2).await;
    assert_eq!(runs.wait_for(1).await, ran(MAIL, &[2]));
    backend.wait_settled().await.expect("the store settles");
    assert_eq!(runs.all(), ran(MAIL, &[2]), "event 1 never came");
    worker.shutdown().await.expect("the worker stops");
}

/// An emitter that is already running when a worker subscribes routes to it once its copy of
/// the subscriptions is stale (here at once: a refresh interval of zero).
async fn a_running_emitter_reads_new_subscriptions<S, F, Fut>(open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let config = DurableConfig::default()
        .deliver(false)
        .subscription_refresh(Duration::ZERO);
    let emitter = Emitter::builder()
        .listeners(listeners![])
        .backend(Durable::with_config(open().await, config))
        .start()
        .await
        .expect("the emit-only emitter starts");
    emitter.emit_async(SignedUp { n: 1 }).await.expect("stored");
    let runs = Runs::default();
    let (worker, backend) = start_worker(open().await, MAIL_ONLY, &runs, Default::default())
        .await
        .expect("the worker starts");
    emitter.emit_async(SignedUp { n: 2 }).await.expect("stored");
    assert_eq!(runs.wait_for(1).await, ran(MAIL, &[2]));
    backend.wait_settled().await.expect("the store settles");
    assert_eq!(runs.all(), ran(MAIL, &[2]), "event 1 had no listener yet");
    emitter.shutdown().await.expect("the emitter stops");
    worker.shutdown().await.expect("the worker stops");
}

/// A renamed listener with its old name in `aliases` runs the deliveries stored under the old
/// name, replaces the old name's subscription, and new emits reach it once.
async fn a_renamed_listener_takes_its_old_deliveries<S, F, Fut>(open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let runs = Runs::default();
    // The old build's worker subscribes, and is gone by the time events come.
    let (old, _) = start_worker(open().await, OLD_MAIL_ONLY, &runs, Default::default())
        .await
        .expect("the old worker starts");
    old.shutdown().await.expect("the old worker stops");
    emit(open().await, &[1, 2]).await;
    let store = open().await;
    assert_eq!(
        store.backlog().await.expect("backlog"),
        [Backlog::new(OLD_MAIL, EVENT, 2)],
        "stored under the old name"
    );

    let (new, backend) = start_worker(store, MAIL_ONLY, &runs, Default::default())
        .await
        .expect("the renamed worker starts");
    assert!(
        backend
            .compatibility()
            .await
            .expect("the check runs")
            .is_compatible(),
        "the alias makes the old deliveries known"
    );
    assert_eq!(
        runs.wait_for(2).await,
        ran(MAIL, &[1, 2]),
        "the renamed listener ran them"
    );
    let subscribed: Vec<String> = backend
        .subscriptions()
        .await
        .expect("subscriptions")
        .into_iter()
        .map(|s| s.listener)
        .collect();
    assert_eq!(
        subscribed,
        [MAIL],
        "the old name's subscription is replaced"
    );

    emit(open().await, &[3]).await;
    assert_eq!(runs.wait_for(3).await, ran(MAIL, &[1, 2, 3]));
    backend.wait_settled().await.expect("the store settles");
    assert_eq!(runs.all(), ran(MAIL, &[1, 2, 3]), "each ran once");
    new.shutdown().await.expect("the renamed worker stops");
}

/// Deliveries for a listener name and of an event id this binary does not know, and a
/// subscription of that listener: reported at start with the fix, by `compatibility`, and with
/// `strict_compatibility` a start error naming them. Nothing is lost either way.
async fn the_check_reports_unknown_listeners_and_events<S, F, Fut>(open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = open().await;
    store
        .open(&Setup::new(Vec::new(), Duration::from_secs(3600)))
        .await
        .expect("the store opens");
    let now = SystemTime::now();
    let stored = |event_id: &str, n: u128| {
        StoredEvent::new(event_id, EmitId::from_u128(n), now, br#"{"n":1}"#.to_vec())
    };
    // Due later: the lenient worker below would otherwise claim the delivery of the unknown
    // event (and dead-letter it, saying why) before the test asks about it.
    let later = now + Duration::from_secs(3600);
    store
        .insert(&[
            NewEmit::new(stored(EVENT, 1), vec!["subs.gone"], later, None),
            NewEmit::new(stored("subs.signed_up_v0", 2), vec![MAIL], later, None),
        ])
        .await
        .expect("stored");
    store
        .subscribe(
            &["subs.gone"],
            &[Subscription::new(EVENT, "subs.gone", now)],
        )
        .await
        .expect("subscribed");

    let runs = Runs::default();
    let strict = DurableConfig::default().strict_compatibility(true);
    let refused = start_worker(open().await, MAIL_ONLY, &runs, strict).await;
    let Err(error) = refused else {
        panic!("a strict worker started with unknown deliveries in the store");
    };
    let message = error.to_string();
    for expected in [
        "strict_compatibility",
        "listener `subs.gone` is not registered by this binary",
        "add `aliases = [\"subs.gone\"]`",
        "event `subs.signed_up_v0` for listener `subs.mail`",
        "`#[event(id = \"subs.signed_up_v0\")]`",
    ] {
        assert!(message.contains(expected), "{expected:?} not in: {message}");
    }
    let mut held = open().await.backlog().await.expect("backlog");
    held.sort_by(|a, b| a.listener.cmp(&b.listener));
    assert_eq!(
        held.iter().map(|b| b.unfinished).sum::<u64>(),
        2,
        "a refused start changes nothing: {held:?}"
    );

    let logs = LogCapture::default();
    let subscriber = tracing_subscriber::registry().with(logs.clone());
    let dispatch = tracing::Dispatch::new(subscriber);
    let started = {
        let _default = tracing::dispatcher::set_default(&dispatch);
        start_worker(open().await, MAIL_ONLY, &runs, Default::default()).await
    };
    let (worker, backend) = started.expect("a lenient worker starts");
    let warnings: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.level == Level::WARN && line.text.contains("disagree"))
        .map(|line| line.text)
        .collect();
    assert_eq!(warnings.len(), 2, "one warning per finding: {warnings:?}");
    assert!(warnings[0].contains("subs.gone"), "{warnings:?}");
    assert!(warnings[1].contains("subs.signed_up_v0"), "{warnings:?}");
    let found = backend.compatibility().await.expect("the check runs");
    assert!(
        matches!(
            &found.findings[..],
            [
                Finding::UnknownListener { listener, unfinished: 1, subscribed: Some(_), .. },
                Finding::UnknownEvent { event_id, unfinished: 1, .. },
            ] if listener == "subs.gone" && event_id == "subs.signed_up_v0"
        ),
        "{found:?}"
    );

    // The operator's fix for the listener that is gone: stop routing to it.
    assert_eq!(backend.unsubscribe("subs.gone").await.ok(), Some(1));
    let found = backend.compatibility().await.expect("the check runs");
    assert!(
        matches!(
            &found.findings[0],
            Finding::UnknownListener {
                subscribed: None,
                ..
            }
        ),
        "its deliveries remain, its subscription is gone: {found:?}"
    );

    // A due delivery of the unknown event is claimed and dead-lettered, saying why.
    backend
        .store()
        .insert(&[NewEmit::new(
            stored("subs.signed_up_v0", 3),
            vec![MAIL],
            SystemTime::now(),
            None,
        )])
        .await
        .expect("stored");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let letter = loop {
        let letters = backend.dead_letters(10).await.expect("dead letters");
        if let Some(letter) = letters.into_iter().next() {
            break letter;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not dead-lettered within {PATIENCE:?}"
        );
        // No notification tells of a dead letter: look again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(letter.event.event_id, "subs.signed_up_v0");
    assert!(
        letter
            .reason
            .contains("does not listen to event `subs.signed_up_v0`")
            || letter
                .reason
                .contains("unknown event id `subs.signed_up_v0`"),
        "{}",
        letter.reason
    );
    worker.shutdown().await.expect("the worker stops");
    assert!(
        runs.all().is_empty(),
        "nothing unknown ran: {:?}",
        runs.all()
    );
}

// ---------------------------------------------------------------------------------------------
// Each store.

/// Runs every scenario on stores that `open(name)` opens (another handle on the same storage
/// each time it is called), the emit-only binary on the store of `kind` at `location` under
/// `namespace`, which is what `open("two_binaries")` opens.
fn every_scenario<S, O, Fut>(
    open: impl Fn(&'static str) -> O,
    kind: Kind,
    location: &str,
    namespace: &str,
) where
    S: Store,
    O: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let rt = runtime();
    rt.block_on(emit_only_delivers_to_a_separate_worker(
        open("two_binaries"),
        kind,
        location,
        namespace,
    ));
    rt.block_on(a_running_emitter_reads_new_subscriptions(open("running")));
    rt.block_on(a_renamed_listener_takes_its_old_deliveries(open("renamed")));
    rt.block_on(the_check_reports_unknown_listeners_and_events(open(
        "check",
    )));
}

#[test]
fn subscriptions_aliases_and_the_check_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = |name: &str| dir.path().join(format!("{name}.db"));
    let open = |name: &'static str| {
        let path = path(name);
        move || {
            let path = path.clone();
            async move { SqliteStore::open(&path).expect("the database opens") }
        }
    };
    let two = path("two_binaries");
    let two = two.to_str().expect("a UTF-8 temporary path");
    every_scenario(open, Kind::Sqlite, two, "");
}

#[test]
fn subscriptions_aliases_and_the_check_on_postgres() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url();
    let open = |namespace: &'static str| {
        let url = url.clone();
        move || {
            let url = url.clone();
            async move { children::postgres_store(&url, namespace).await }
        }
    };
    every_scenario(open, Kind::Postgres, &url, "two_binaries");
}

#[test]
fn subscriptions_aliases_and_the_check_on_redis() {
    let Some(server) = Redis::start() else { return };
    let url = server.url();
    let open = |namespace: &'static str| {
        let url = url.clone();
        move || {
            let url = url.clone();
            async move { children::redis_store(&url, namespace).await }
        }
    };
    every_scenario(open, Kind::Redis, &url, "two_binaries");
}
