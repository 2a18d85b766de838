//! The Redis store (`emitter::durable::redis`) against real `redis-server` processes: each test
//! starts a private server (see `servers.rs`) and skips itself when `redis-server` is missing,
//! unless `EMITTER_REQUIRE_SERVERS=1`.
//!
//! Leases are short (200 ms) so that expiry can be tested; waits are real, and every assert about
//! time has a wide margin in the direction that cannot fail spuriously on a slow machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use emitter::durable::redis::{RedisConfig, RedisStore};
use emitter::durable::Tls;
use emitter::durable::{
    Admin, Claimed, Counts, Durable, DurableConfig, NewEmit, Receipt, Route, Setup, Store,
    StoredEvent,
};
use emitter::{listener, BackendErrorKind, EmitId, Emitter, Event};
use emitter_tests::servers::{Redis, RedisOptions as ServerOptions};

const LEASE: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(60);

async fn store(redis: &Redis) -> RedisStore {
    RedisStore::connect(&redis.url()).await.unwrap()
}

fn event(n: u64) -> StoredEvent {
    StoredEvent::new(
        "job".to_owned(),
        EmitId::from_u128((0xfeed_u128 << 112) | u128::from(n)),
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + n),
        format!("{{\"n\":{n}}}").into_bytes(),
    )
}

fn emit(n: u64, listeners: &[&'static str], run_at: SystemTime, key: Option<&str>) -> NewEmit {
    NewEmit::new(event(n), listeners.to_vec(), run_at, key.map(str::to_owned))
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn order_of(claim: &Claimed) -> u64 {
    u64::try_from(claim.event.emit_id.as_u128() & u128::from(u64::MAX)).unwrap()
}

fn orders(claims: &[Claimed]) -> Vec<u64> {
    claims.iter().map(order_of).collect()
}

async fn counts(store: &RedisStore) -> (u64, u64, u64) {
    let Counts {
        waiting,
        leased,
        dead,
        ..
    } = store.counts().await.unwrap();
    (waiting, leased, dead)
}

// ---------------------------------------------------------------------------------------------
// Storing and claiming

#[tokio::test]
async fn claim_takes_due_deliveries_of_named_listeners_oldest_first_up_to_the_limit() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    // One batch per emit, alternating listeners, so that the order across streams matters.
    // Entry ids order entries of different streams to the millisecond: a few apart.
    for n in 1..=6 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let listener = if n % 2 == 0 { "even" } else { "odd" };
        store
            .insert(&[emit(n, &[listener], now(), None)])
            .await
            .unwrap();
    }
    store
        .insert(&[emit(7, &["other"], now(), None)])
        .await
        .unwrap();

    let first = store.claim("w", &["odd", "even"], 4, LONG).await.unwrap();
    assert_eq!(
        orders(&first),
        [1, 2, 3, 4],
        "oldest first across listeners, up to the limit"
    );
    let rest = store.claim("w", &["even", "odd"], 10, LONG).await.unwrap();
    assert_eq!(orders(&rest), [5, 6]);
    assert!(store
        .claim("w", &["odd", "even"], 10, LONG)
        .await
        .unwrap()
        .is_empty());
    assert!(store.claim("w", &[], 10, LONG).await.unwrap().is_empty());
    assert!(store
        .claim("w", &["other"], 0, LONG)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        orders(&store.claim("w", &["other"], 10, LONG).await.unwrap()),
        [7]
    );
}

#[tokio::test]
async fn a_claim_over_listeners_of_which_one_has_new_entries_reads_that_one() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let emits: Vec<NewEmit> = (1..=3).map(|n| emit(n, &["b"], now(), None)).collect();
    store.insert(&emits).await.unwrap();
    let listeners = ["a", "b", "c"];
    let claimed = store.claim("w", &listeners, 2, LONG).await.unwrap();
    assert_eq!(orders(&claimed), [1, 2]);
    assert!(claimed.iter().all(|claim| claim.listener == "b"));
    assert_eq!(
        orders(&store.claim("w", &listeners, 10, LONG).await.unwrap()),
        [3]
    );
    assert!(store
        .claim("w", &listeners, 10, LONG)
        .await
        .unwrap()
        .is_empty());
    // A delivery for another of them: both are read again, oldest first.
    tokio::time::sleep(Duration::from_millis(3)).await;
    store.insert(&[emit(4, &["c"], now(), None)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3)).await;
    store.insert(&[emit(5, &["b"], now(), None)]).await.unwrap();
    assert_eq!(
        orders(&store.claim("w", &listeners, 10, LONG).await.unwrap()),
        [4, 5]
    );
}

// ---------------------------------------------------------------------------------------------
// Leases

/// Runs a Lua script that returns a string (the test client reads no arrays) and returns it.
fn eval_text(redis: &Redis, script: &str, args: &[&str]) -> String {
    let mut command = vec!["EVAL", script, "0"];
    command.extend(args);
    let reply = redis.command(&command);
    let (header, text) = reply.split_once("\r\n").unwrap();
    assert!(header.starts_with('$'), "{reply}");
    text.strip_suffix("\r\n").unwrap().to_owned()
}

/// The entry ids and delivery counts pending in `listener`'s group for `consumer`, oldest first:
/// `"{id} {count}"` each.
fn pending_for(redis: &Redis, listener: &str, consumer: &str) -> Vec<String> {
    let key = format!("emitter:listener:{listener}");
    let text = eval_text(
        redis,
        "local out = {} \
         for _, e in ipairs(redis.call('XPENDING', ARGV[1], ARGV[2], '-', '+', 1000, ARGV[3])) do \
           out[#out + 1] = e[1] .. ' ' .. e[4] \
         end \
         return table.concat(out, ',')",
        &[&key, listener, consumer],
    );
    text.split(',')
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

fn entry_of(receipt: &Receipt) -> &str {
    receipt.id.split_once('/').unwrap().0
}

#[tokio::test]
async fn a_batched_ack_takes_only_the_receipts_whose_lease_still_holds() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let emits: Vec<NewEmit> = (1..=6).map(|n| emit(n, &["a"], now(), None)).collect();
    store.insert(&emits).await.unwrap();
    store
        .insert(&[emit(7, &["b"], now(), None), emit(8, &["b"], now(), None)])
        .await
        .unwrap();
    let first: Vec<Receipt> = store
        .claim("w1", &["a"], 10, LEASE)
        .await
        .unwrap()
        .into_iter()
        .map(|claim| claim.receipt)
        .collect();
    assert_eq!(first.len(), 6);
    let on_b: Vec<Receipt> = store
        .claim("w1", &["b"], 10, LONG)
        .await
        .unwrap()
        .into_iter()
        .map(|claim| claim.receipt)
        .collect();
    assert_eq!(on_b.len(), 2);
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    // Entries 1 and 2 go to another worker (one claim each: a delivery whose lease ran out is a
    // suspect, claimed alone), entry 3 to the same worker again; 4 to 6 stay with w1 under their
    // first lease, which expired but which nobody took over: it still acts.
    let mut taken_over = store.claim("w2", &["a"], 2, LEASE).await.unwrap();
    taken_over.extend(store.claim("w2", &["a"], 2, LEASE).await.unwrap());
    assert_eq!(orders(&taken_over), [1, 2]);
    let again = store.claim("w1", &["a"], 1, LEASE).await.unwrap().remove(0);
    assert_eq!((order_of(&again), again.attempt), (3, 2));

    let forged = |id: String, lease: &str| Receipt {
        id,
        lease: lease.to_owned(),
    };
    let batch = vec![
        // Stale: claimed again by w2, and by w1 with a higher delivery count.
        first[0].clone(),
        first[1].clone(),
        first[2].clone(),
        // Current.
        first[3].clone(),
        first[5].clone(),
        on_b[0].clone(),
        // The same receipt twice acknowledges it once.
        first[3].clone(),
        // Forged: another worker, a delivery count never given, a listener without a stream,
        // an id Redis cannot make, no entry id at all.
        forged(first[4].id.clone(), "1/w9"),
        forged(first[4].id.clone(), "5/w1"),
        forged(format!("{}/no_such_listener", entry_of(&first[4])), "1/w1"),
        forged("99999999999999999999-0/a".to_owned(), "1/w1"),
        forged("nonsense/a".to_owned(), "1/w1"),
    ];
    store.ack(&batch).await.unwrap();

    let id = |receipt: &Receipt| entry_of(receipt).to_owned();
    assert_eq!(
        pending_for(&redis, "a", "w2"),
        [
            format!("{} 2", id(&first[0])),
            format!("{} 2", id(&first[1]))
        ]
    );
    assert_eq!(
        pending_for(&redis, "a", "w1"),
        [
            format!("{} 2", id(&first[2])),
            format!("{} 1", id(&first[4]))
        ]
    );
    assert_eq!(
        pending_for(&redis, "b", "w1"),
        [format!("{} 1", id(&on_b[1]))]
    );
    assert_eq!(redis.command(&["XLEN", "emitter:listener:a"]), ":4\r\n");
    assert_eq!(redis.command(&["XLEN", "emitter:listener:b"]), ":1\r\n");

    let mut live: Vec<Receipt> = taken_over.into_iter().map(|claim| claim.receipt).collect();
    live.extend([again.receipt, first[4].clone(), on_b[1].clone()]);
    store.ack(&live).await.unwrap();
    assert_eq!(counts(&store).await, (0, 0, 0));
}

#[tokio::test]
async fn a_batched_ack_finds_receipts_among_many_deliveries_still_running() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let emits: Vec<NewEmit> = (1..=100).map(|n| emit(n, &["a"], now(), None)).collect();
    store.insert(&emits).await.unwrap();
    let claimed = store.claim("w", &["a"], 100, LONG).await.unwrap();
    assert_eq!(claimed.len(), 100);
    // Three receipts spanning 100 pending entries: the lease check reads a page of the
    // consumer's entries in that range (fewer than 100) and looks up the ones past it alone.
    let stale = Receipt {
        id: claimed[50].receipt.id.clone(),
        lease: claimed[50].receipt.lease.replace("1/", "2/"),
    };
    store
        .ack(&[
            claimed[0].receipt.clone(),
            stale,
            claimed[98].receipt.clone(),
            claimed[99].receipt.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(redis.command(&["XLEN", "emitter:listener:a"]), ":97\r\n");
    let pending = pending_for(&redis, "a", "w");
    assert_eq!(pending.len(), 97);
    assert_eq!(pending[0], format!("{} 1", entry_of(&claimed[1].receipt)));
    assert_eq!(
        pending[pending.len() - 1],
        format!("{} 1", entry_of(&claimed[97].receipt))
    );
    let rest: Vec<Receipt> = claimed[1..98]
        .iter()
        .map(|claim| claim.receipt.clone())
        .collect();
    store.ack(&rest).await.unwrap();
    assert_eq!(counts(&store).await, (0, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// Retries and dead letters

#[tokio::test]
async fn an_entry_that_keeps_killing_workers_is_dead_lettered_by_the_claim() {
    let Some(redis) = Redis::start() else { return };
    let store = RedisConfig::new(redis.url())
        .max_deliveries(2)
        .connect()
        .await
        .unwrap();
    store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
    let short = Duration::from_millis(50);
    assert_eq!(
        store.claim("w", &["a"], 10, short).await.unwrap()[0].attempt,
        1
    );
    tokio::time::sleep(short * 2).await;
    assert_eq!(
        store.claim("w", &["a"], 10, short).await.unwrap()[0].attempt,
        2
    );
    tokio::time::sleep(short * 2).await;
    assert!(store
        .claim("w", &["a"], 10, short)
        .await
        .unwrap()
        .is_empty());
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].event, event(1));
    assert!(
        letters[0].reason.contains("crash loop"),
        "{}",
        letters[0].reason
    );
    assert_eq!(counts(&store).await, (0, 0, 1));
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys

/// A store that [`Store::open`] set up for listeners `a` and `b`.
async fn opened_for_a_and_b(redis: &Redis) -> RedisStore {
    let store = store(redis).await;
    let routes = vec![Route {
        event_id: "job",
        listeners: vec!["a", "b"],
    }];
    store
        .open(&Setup::new(routes, Duration::from_secs(3600)))
        .await
        .unwrap();
    store
}

/// How many `EXEC`s the server ran.
fn transactions(redis: &Redis) -> u64 {
    let stats = redis.command(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_exec:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// The fields of the entries of `listener`'s stream, `name|value|...` each, without their ids.
fn fields_of(redis: &Redis, listener: &str) -> Vec<String> {
    let key = format!("emitter:listener:{listener}");
    let text = eval_text(
        redis,
        "local out = {} \
         for _, e in ipairs(redis.call('XRANGE', ARGV[1], '-', '+')) do \
           out[#out + 1] = table.concat(e[2], '|') \
         end \
         return table.concat(out, ';')",
        &[&key],
    );
    text.split(';').map(str::to_owned).collect()
}

#[tokio::test]
async fn plain_emits_to_opened_listeners_are_appended_like_the_script_does() {
    let Some(redis) = Redis::start() else { return };
    let store = opened_for_a_and_b(&redis).await;
    let inserted = store
        .insert(&[emit(1, &["a", "b", "a"], now(), None)])
        .await
        .unwrap();
    assert_eq!((inserted.stored, inserted.duplicates), (1, 0));
    assert_eq!(transactions(&redis), 1, "appended in a transaction");
    // A listener `open` did not set up takes the script: the same fields either way.
    store.insert(&[emit(1, &["c"], now(), None)]).await.unwrap();
    assert_eq!(transactions(&redis), 1);
    let fields = fields_of(&redis, "a");
    assert_eq!(
        fields,
        [format!(
            "event|job|emit|feed{:028x}|at|1700000000001|payload|{{\"n\":1}}|attempts|0",
            1
        )]
    );
    assert_eq!(fields_of(&redis, "b"), fields);
    assert_eq!(fields_of(&redis, "c"), fields);
    assert_eq!(counts(&store).await, (3, 0, 0));
    // So do a delay and an idempotency key.
    store
        .insert(&[emit(2, &["a"], now() + LONG, None)])
        .await
        .unwrap();
    store
        .insert(&[emit(3, &["a"], now(), Some("k"))])
        .await
        .unwrap();
    assert_eq!(transactions(&redis), 1);

    let claimed = store.claim("w", &["a", "b"], 10, LONG).await.unwrap();
    assert_eq!(orders(&claimed), [1, 1, 3]);
    assert_eq!(claimed[0].event, event(1), "the event round-trips exactly");
    assert_eq!(claimed[0].attempt, 1);
}

#[tokio::test]
async fn a_key_that_changed_type_since_open_turns_inserts_back_to_the_script() {
    let Some(redis) = Redis::start() else { return };
    let store = opened_for_a_and_b(&redis).await;
    redis.command(&["DEL", "emitter:listener:b"]);
    redis.command(&["SET", "emitter:listener:b", "not a stream"]);
    let error = store
        .insert(&[emit(1, &["a"], now(), None), emit(2, &["b"], now(), None)])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`emitter:listener:b` holds a string"),
        "the script names the key: {error}"
    );
    // The trade-off of the transaction (see the module docs): Redis does not undo the append
    // to `a` that ran before the one to `b` failed.
    assert_eq!(redis.command(&["XLEN", "emitter:listener:a"]), ":1\r\n");
    assert_eq!(transactions(&redis), 1);
    // From now on the script checks first: the batch is refused whole, nothing is appended.
    let error = store
        .insert(&[emit(3, &["a"], now(), None), emit(4, &["b"], now(), None)])
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("holds a string"), "{error}");
    assert_eq!(redis.command(&["XLEN", "emitter:listener:a"]), ":1\r\n");
    assert_eq!(transactions(&redis), 1);
    redis.command(&["DEL", "emitter:listener:b"]);
    store
        .insert(&[emit(5, &["a"], now(), None), emit(6, &["b"], now(), None)])
        .await
        .unwrap();
    assert_eq!(transactions(&redis), 1);
    let claimed = store.claim("w", &["a", "b"], 10, LONG).await.unwrap();
    assert_eq!(orders(&claimed), [1, 5, 6]);
}

#[listener(events = [Ping], name = "redis_store::record_ping")]
async fn record_ping(n: u64) {
    PINGED.fetch_add(n, Ordering::SeqCst);
}

static PINGED: AtomicU64 = AtomicU64::new(0);

#[derive(Event, Debug, Clone)]
pub struct Ping {
    pub n: u64,
}

/// An emitter over `store` whose engine only opens the store (no worker), so that the test drives
/// the store itself; `open` is where the store learns the key retention and the listeners.
async fn opened(store: RedisStore, retention: Duration) -> (Emitter, Durable<RedisStore>) {
    let config = DurableConfig::default()
        .key_retention(retention)
        .deliver(false);
    let backend = Durable::with_config(store, config);
    let emitter = Emitter::builder()
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    (emitter, backend)
}

// ---------------------------------------------------------------------------------------------
// Many claimers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_deliveries_move_once_with_many_claimers() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let due = now() + Duration::from_millis(300);
    let emits: Vec<NewEmit> = (0..200).map(|n| emit(n, &["a"], due, None)).collect();
    store.insert(&emits).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let claimer = RedisStore::connect(&redis.url()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..50 {
                let claimed = claimer
                    .claim(&format!("worker-{worker}"), &["a"], 7, LONG)
                    .await
                    .unwrap();
                seen.extend(claimed.iter().map(order_of));
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..200).collect::<Vec<u64>>(),
        "each delayed delivery moved and claimed once"
    );
}

// ---------------------------------------------------------------------------------------------
// Corrupt data

#[tokio::test]
async fn a_corrupt_delivery_is_dead_lettered_with_the_reason_not_claimed() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
    let key = "emitter:listener:a";
    redis.command(&[
        "XADD", key, "*", "event", "job", "emit", "not-hex", "at", "1", "payload", "{}",
        "attempts", "0",
    ]);
    redis.command(&["XADD", key, "*", "garbage", "only"]);
    store.insert(&[emit(2, &["a"], now(), None)]).await.unwrap();

    let claimed = store.claim("w", &["a"], 10, LONG).await.unwrap();
    assert_eq!(
        orders(&claimed),
        [1, 2],
        "the corrupt entries do not block the others"
    );
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert!(
        letters[0].reason.contains("`emit` field"),
        "{}",
        letters[0].reason
    );
    assert!(letters[0].reason.contains(key), "{}", letters[0].reason);
    assert_eq!(letters[0].payload_text(), "{}");
    assert!(
        letters[1].reason.contains("no `event` field"),
        "{}",
        letters[1].reason
    );
    assert_eq!(letters[1].listener, "a");
    assert_eq!(counts(&store).await, (0, 2, 2));
}

#[tokio::test]
async fn a_corrupt_delayed_delivery_is_dead_lettered() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    redis.command(&[
        "ZADD",
        "emitter:delayed",
        "0",
        "definitely not msgpack \u{1}",
    ]);
    store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
    assert_eq!(
        orders(&store.claim("w", &["a"], 10, LONG).await.unwrap()),
        [1]
    );
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("cannot be decoded"),
        "{}",
        letters[0].reason
    );
    assert_eq!(counts(&store).await, (0, 1, 1));
}

#[tokio::test]
async fn a_delayed_delivery_whose_stream_key_was_taken_is_dead_lettered_when_due() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let due = now() + Duration::from_millis(200);
    store.insert(&[emit(1, &["x"], due, None)]).await.unwrap();
    redis.command(&["SET", "emitter:listener:x", "taken by someone else"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.claim("w", &["a"], 10, LONG).await.unwrap().is_empty());
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "the claims of other listeners go on");
    assert_eq!(
        (letters[0].listener.as_str(), letters[0].event.clone()),
        ("x", event(1))
    );
    assert!(
        letters[0].reason.contains("holds a string"),
        "{}",
        letters[0].reason
    );
}

#[tokio::test]
async fn a_corrupt_dead_letter_is_named_and_can_be_discarded() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let reply = redis.command(&["XADD", "emitter:dead", "*", "listener", "a", "reason", "?"]);
    let id = reply.lines().nth(1).unwrap().to_owned();
    let error = store.dead_letters(10).await.unwrap_err();
    assert_eq!(error.kind(), BackendErrorKind::Corrupt);
    let error = error.to_string();
    assert!(
        error.contains(&format!("dead letter {id} is corrupt")),
        "{error}"
    );
    assert!(error.contains("discard"), "{error}");
    assert!(store.discard(&id).await.unwrap());
    assert!(store.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_key_of_another_type_is_refused_before_anything_is_stored() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    redis.command(&["SET", "emitter:listener:b", "not a stream"]);
    let error = store
        .insert(&[emit(1, &["a"], now(), None), emit(2, &["b"], now(), None)])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`emitter:listener:b` holds a string"),
        "{error}"
    );
    assert!(
        store.claim("w", &["a"], 10, LONG).await.unwrap().is_empty(),
        "the batch is atomic"
    );
    let error = store
        .claim("w", &["b"], 10, LONG)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("holds a string"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Configuration and connections

#[tokio::test]
async fn the_key_prefix_is_validated_and_separates_stores() {
    let Some(redis) = Redis::start() else { return };
    for bad in ["", "has space", "brace{", "é", &"x".repeat(65)] {
        let error = RedisConfig::new(redis.url())
            .prefix(bad)
            .connect()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("invalid Redis key prefix"),
            "{bad:?}: {error}"
        );
    }
    let one = RedisConfig::new(redis.url())
        .prefix("app-1:q.v_2")
        .connect()
        .await
        .unwrap();
    let two = RedisConfig::new(redis.url())
        .prefix("app-2")
        .connect()
        .await
        .unwrap();
    assert_eq!(one.prefix(), "app-1:q.v_2");
    one.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
    assert!(two.claim("w", &["a"], 10, LONG).await.unwrap().is_empty());
    assert_eq!(counts(&two).await, (0, 0, 0));
    assert_eq!(
        orders(&one.claim("w", &["a"], 10, LONG).await.unwrap()),
        [1]
    );
    assert_eq!(
        redis.command(&["EXISTS", "app-1:q.v_2:listener:a"]),
        ":1\r\n"
    );
}

#[tokio::test]
async fn the_password_never_shows_in_errors_or_debug_output() {
    let Some(redis) = Redis::start() else { return };
    let secret = "hunter2-very-secret";
    // Nothing listens on a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = RedisStore::connect(&format!("redis://:{secret}@127.0.0.1:{closed}/0"))
        .await
        .unwrap_err();
    let (text, debug) = (error.to_string(), format!("{error:?}"));
    assert!(
        text.contains(&format!("127.0.0.1:{closed} is unreachable")),
        "{text}"
    );
    assert!(!text.contains(secret) && !debug.contains(secret), "{debug}");
    assert_eq!(error.kind(), BackendErrorKind::Unreachable);

    let error = RedisStore::connect(&format!("redis://:{secret}@127.0.0.1:99999999/0"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid Redis URL"), "{error}");
    assert_eq!(error.kind(), BackendErrorKind::Misconfigured);
    assert!(!format!("{error:?}").contains(secret), "{error:?}");

    redis.command(&["CONFIG", "SET", "requirepass", secret]);
    let url = redis
        .url()
        .replace("redis://", &format!("redis://:{secret}@"));
    let store = RedisStore::connect(&url).await.unwrap();
    let debug = format!("{store:?}");
    assert!(
        debug.contains(&format!("127.0.0.1:{}", redis.port())),
        "{debug}"
    );
    assert!(!debug.contains(secret), "{debug}");
    let wrong = redis
        .url()
        .replace("redis://", "redis://:wrong-password-123@");
    let error = RedisStore::connect(&wrong).await.unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("wrong-password-123"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reconnects_after_a_server_restart_and_loses_nothing_acknowledged() {
    let Some(mut redis) = Redis::start_with(ServerOptions { append_only: true }) else {
        return;
    };
    let store = store(&redis).await;
    let emits: Vec<NewEmit> = (0..10).map(|n| emit(n, &["a"], now(), None)).collect();
    store.insert(&emits).await.unwrap();
    let claimed = store.claim("w", &["a"], 5, LEASE).await.unwrap();
    assert_eq!(orders(&claimed), [0, 1, 2, 3, 4]);
    store
        .ack(
            &claimed[..3]
                .iter()
                .map(|claim| claim.receipt.clone())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();

    redis.stop();
    let error = store
        .claim("w", &["a"], 10, LEASE)
        .await
        .unwrap_err()
        .to_string();
    let address = format!("127.0.0.1:{}", redis.port());
    assert!(
        error.contains(&format!("{address} is unreachable")),
        "{error}"
    );
    let error = store.counts().await.unwrap_err().to_string();
    assert!(error.contains(&address), "{error}");
    redis.restart();

    // The connection comes back by itself within a few calls.
    let deadline = Instant::now() + Duration::from_secs(20);
    let counted = loop {
        match store.counts().await {
            Ok(counted) => break counted,

            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not reconnect: {error}"),
        }
    };
    assert_eq!(
        counted.unfinished(),
        7,
        "the acknowledged deliveries stay gone: {counted:?}"
    );
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    // The two claimed and never acknowledged are suspects, claimed alone; then the others.
    let mut rest = Vec::new();
    for expected in [&[3][..], &[4], &[5, 6, 7, 8, 9]] {
        let mut claimed = store.claim("w", &["a"], 10, LEASE).await.unwrap();
        claimed.sort_by_key(order_of);
        assert_eq!(orders(&claimed), expected);
        rest.extend(claimed);
    }
    let attempts: HashMap<u64, u32> = rest
        .iter()
        .map(|claim| (order_of(claim), claim.attempt))
        .collect();
    assert_eq!(
        (attempts[&3], attempts[&4], attempts[&5]),
        (2, 2, 1),
        "claimed before: attempt 2"
    );
}

#[tokio::test]
async fn wait_for_work_wakes_when_another_process_stores_work() {
    let Some(redis) = Redis::start() else { return };
    let (emitter, backend) = opened(store(&redis).await, LONG).await;
    let waiter = backend.store();
    let producer = store(&redis).await;
    let listener = "redis_store::record_ping";
    // Where the group is: nothing claimed, nothing to wait for.
    assert!(waiter
        .claim("w", &[listener], 10, LONG)
        .await
        .unwrap()
        .is_empty());

    let started = Instant::now();
    waiter.wait_for_work(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "nothing to wake it"
    );

    let insert = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        producer
            .insert(&[emit(1, &[listener], now(), None)])
            .await
            .unwrap();
    };
    let started = Instant::now();
    tokio::join!(waiter.wait_for_work(Duration::from_secs(30)), insert);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the insert of another process"
    );
    assert_eq!(
        waiter
            .claim("w", &[listener], 10, LONG)
            .await
            .unwrap()
            .len(),
        1
    );

    // A delayed delivery wakes the waiter when it falls due.
    producer
        .insert(&[emit(
            2,
            &[listener],
            now() + Duration::from_millis(300),
            None,
        )])
        .await
        .unwrap();
    let started = Instant::now();
    waiter.wait_for_work(Duration::from_secs(30)).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken when the delayed delivery is due"
    );
    emitter.shutdown().await.unwrap();
}

/// A paused listener's backlog wakes no waiter: neither its new entries (the claim tells the
/// waiter to watch only what is added to its stream) nor a retry held for it that fell due;
/// once resumed, its deliveries are claimed again.
#[tokio::test]
async fn a_paused_listeners_backlog_does_not_wake_the_waiter() {
    let Some(redis) = Redis::start() else { return };
    let store = store(&redis).await;
    let routes = vec![Route {
        event_id: "job",
        listeners: vec!["limited"],
    }];
    let one = std::num::NonZeroU32::MIN;
    store
        .open(&Setup::new(routes, LONG).concurrency("limited", one))
        .await
        .unwrap();
    store
        .insert(&[
            emit(1, &["limited"], now(), None),
            emit(2, &["limited"], now(), None),
        ])
        .await
        .unwrap();
    let first = store.claim("w", &["limited"], 10, LONG).await.unwrap();
    assert_eq!(orders(&first), [1]);
    store
        .retry(&first[0].receipt, now(), "held for its retry")
        .await
        .unwrap();
    assert!(Admin::pause(&store, "limited").await.unwrap());
    assert!(store
        .claim("w", &["limited"], 10, LONG)
        .await
        .unwrap()
        .is_empty());

    let started = Instant::now();
    store.wait_for_work(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the paused backlog did not wake the waiter"
    );

    assert!(Admin::resume(&store, "limited").await.unwrap());
    let again = store.claim("w", &["limited"], 10, LONG).await.unwrap();
    assert_eq!(
        (orders(&again), again[0].attempt),
        (vec![1], 2),
        "the held retry first"
    );
}

// ---------------------------------------------------------------------------------------------
// Through the engine

// ---------------------------------------------------------------------------------------------
// TLS

/// Runs `openssl` with `args` in `dir`; panics with its output if it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("could not run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_rediss_url_connects_over_tls_trusting_the_given_authority() {
    let Some(redis) = Redis::start() else { return };
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        let required =
            std::env::var_os("EMITTER_REQUIRE_SERVERS").is_some_and(|value| value == "1");
        assert!(!required, "openssl is needed to make the test certificates");
        eprintln!("*** SKIPPED: openssl not found ***");
        return;
    }
    // A private authority and a certificate it signs for 127.0.0.1.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        path,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=emitter test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        path,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(path.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        path,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let file = |name: &str| path.join(name).to_str().unwrap().to_owned();
    assert_eq!(
        redis.command(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &file("server.pem"),
            "tls-key-file",
            &file("server.key"),
            "tls-ca-cert-file",
            &file("ca.pem"),
            "tls-auth-clients",
            "no"
        ]),
        "+OK\r\n"
    );
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_eq!(
        redis.command(&["CONFIG", "SET", "tls-port", &tls_port.to_string()]),
        "+OK\r\n"
    );
    let url = format!("rediss://127.0.0.1:{tls_port}/");

    let authority = Tls::CaFile(path.join("ca.pem"));
    let store = RedisConfig::new(&url)
        .tls(authority.clone())
        .connect()
        .await
        .unwrap();
    store.insert(&[emit(1, &["a"], now(), None)]).await.unwrap();
    assert_eq!(
        orders(&store.claim("w", &["a"], 10, LONG).await.unwrap()),
        [1]
    );
    // `Tls` over a `redis://` URL connects with TLS all the same.
    let upgraded = RedisConfig::new(format!("redis://127.0.0.1:{tls_port}/"))
        .tls(authority)
        .connect()
        .await
        .unwrap();
    assert_eq!(counts(&upgraded).await, (0, 1, 0));
    // A contradiction and a file that is no authority are refused before connecting.
    let error = RedisConfig::new(&url)
        .tls(Tls::Disable)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), BackendErrorKind::Misconfigured, "{error}");
    std::fs::write(path.join("garbage.pem"), "not a certificate").unwrap();
    let error = RedisConfig::new(&url)
        .tls(Tls::CaFile(path.join("garbage.pem")))
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
    assert_eq!(error.kind(), BackendErrorKind::Misconfigured);

    // Without the authority the certificate is not trusted; the failure is an error, not a panic.
    let error = RedisStore::connect(&url).await.unwrap_err();
    assert_eq!(error.kind(), BackendErrorKind::Misconfigured, "{error}");
    let error = error.to_string();
    assert!(
        error.contains(&format!(
            "TLS handshake with the Redis server at 127.0.0.1:{tls_port} failed"
        )),
        "{error}"
    );
    assert!(error.contains("Tls::CaFile"), "{error}");
    // A plain server does not answer a TLS handshake: the connection times out.
    let plain = redis.url().replace("redis://", "rediss://");
    let quick = RedisConfig::new(plain).connect_timeout(Duration::from_millis(300));
    assert!(quick.connect().await.is_err());
}

#[tokio::test]
async fn a_configured_key_retention_is_the_keys_time_to_live() {
    let Some(redis) = Redis::start() else { return };
    let store = RedisConfig::new(redis.url())
        .key_retention(Duration::from_secs(300))
        .connect()
        .await
        .unwrap();
    store
        .insert(&[emit(1, &["a"], now(), Some("k"))])
        .await
        .unwrap();
    let ttl = redis.command(&["PTTL", "emitter:key:k"]);
    let millis: u64 = ttl.trim_start_matches(':').trim_end().parse().unwrap();
    assert!((299_000..=300_000).contains(&millis), "{ttl}");
}

/// Keys written by version 1 of the store are version 4's too: opening them upgrades the
/// version in place, and the deliveries stored before (entries without a trace context, a
/// delayed member of eight fields) are claimed as they were.
#[tokio::test]
async fn keys_of_version_1_are_opened_and_their_deliveries_claimed() {
    let Some(redis) = Redis::start() else { return };
    redis.command(&["SET", "emitter:schema", "1"]);
    redis.command(&[
        "XGROUP",
        "CREATE",
        "emitter:listener:a",
        "a",
        "0",
        "MKSTREAM",
    ]);
    redis.command(&["SADD", "emitter:listeners", "a"]);
    let emit = format!("{:032x}", 7);
    redis.command(&[
        "XADD",
        "emitter:listener:a",
        "*",
        "event",
        "job",
        "emit",
        &emit,
        "at",
        "1",
        "payload",
        "{}",
        "attempts",
        "0",
    ]);
    let store = opened_for_a_and_b(&redis).await;
    assert_eq!(redis.command(&["GET", "emitter:schema"]), "$1\r\n4\r\n");
    let claimed = store.claim("w", &["a"], 10, LONG).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.emit_id, EmitId::from_u128(7));
    assert_eq!(claimed[0].event.trace, None);
    assert_eq!(claimed[0].event.version, 1, "stored before versions were");
}
