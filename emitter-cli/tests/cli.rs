//! The `emitter` command against real stores: a SQLite file, and private PostgreSQL and Redis
//! servers (started as the other tests start them, skipped when missing unless
//! `EMITTER_REQUIRE_SERVERS=1`). Each store is filled through the `Store` API as workers would
//! fill it; then the command is run as an operator runs it, and its answers, exit codes and
//! effects on the store are checked.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use emitter::durable::admin::{DeliveryState, Heartbeat, ListenerActivity, Query};
use emitter::durable::postgres::PostgresConfig;
use emitter::durable::redis::RedisConfig;
use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{Admin, NewEmit, Route, Setup, Store, StoredEvent, Subscription};
use emitter::EmitId;
use emitter_tests::servers::{Postgres, Redis};
use serde_json::Value;

const A: &str = "app.a";
const B: &str = "app.b";
const HOUR: Duration = Duration::from_secs(3600);

/// One runtime per test: the network stores' connections live on the runtime that made them.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// What one run of the command answered.
struct Answer {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "the command failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.stdout))
    }
}

/// Runs `emitter ARGS STORE` (`STORE`: `--url URL` and the store's options) with stdin closed,
/// as a script runs it: nobody to confirm.
fn emitter(store: &[String], args: &[&str]) -> Answer {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_emitter"))
        .args(args)
        .args(store)
        .env_remove("EMITTER_URL")
        .stdin(Stdio::null())
        .output()
        .expect("the command runs");
    Answer {
        code: status.code().expect("the command exits, not killed"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn emit(n: u64, listeners: &[&'static str], due: SystemTime) -> NewEmit {
    let event = StoredEvent::new(
        "app.order_paid".to_owned(),
        EmitId::from_u128(0xc0ffee_u128 << 64 | u128::from(n)),
        SystemTime::now(),
        format!("{{\"order\":{n}}}").into_bytes(),
    );
    NewEmit::new(event, listeners.to_vec(), due, None)
}

/// Fills `store` as workers would have: A has three waiting deliveries and one dead letter
/// (order 4, "printer on fire"), B one scheduled an hour ahead; a worker runs A only, so B is
/// an orphan.
async fn fill(store: &impl Admin) {
    store
        .open(&Setup::new(
            vec![Route {
                event_id: "app.order_paid",
                listeners: vec![A, B],
            }],
            HOUR,
        ))
        .await
        .expect("the store opens");
    let now = SystemTime::now();
    store.insert(&[emit(4, &[A], now)]).await.expect("stored");
    let claimed = store.claim("w1", &[A], 10, HOUR).await.expect("claimed");
    assert_eq!(claimed.len(), 1);
    store
        .dead_letter(&claimed[0].receipt, "printer on fire")
        .await
        .expect("dead-lettered");
    store
        .insert(&[
            emit(1, &[A], now),
            emit(2, &[A], now),
            emit(3, &[A], now),
            emit(5, &[B], now + HOUR),
        ])
        .await
        .expect("stored");
    store
        .heartbeat(&Heartbeat::new("w1", vec![ListenerActivity::new(A)], HOUR))
        .await
        .expect("the heartbeat is stored");
}

fn listener<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["listeners"]
        .as_array()
        .expect("a list of listeners")
        .iter()
        .find(|listener| listener["listener"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {status:#}"))
}

fn ids(page: &Value) -> Vec<String> {
    page["deliveries"]
        .as_array()
        .expect("a list of deliveries")
        .iter()
        .map(|delivery| delivery["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The command line's options that name a store.
fn target(url: &str, options: &[&str]) -> Vec<String> {
    ["--url", url]
        .iter()
        .chain(options)
        .map(|arg| (*arg).to_owned())
        .collect()
}

/// Everything an operator does, on the store `url` names, which `fill` filled.
fn operate(url: &[String], store: &impl Admin, rt: &tokio::runtime::Runtime) {
    let status = emitter(url, &["status", "--json"]).json();
    let a = listener(&status, A);
    assert_eq!(
        (&a["waiting"], &a["dead"], &a["orphan"]),
        (&3.into(), &1.into(), &false.into())
    );
    assert!(a["oldest_waiting_seconds"].as_u64().is_some(), "{a}");
    let b = listener(&status, B);
    assert_eq!((&b["scheduled"], &b["orphan"]), (&1.into(), &true.into()));
    assert_eq!(status["workers"][0]["worker"], "w1");
    let table = emitter(url, &["status"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.starts_with("LISTENER"), "{}", table.stdout);
    assert!(table.stdout.contains("orphan"), "{}", table.stdout);

    // A page at a time, each delivery once.
    let first = emitter(
        url,
        &["deliveries", "--listener", A, "--limit", "2", "--json"],
    )
    .json();
    let cursor = first["next"].as_str().expect("a next page");
    let second = emitter(
        url,
        &[
            "deliveries",
            "--listener",
            A,
            "--limit",
            "2",
            "--cursor",
            cursor,
            "--json",
        ],
    )
    .json();
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.dedup();
    assert_eq!(all.len(), 3, "{first:#} {second:#}");
    let human = emitter(url, &["deliveries", "--listener", A, "--limit", "2"]);
    assert!(
        human.stdout.contains("more: add --cursor"),
        "{}",
        human.stdout
    );
    let scheduled = emitter(url, &["deliveries", "--state", "scheduled", "--json"]).json();
    assert_eq!(scheduled["deliveries"][0]["listener"], B);
    let none = emitter(
        url,
        &["deliveries", "--after", "1h", "--before", "30m", "--json"],
    )
    .json();
    assert!(ids(&none).is_empty(), "{none:#}");

    // A dead letter, shown in full and replayed.
    let dead = emitter(url, &["deliveries", "--state", "dead", "--json"]).json();
    let dead_id = ids(&dead).remove(0);
    let shown = emitter(url, &["show", &dead_id, "--json"]).json();
    assert_eq!(shown["payload"]["order"], 4);
    assert_eq!(shown["error"], "printer on fire");
    let shown = emitter(url, &["show", &dead_id]);
    assert!(shown.stdout.contains("\"order\": 4"), "{}", shown.stdout);
    assert!(shown
        .stdout
        .contains("dead-lettered after 1 attempt(s): printer on fire"));
    assert_eq!(emitter(url, &["show", "no-such-id"]).code, 3);
    assert_eq!(
        emitter(url, &["replay", &dead_id, "--json"]).json()["replayed"],
        1
    );
    assert_eq!(
        emitter(url, &["replay", &dead_id]).code,
        3,
        "replayed already"
    );
    let status = emitter(url, &["status", "--json"]).json();
    assert_eq!(listener(&status, A)["waiting"], 4);
    assert_eq!(listener(&status, A)["dead"], 0);

    // Cancelling asks for confirmation; a script must say --yes.
    let waiting = ids(&emitter(url, &["deliveries", "--listener", A, "--json"]).json());
    let refused = emitter(url, &["cancel", &waiting[0]]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(emitter(url, &["cancel", &waiting[0], "--yes"]).code, 0);
    assert_eq!(emitter(url, &["cancel", &waiting[0], "--yes"]).code, 3);
    let status = emitter(url, &["status", "--json"]).json();
    assert_eq!(listener(&status, A)["waiting"], 3);

    // Paused: no claim takes A's deliveries, until resumed.
    assert_eq!(
        emitter(url, &["pause", A, "--json"]).json()["changed"],
        true
    );
    assert_eq!(
        emitter(url, &["pause", A, "--json"]).json()["changed"],
        false
    );
    assert_eq!(
        listener(&emitter(url, &["status", "--json"]).json(), A)["paused"],
        true
    );
    rt.block_on(async {
        assert!(store
            .claim("w2", &[A], 10, HOUR)
            .await
            .expect("claim")
            .is_empty());
    });
    assert_eq!(emitter(url, &["resume", A]).code, 0);
    let claimed = rt.block_on(async { store.claim("w2", &[A], 10, HOUR).await.expect("claim") });
    assert_eq!(claimed.len(), 3, "resumed");
    let running = emitter(url, &["deliveries", "--state", "running", "--json"]).json();
    assert_eq!(running["deliveries"][0]["worker"], "w2");
    let running_id = claimed[0].receipt.id.clone();
    assert_eq!(
        emitter(url, &["cancel", &running_id, "--yes"]).code,
        4,
        "a worker holds it"
    );

    // Dead letters by filter.
    rt.block_on(async {
        for claim in &claimed {
            store
                .dead_letter(&claim.receipt, "failed")
                .await
                .expect("dead-lettered");
        }
    });
    let other_event = emitter(
        url,
        &["discard", "--all", "--event", "other", "--yes", "--json"],
    );
    assert_eq!(other_event.json()["discarded"], 0);
    assert_eq!(
        emitter(url, &["discard", "--all", "--listener", A]).code,
        4,
        "not confirmed"
    );
    let discarded = emitter(
        url,
        &["discard", "--all", "--listener", A, "--yes", "--json"],
    );
    assert_eq!(discarded.json()["discarded"], 3);

    // The orphan B is given to A.
    let orphans = emitter(url, &["orphans", "--json"]).json();
    assert_eq!(orphans["orphans"][0]["listener"], B, "{orphans:#}");
    assert_eq!(orphans["orphans"].as_array().map(Vec::len), Some(1));
    let rehomed = emitter(url, &["orphans", "rehome", B, A, "--yes", "--json"]).json();
    assert_eq!(rehomed["rehomed"], 1);
    let orphans = emitter(url, &["orphans"]);
    assert!(
        orphans.stdout.starts_with("no orphans"),
        "{}",
        orphans.stdout
    );
    let status = emitter(url, &["status", "--json"]).json();
    assert_eq!(listener(&status, A)["scheduled"], 1);

    // The workers' subscriptions: listed, and one deleted.
    rt.block_on(async {
        let now = SystemTime::now();
        store
            .subscribe(
                &[A, B],
                &[
                    Subscription::new("app.order_paid", A, now),
                    Subscription::new("app.order_paid", B, now),
                ],
            )
            .await
            .expect("subscribed");
    });
    let listed = emitter(url, &["subscriptions", "--json"]).json();
    assert_eq!(listed["subscriptions"][0]["listener"], A, "{listed:#}");
    assert_eq!(listed["subscriptions"][1]["listener"], B, "{listed:#}");
    assert_eq!(listed["subscriptions"][1]["event_id"], "app.order_paid");
    assert_eq!(emitter(url, &["unsubscribe", B]).code, 4, "not confirmed");
    let deleted = emitter(url, &["unsubscribe", B, "--yes", "--json"]).json();
    assert_eq!(deleted["unsubscribed"], 1);
    let table = emitter(url, &["subscriptions"]);
    assert!(
        table.stdout.contains(A) && !table.stdout.contains(B),
        "{}",
        table.stdout
    );
}

#[test]
fn the_command_steers_a_sqlite_store() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).expect("the store opens");
    let rt = runtime();
    rt.block_on(fill(&store));
    operate(
        &target(&format!("sqlite://{}", path.display()), &[]),
        &store,
        &rt,
    );
}

#[test]
fn the_command_steers_a_postgres_store() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let rt = runtime();
    let store = rt.block_on(async {
        let store = PostgresConfig::new(server.url())
            .schema("console")
            .connect()
            .await
            .expect("the store connects");
        fill(&store).await;
        store
    });
    // The command creates no tables: a schema without a store is the store's failure.
    let elsewhere = emitter(&target(&server.url(), &[]), &["status"]);
    assert_eq!(elsewhere.code, 1, "{}", elsewhere.stdout);
    assert!(
        elsewhere.stderr.contains("does not exist"),
        "{}",
        elsewhere.stderr
    );
    operate(
        &target(&server.url(), &["--schema", "console"]),
        &store,
        &rt,
    );
}

#[test]
fn the_command_steers_a_redis_store() {
    let Some(server) = Redis::start() else { return };
    let rt = runtime();
    let store = rt.block_on(async {
        let store = RedisConfig::new(server.url())
            .prefix("console")
            .connect()
            .await
            .expect("the store connects");
        fill(&store).await;
        store
    });
    let elsewhere = emitter(&target(&server.url(), &[]), &["status", "--json"]).json();
    assert!(
        elsewhere["listeners"].as_array().is_some_and(Vec::is_empty),
        "the default prefix holds nothing: {elsewhere:#}"
    );
    operate(
        &target(&server.url(), &["--prefix", "console"]),
        &store,
        &rt,
    );
}

#[test]
fn bad_input_is_told_with_its_exit_code_and_no_password_is_printed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let answer = emitter(&target(&missing, &[]), &["status"]);
    assert_eq!(answer.code, 2, "{}", answer.stderr);
    assert!(
        answer.stderr.contains("no SQLite store at"),
        "{}",
        answer.stderr
    );
    assert!(
        !dir.path().join("typo.db").exists(),
        "a typo made an empty store"
    );

    let answer = emitter(
        &target("mysql://root:hunter2-secret@db/app", &[]),
        &["status"],
    );
    assert_eq!(answer.code, 2);
    assert!(
        answer.stderr.contains("unknown store `mysql://`"),
        "{}",
        answer.stderr
    );

    let path = dir.path().join("events.db");
    SqliteStore::open(&path).expect("the store opens");
    let sqlite = target(&format!("sqlite://{}", path.display()), &[]);
    let answer = emitter(&sqlite, &["deliveries", "--after", "yesterday"]);
    assert_eq!(answer.code, 2);
    assert!(answer.stderr.contains("is not a time"), "{}", answer.stderr);
    assert_eq!(emitter(&sqlite, &["deliveries", "--state", "lost"]).code, 2);
    assert_eq!(emitter(&sqlite, &["replay"]).code, 2, "an id or --all");
    assert_eq!(emitter(&sqlite, &["status", "--prefix", "x"]).code, 2);
    let answer = emitter(&sqlite, &["deliveries", "--cursor", "garbage"]);
    assert_eq!(answer.code, 2, "{}", answer.stderr);

    // A CA file that cannot be read is the operator's input to fix, for either network store.
    for url in [
        "postgres://app:hunter2-secret@127.0.0.1:1/app",
        "rediss://:hunter2-secret@127.0.0.1:1/0",
    ] {
        let answer = emitter(
            &target(url, &["--ca-file", "/nonexistent/ca.pem"]),
            &["status"],
        );
        assert_eq!(answer.code, 2, "{url}: {}", answer.stderr);
        assert!(answer.stderr.contains("CA file"), "{}", answer.stderr);
        assert!(!answer.stderr.contains("hunter2"), "{}", answer.stderr);
    }
    assert_eq!(emitter(&sqlite, &["status", "--tls", "require"]).code, 2);

    // Nothing listens on port 1: the store cannot be reached, and says so without the password.
    for url in [
        "postgres://app:hunter2-secret@127.0.0.1:1/app?connect_timeout=5",
        "redis://:hunter2-secret@127.0.0.1:1/0",
    ] {
        let answer = emitter(&target(url, &[]), &["status"]);
        assert_eq!(answer.code, 1, "{url}: {}", answer.stderr);
        assert!(!answer.stderr.is_empty());
        assert!(
            !answer.stderr.contains("hunter2") && !answer.stdout.contains("hunter2"),
            "the password is printed: {}",
            answer.stderr
        );
    }
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let answer = emitter(&[], &["--help"]);
    assert_eq!(answer.code, 0);
    for word in [
        "status",
        "deliveries",
        "show",
        "replay",
        "discard",
        "cancel",
        "pause",
        "resume",
        "orphans",
        "Exit codes",
    ] {
        assert!(
            answer.stdout.contains(word),
            "{word} missing: {}",
            answer.stdout
        );
    }
    assert_eq!(emitter(&[], &["frobnicate"]).code, 2);
}

/// Reads pages of the board `emitter board` serves, with the store's contents.
#[test]
fn the_board_is_served_read_only_unless_given_a_token() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).expect("the store opens");
    runtime().block_on(fill(&store));
    let url = format!("sqlite://{}", path.display());

    let no_token = emitter(&target(&url, &[]), &["board", "--allow-writes"]);
    assert_eq!(no_token.code, 2, "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("EMITTER_BOARD_TOKEN"),
        "{}",
        no_token.stderr
    );

    /// The board's process, stopped however the test ends.
    struct Served(std::process::Child);
    impl Drop for Served {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut board = Served(
        Command::new(env!("CARGO_BIN_EXE_emitter"))
            .args(["board", "--listen", "127.0.0.1:0", "--url", &url])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the board starts"),
    );
    let mut said = String::new();
    BufReader::new(board.0.stderr.take().expect("its stderr"))
        .read_line(&mut said)
        .expect("the board says where it is");
    let address = said
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {said:?}"))
        .to_owned();
    assert!(said.contains("read-only"), "{said}");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut overview = agent
        .get(&format!("http://{address}/"))
        .call()
        .expect("the board answers");
    let status = overview.status().as_u16();
    let page = overview.body_mut().read_to_string().expect("a page");
    let dead = runtime().block_on(async {
        store
            .deliveries(&Query::new(DeliveryState::Dead))
            .await
            .expect("listed")
    });
    let refused = agent
        .post(&format!(
            "http://{address}/deliveries/{}/replay",
            dead.deliveries[0].id
        ))
        .header("authorization", "Bearer anything-at-all-really")
        .send("")
        .expect("the board answers")
        .status()
        .as_u16();
    drop(board);

    assert_eq!(status, 200, "{page}");
    assert!(page.contains(A) && page.contains(B), "{page}");
    assert!(
        [401, 403].contains(&refused),
        "a read-only board wrote: {refused}"
    );
    runtime().block_on(async {
        assert_eq!(store.dead_letters(10).await.expect("listed").len(), 1);
    });
}
