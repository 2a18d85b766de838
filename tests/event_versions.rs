//! Events stored by one build and read by another, on SQLite, PostgreSQL and Redis: what changing
//! an event does to the deliveries already stored.
//!
//! The older builds' events are written through the store as their engine wrote them (their
//! payload bytes, with their version), then this build's worker reads them: a field added with
//! `#[serde(default)]` (no version), a required field added by an upcaster, a field renamed and a
//! field split by upcasters (chained 1 -> 2 -> 3), an upcaster that fails, and payloads that are
//! corrupt or of an unknown event. A newer build (`event_versions/newer_build.rs`, a binary of
//! its own, with `versions.profile` at version 4) emits a profile this build's worker must leave
//! in the store, attempts untouched, with a note saying why; then it runs as the newer worker
//! that delivers it.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::admin::{Admin, DeliveryState, Query};
use emitter::durable::compatibility::Finding;
use emitter::durable::{Counts, Durable, DurableConfig, NewEmit, StoredEvent};
use emitter::{listener, listeners, EmitId, EmitOptions, Emitter, Event, State};
use emitter_tests::children::{runtime, Kind};
use emitter_tests::servers::{Postgres, Redis};
use emitter_tests::with_store;
use serde_json::Value;
use tokio::sync::mpsc;

#[path = "event_versions/shapes.rs"]
mod shapes;
use shapes::{profile_v1_to_v2, profile_v2_to_v3};

/// How long a step may take: a liveness bound, not a speed check.
const PATIENCE: Duration = Duration::from_secs(60);

/// The key prefix (Redis) or schema (PostgreSQL).
const NAMESPACE: &str = "event_versions";

/// Version 1 of `versions.signup` had no `plan`: added with a default, without a new version.
#[derive(Event, Debug)]
#[event(id = "versions.signup")]
pub struct Signup {
    pub email: String,
    #[serde(default)]
    pub plan: String,
}

/// Version 1 of `versions.order` had no `currency`; version 2 requires it, and its upcaster
/// gives the orders stored before the currency they were all in.
fn order_v1_to_v2(mut value: Value) -> Result<Value, String> {
    value
        .as_object_mut()
        .ok_or("an order of version 1 is a JSON object")?
        .insert("currency".to_owned(), "EUR".into());
    Ok(value)
}

#[derive(Event, Debug)]
#[event(id = "versions.order", version = 2, upcast(from = 1, with = order_v1_to_v2))]
pub struct Order {
    pub id: u64,
    pub currency: String,
}

/// Version 1 had `user` and `name`; version 2 renamed `user` to `login`; version 3 split `name`
/// into `first` and `last`.
#[derive(Event, Debug)]
#[event(
    id = "versions.profile",
    version = 3,
    upcast(from = 1, with = profile_v1_to_v2),
    upcast(from = 2, with = profile_v2_to_v3)
)]
pub struct Profile {
    pub login: String,
    pub first: String,
    pub last: String,
}

/// Where the listeners say what they received.
#[derive(Clone)]
struct Seen(mpsc::UnboundedSender<String>);

#[listener(events = [Signup], name = "versions.signup_seen")]
async fn signup_seen(email: &str, plan: &str, State(seen): State<Seen>) {
    let _ = seen.0.send(format!("signup {email} plan={plan:?}"));
}

#[listener(events = [Order], name = "versions.order_seen")]
async fn order_seen(id: u64, currency: &str, State(seen): State<Seen>) {
    let _ = seen.0.send(format!("order {id} {currency}"));
}

#[listener(events = [Profile], name = "versions.profile_seen")]
async fn profile_seen(login: &str, first: &str, last: &str, State(seen): State<Seen>) {
    let _ = seen.0.send(format!("profile {login} {first} {last}"));
}

/// What the older builds stored: (event id, version, payload, listener).
const OLDER_BUILDS: &[(&str, u32, &str, &str)] = &[
    // A field added with a default: no new version.
    (
        "versions.signup",
        1,
        r#"{"email":"old@example.com"}"#,
        "versions.signup_seen",
    ),
    // A required field added by an upcaster.
    ("versions.order", 1, r#"{"id":7}"#, "versions.order_seen"),
    // Renamed (1 -> 2) and split (2 -> 3), chained.
    (
        "versions.profile",
        1,
        r#"{"user":"jdoe","name":"Jane Doe"}"#,
        "versions.profile_seen",
    ),
    // Split only.
    (
        "versions.profile",
        2,
        r#"{"login":"asmith","name":"Ann Smith"}"#,
        "versions.profile_seen",
    ),
    // This build's own version, read as it is.
    (
        "versions.profile",
        3,
        r#"{"login":"bkim","first":"Bo","last":"Kim"}"#,
        "versions.profile_seen",
    ),
    // The upcaster from version 2 fails: dead-lettered with the versions and its error.
    (
        "versions.profile",
        2,
        r#"{"login":"cher","name":"Cher"}"#,
        "versions.profile_seen",
    ),
    // Corrupt: not JSON, so not upcast.
    ("versions.order", 1, "{\"id\":", "versions.order_seen"),
    // Corrupt at the current version.
    (
        "versions.order",
        2,
        r#"{"id":"seven"}"#,
        "versions.order_seen",
    ),
    // An event no build of this binary has.
    (
        "versions.gone",
        1,
        r#"{"what":"ever"}"#,
        "versions.order_seen",
    ),
];

/// What this build's listeners receive of the older builds' events.
const DELIVERED: &[&str] = &[
    "order 7 EUR",
    "profile asmith Ann Smith",
    "profile bkim Bo Kim",
    "profile jdoe Jane Doe",
    "signup old@example.com plan=\"\"",
];

/// The dead letters' reasons, in part, by event id and payload.
const DEAD: &[(&str, &str)] = &[
    (
        r#"{"login":"cher","name":"Cher"}"#,
        "the upcaster of `event_versions::Profile` from version 2 to 3 failed on a payload \
         stored at version 2: `name` \"Cher\" has no space to split it at",
    ),
    (
        "{\"id\":",
        "the payload of version 1 is not JSON, so it cannot be upcast to \
         `event_versions::Order` version 2",
    ),
    (
        r#"{"id":"seven"}"#,
        "the payload cannot be decoded as `event_versions::Order`: invalid type: string \"seven\"",
    ),
    (
        r#"{"what":"ever"}"#,
        "unknown event id `versions.gone`: no event type of this binary has it",
    ),
];

/// The note this build's worker leaves on the newer build's profile.
const LEFT: &str =
    "version 4 of event `versions.profile` is newer than this worker's 3; left for a newer worker";

/// How long this build's worker leaves the newer build's profile before it looks again.
const NEWER_VERSION_DELAY: Duration = Duration::from_secs(1);

/// The tests take turns: each starts a server and two builds' workers.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn older_and_newer_event_versions_on_sqlite() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("events.db");
    older_and_newer_builds(Kind::Sqlite, &file.to_string_lossy());
}

#[test]
fn older_and_newer_event_versions_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Postgres::start() else {
        return;
    };
    older_and_newer_builds(Kind::Postgres, &server.url());
}

#[test]
fn older_and_newer_event_versions_on_redis() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(server) = Redis::start() else { return };
    older_and_newer_builds(Kind::Redis, &server.url());
}

fn older_and_newer_builds(kind: Kind, location: &str) {
    // The newer build emits a profile of version 4, through its own engine.
    let emitted = newer_build("emit", kind, location);
    assert_eq!(emitted, "", "the newer build emits quietly");

    runtime().block_on(async {
        with_store!(kind, location, NAMESPACE, |store| {
            // The older builds' events, as their engines stored them.
            let now = SystemTime::now();
            let emits: Vec<NewEmit> = (1..)
                .zip(OLDER_BUILDS)
                .map(|(n, (event_id, version, payload, listener))| {
                    let event = StoredEvent::new(
                        *event_id,
                        EmitId::from_u128(n),
                        now,
                        payload.as_bytes().to_vec(),
                    )
                    .with_version(*version);
                    NewEmit::new(event, vec![*listener], now, None)
                })
                .collect();
            emitter::durable::Store::insert(&store, &emits)
                .await
                .expect("the older builds' events are stored");
            this_build(store).await;
        })
    });

    // The newer build's worker delivers what this one left, upcasting nothing.
    let delivered = newer_build("work", kind, location);
    assert_eq!(delivered, "profile newcomer Nia Okafor KE\n");
    let counts = runtime().block_on(async {
        with_store!(kind, location, NAMESPACE, |store| {
            emitter::durable::Store::counts(&store)
                .await
                .expect("counts")
        })
    });
    assert_eq!(
        counts,
        Counts {
            waiting: 0,
            leased: 0,
            dead: 4
        },
        "the newer profile is delivered; the dead letters stay"
    );
}

/// This build's worker: delivers what it can read, dead-letters what it cannot, and leaves the
/// newer build's profile in the store, with a note and its attempts untouched.
async fn this_build<S: Admin>(store: S) {
    let (sender, mut received) = mpsc::unbounded_channel();
    // A newer worker takes the newer profile once this delay has passed.
    let config = DurableConfig::default()
        .poll_interval(Duration::from_millis(20))
        .newer_version_delay(NEWER_VERSION_DELAY);
    let backend = Durable::with_config(store, config);
    let emitter = Emitter::builder()
        .listeners(listeners![signup_seen, order_seen, profile_seen])
        .state(Seen(sender))
        .backend(backend.clone())
        .start()
        .await
        .expect("this build's emitter starts");

    // An emit stores the emitting build's version, in a transaction of the caller's as well.
    let prepared = backend
        .prepare(
            &Order {
                id: 8,
                currency: "USD".to_owned(),
            },
            EmitOptions::new(),
        )
        .expect("an order is prepared");
    assert_eq!(prepared.event.version, Order::VERSION);
    assert_eq!(Order::VERSION, 2);

    let table = emitter.table();
    assert_eq!(table.unreadable_version("versions.profile", 1), None);
    assert_eq!(table.unreadable_version("versions.profile", 3), None);
    assert_eq!(
        table.unreadable_version("versions.profile", 4).as_deref(),
        Some(
            "version 4 of event `versions.profile` is newer than this binary's 3: a worker of a \
             newer build delivers it"
        )
    );
    assert_eq!(
        table.unreadable_version("versions.gone", 1).as_deref(),
        Some("no event type of this binary has the id `versions.gone`")
    );

    let mut delivered = BTreeSet::new();
    while delivered.len() < DELIVERED.len() {
        let line = tokio::time::timeout(PATIENCE, received.recv())
            .await
            .expect("the readable events are delivered")
            .expect("the listeners keep their sender");
        delivered.insert(line);
    }
    let expected: BTreeSet<String> = DELIVERED.iter().map(|line| (*line).to_owned()).collect();
    assert_eq!(delivered, expected);

    // The outcomes that are not deliveries are stored after them: wait for them in the store.
    let store = backend.store();
    let started = Instant::now();
    let left = loop {
        let dead = backend.counts().await.expect("counts").dead;
        let scheduled = store
            .deliveries(&Query::new(DeliveryState::Scheduled))
            .await
            .expect("the scheduled deliveries are listed")
            .deliveries;
        if dead == DEAD.len() as u64 && !scheduled.is_empty() {
            break scheduled;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{dead} dead letters, scheduled: {scheduled:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(left.len(), 1, "{left:?}");
    let left = &left[0];
    assert_eq!(
        (
            left.event_id.as_str(),
            left.listener.as_str(),
            left.attempts,
            left.error.as_deref()
        ),
        ("versions.profile", "versions.profile_seen", 0, Some(LEFT)),
        "left for a newer worker, visible, its attempts untouched"
    );
    // The start-up check names it too, with both versions.
    let found = backend
        .compatibility()
        .await
        .expect("the check reads the store");
    assert_eq!(
        found.findings,
        [Finding::UnreadableVersion {
            event_id: "versions.profile".to_owned(),
            version: 4,
            known: 3,
            listener: "versions.profile_seen".to_owned(),
            unfinished: 1,
        }],
        "{found}"
    );
    assert!(
        found.to_string().contains("a newer build stored them"),
        "{found}"
    );
    // Its subscriptions say which version of each event it reads, for emitters to compare.
    let subscriptions = backend.subscriptions().await.expect("the subscriptions");
    let profile = subscriptions
        .iter()
        .find(|s| s.event_id == "versions.profile" && s.listener == "versions.profile_seen")
        .unwrap_or_else(|| panic!("no subscription of the profile: {subscriptions:?}"));
    assert_eq!(profile.version, 3, "{profile:?}");

    let letters = backend.dead_letters(10).await.expect("the dead letters");
    for (payload, reason) in DEAD {
        let letter = letters
            .iter()
            .find(|letter| letter.payload_text() == *payload)
            .unwrap_or_else(|| panic!("no dead letter of {payload}: {letters:?}"));
        assert!(
            letter.reason.starts_with(reason),
            "the reason of {payload}:\n{}\nshould start with\n{reason}",
            letter.reason
        );
    }
    emitter.shutdown().await.expect("shutdown");
    assert_eq!(
        backend.counts().await.expect("counts").unfinished(),
        1,
        "the newer profile waits for a newer worker"
    );
}

/// Runs the newer build (`mode` `emit` or `work`) on the store, and returns what it printed.
fn newer_build(mode: &str, kind: Kind, location: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_event_versions_newer_build"))
        .args([mode, kind.name(), location, NAMESPACE])
        .output()
        .expect("the newer build runs");
    assert!(
        output.status.success(),
        "the newer build's {mode} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the newer build prints text")
}
