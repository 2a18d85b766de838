//! The operator's actions ([`Admin`]): cancelling, replaying and discarding in bulk, pausing a
//! listener across handles, the workers' heartbeats, and orphaned listeners.

use std::time::{Duration, SystemTime};

use super::listing::{find, list, listed_ns};
use super::{
    claim, due, emit, event, fresh, insert, ns, ok, opened, receipts, Harness, A, B, C, LONG,
    MARGIN, ONE, RETENTION, SHORT,
};
use crate::durable::admin::{Admin, Cancel, DeliveryState, Filter, Heartbeat, ListenerActivity};
use crate::durable::Store;

/// A listener no handle was opened with and no worker runs.
const GONE: &str = "contract.gone";

/// Dead letters in the bulk case: more than a store handles in one step.
const MANY: u64 = 300;

fn failed<T>(call: &str) -> impl FnOnce(crate::BackendError) -> T + '_ {
    move |error| panic!("{call} failed: {error}")
}

/// A waiting or scheduled delivery is cancelled (deleted); a running one and a dead letter are
/// not, and say so; an id of nothing is not found.
pub async fn cancel_deletes_waiting_and_scheduled_deliveries_only<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    insert(&store, &[emit(2, &[A], SystemTime::now() + LONG, None)]).await;
    insert(&store, &[due(3)]).await;
    let running = claim(&store, "w", &[A], 1, LONG).await;
    assert_eq!(ns(&running), [1]);
    let waiting = find(&store, DeliveryState::Waiting, A, 3).await;
    let scheduled = find(&store, DeliveryState::Scheduled, A, 2).await;
    let cancel = |id: String| {
        let store = &store;
        async move { store.cancel(&id).await.unwrap_or_else(failed("cancel")) }
    };
    assert_eq!(cancel(waiting.id.clone()).await, Cancel::Cancelled);
    assert_eq!(cancel(scheduled.id.clone()).await, Cancel::Cancelled);
    assert_eq!(
        cancel(running[0].receipt.id.clone()).await,
        Cancel::Running,
        "a worker holds it"
    );
    assert_eq!(
        cancel(waiting.id).await,
        Cancel::NotFound,
        "cancelled already"
    );
    assert_eq!(cancel("nope".to_owned()).await, Cancel::NotFound);
    let counts = store
        .listener_counts()
        .await
        .unwrap_or_else(failed("listener_counts"));
    assert_eq!(
        (counts[0].waiting, counts[0].scheduled, counts[0].running),
        (0, 0, 1)
    );

    ok(
        "dead_letter",
        store.dead_letter(&running[0].receipt, "dead").await,
    );
    let dead = find(&store, DeliveryState::Dead, A, 1).await;
    assert_eq!(
        cancel(dead.id).await,
        Cancel::Dead,
        "discard a dead letter instead"
    );
    assert!(
        claim(&store, "w", &[A], 10, LONG).await.is_empty(),
        "nothing left to run"
    );
}

/// Dead letters that match a filter are replayed (due now, attempts from zero) or discarded in
/// one call, however many; those it does not match stay.
pub async fn dead_letters_are_replayed_and_discarded_by_filter<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let started = SystemTime::now() - Duration::from_secs(1);
    let emits: Vec<_> = (1..=MANY).map(due).collect();
    insert(&store, &emits).await;
    insert(&store, &[emit(MANY + 1, &[B], SystemTime::now(), None)]).await;
    let taken = claim(&store, "w", &[A, B], 1000, LONG).await;
    assert_eq!(taken.len() as u64, MANY + 1);
    for claimed in &taken {
        ok(
            "dead_letter",
            store.dead_letter(&claimed.receipt, "failed").await,
        );
    }
    let replay = |filter: Filter| {
        let store = &store;
        async move {
            store
                .replay_matching(&filter)
                .await
                .unwrap_or_else(failed("replay_matching"))
        }
    };
    let hour = Duration::from_secs(3600);
    assert_eq!(
        replay(Filter::new().after(SystemTime::now() + hour)).await,
        0
    );
    assert_eq!(
        replay(Filter::new().listener(A).emit_id(event(1).emit_id)).await,
        1,
        "one emit's dead letter"
    );
    let again = claim(&store, "w", &[A, B], 10, LONG).await;
    assert_eq!(
        (ns(&again), again[0].attempt),
        (vec![1], 1),
        "attempts from zero"
    );
    ok("ack", store.ack(&receipts(&again)).await);

    assert_eq!(
        replay(Filter::new().listener(A).after(started)).await,
        MANY - 1,
        "every dead letter of A, in as many steps as it takes"
    );
    let back = list(&store, DeliveryState::Waiting, Filter::new(), 1000).await;
    assert_eq!(listed_ns(&back), (2..=MANY).collect::<Vec<_>>());
    assert_eq!(
        list(&store, DeliveryState::Dead, Filter::new(), 10)
            .await
            .len(),
        1
    );

    let discard = |filter: Filter| {
        let store = &store;
        async move {
            store
                .discard_matching(&filter)
                .await
                .unwrap_or_else(failed("discard_matching"))
        }
    };
    assert_eq!(discard(Filter::new().event_id("contract.other")).await, 0);
    assert_eq!(discard(Filter::new()).await, 1, "everything left: B's");
    assert!(store
        .dead_letters(10)
        .await
        .unwrap_or_else(failed("dead_letters"))
        .is_empty());
}

/// Once `pause` returns, no handle of the store claims the listener's deliveries (due now, or
/// delayed and coming due, or in a limited listener's order), while its emits are stored and
/// the other listeners run; `resume` lets any handle claim them again.
pub async fn a_paused_listener_is_claimed_by_no_handle_until_resumed<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let other = opened(harness, &storage, RETENTION).await;
    let before = SystemTime::now() - Duration::from_secs(1);
    assert!(store.pause(A).await.unwrap_or_else(failed("pause")));
    assert!(
        !store.pause(A).await.unwrap_or_else(failed("pause")),
        "paused already"
    );
    assert!(other.pause(ONE).await.unwrap_or_else(failed("pause")));
    let paused = other.paused().await.unwrap_or_else(failed("paused"));
    let names: Vec<&str> = paused.iter().map(|pause| pause.listener.as_str()).collect();
    assert_eq!(names, [A, ONE], "seen by every handle");
    assert!(paused[0].since >= before && paused[0].since <= SystemTime::now());

    let now = SystemTime::now();
    insert(
        &other,
        &[
            due(1),
            emit(2, &[B], now, None),
            emit(3, &[A], now + SHORT, None),
            emit(4, &[ONE], now, None),
        ],
    )
    .await;
    let counts = other
        .listener_counts()
        .await
        .unwrap_or_else(failed("listener_counts"));
    assert_eq!(
        (
            counts[0].listener.as_str(),
            counts[0].waiting,
            counts[0].scheduled
        ),
        (A, 1, 1),
        "stored while paused"
    );
    let taken = claim(&other, "w2", &[A, B, ONE], 10, LONG).await;
    assert_eq!(ns(&taken), [2], "only the listener that is not paused");
    tokio::time::sleep(SHORT + MARGIN).await;
    assert!(
        claim(&store, "w1", &[A, ONE], 10, LONG).await.is_empty(),
        "a delayed delivery that came due waits too"
    );

    assert!(other.resume(A).await.unwrap_or_else(failed("resume")));
    assert!(
        !other.resume(A).await.unwrap_or_else(failed("resume")),
        "resumed already"
    );
    let resumed = claim(&store, "w1", &[A, ONE], 10, LONG).await;
    assert_eq!(ns(&resumed), [1, 3], "every handle claims it again");
    assert!(store.resume(ONE).await.unwrap_or_else(failed("resume")));
    assert_eq!(ns(&claim(&store, "w1", &[A, ONE], 10, LONG).await), [4]);
    assert!(store
        .paused()
        .await
        .unwrap_or_else(failed("paused"))
        .is_empty());
}

/// Heartbeats say which workers run (until their time-to-live passes, at once for a time to live
/// of zero: a worker that stopped) and which listeners each runs, and add up what the listeners
/// did per minute, across workers.
pub async fn heartbeats_tell_which_workers_run_and_what_they_did<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let other = opened(harness, &storage, RETENTION).await;
    let activity = |listener: &str, delivered, failed, retried| ListenerActivity {
        listener: listener.to_owned(),
        delivered,
        failed,
        retried,
    };
    let before = SystemTime::now() - Duration::from_secs(1);
    let beat = |worker: &str, listeners, ttl| Heartbeat::new(worker, listeners, ttl);
    ok(
        "heartbeat",
        store
            .heartbeat(&beat(
                "w1",
                vec![activity(A, 3, 1, 2), ListenerActivity::new(B)],
                LONG,
            ))
            .await,
    );
    ok(
        "heartbeat",
        other
            .heartbeat(&beat("w2", vec![activity(A, 2, 0, 0)], SHORT))
            .await,
    );
    let workers = store.workers().await.unwrap_or_else(failed("workers"));
    let seen: Vec<(&str, Vec<&str>)> = workers
        .iter()
        .map(|worker| {
            (
                worker.worker.as_str(),
                worker.listeners.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(seen, [("w1", vec![A, B]), ("w2", vec![A])]);
    let now = SystemTime::now();
    for worker in &workers {
        assert!(
            worker.seen_at >= before && worker.seen_at <= now,
            "{worker:?}"
        );
        assert!(worker.expires_at > now, "{worker:?}");
    }

    let minutes = other
        .activity(now - Duration::from_secs(120))
        .await
        .unwrap_or_else(failed("activity"));
    let sum = |listener: &str| {
        minutes
            .iter()
            .filter(|minute| minute.listener == listener)
            .fold((0, 0, 0), |(d, f, r), minute| {
                (d + minute.delivered, f + minute.failed, r + minute.retried)
            })
    };
    assert_eq!(sum(A), (5, 1, 2), "both workers' reports, added up");
    assert_eq!(sum(B), (0, 0, 0));
    assert!(
        other
            .activity(now + Duration::from_secs(3600))
            .await
            .unwrap_or_else(failed("activity"))
            .is_empty(),
        "nothing from a minute not yet come"
    );
    let overview = store.overview().await.unwrap_or_else(failed("overview"));
    let of_a = overview
        .listeners
        .iter()
        .find(|listener| listener.listener() == A)
        .unwrap_or_else(|| panic!("A is in the overview: workers run it"));
    assert_eq!(of_a.workers, 2);
    assert_eq!(
        of_a.activity
            .iter()
            .map(|minute| minute.delivered)
            .sum::<u64>(),
        5
    );
    assert_eq!(overview.orphans().count(), 0);

    tokio::time::sleep(SHORT + MARGIN).await;
    let workers = store.workers().await.unwrap_or_else(failed("workers"));
    let ids: Vec<&str> = workers
        .iter()
        .map(|worker| worker.worker.as_str())
        .collect();
    assert_eq!(ids, ["w1"], "w2 missed its heartbeat");
    ok(
        "heartbeat",
        store
            .heartbeat(&beat("w1", vec![activity(A, 0, 0, 0)], LONG))
            .await,
    );
    let workers = store.workers().await.unwrap_or_else(failed("workers"));
    assert_eq!(
        workers[0].listeners,
        [A],
        "the last heartbeat says which listeners"
    );

    ok(
        "heartbeat",
        other
            .heartbeat(&beat("w1", vec![activity(A, 1, 0, 0)], Duration::ZERO))
            .await,
    );
    assert!(
        store
            .workers()
            .await
            .unwrap_or_else(failed("workers"))
            .is_empty(),
        "a heartbeat with no time to live says the worker stopped"
    );
    let minutes = store
        .activity(before)
        .await
        .unwrap_or_else(failed("activity"));
    let delivered: u64 = minutes
        .iter()
        .filter(|minute| minute.listener == A)
        .map(|minute| minute.delivered)
        .sum();
    assert_eq!(delivered, 6, "what a stopping worker did still counts");
}

/// A listener with deliveries stored that no running worker runs is an orphan; its deliveries
/// that are not running (and its dead letters) are given to another listener, or discarded.
pub async fn orphans_are_rehomed_or_discarded<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    ok(
        "heartbeat",
        store
            .heartbeat(&Heartbeat::new("w1", vec![ListenerActivity::new(A)], LONG))
            .await,
    );
    let now = SystemTime::now();
    insert(&store, &[emit(1, &[A], now - Duration::from_secs(1), None)]).await;
    insert(
        &store,
        &[emit(2, &[C], now, None), emit(3, &[C], now, None)],
    )
    .await;
    insert(
        &store,
        &[emit(4, &[GONE], now, None), emit(5, &[GONE], now, None)],
    )
    .await;
    let gone = claim(&store, "w1", &[GONE], 1, LONG).await;
    ok(
        "dead_letter",
        store.dead_letter(&gone[0].receipt, "gone").await,
    );
    let running = claim(&store, "w1", &[C], 1, LONG).await;
    assert_eq!(ns(&running), [2]);

    let overview = store.overview().await.unwrap_or_else(failed("overview"));
    let orphans: Vec<&str> = overview.orphans().map(|orphan| orphan.listener()).collect();
    assert_eq!(
        orphans,
        [C, GONE],
        "listeners with deliveries that no worker runs"
    );

    let rehome = |from: &'static str, to: &'static str| {
        let store = &store;
        async move {
            store
                .rehome(from, to)
                .await
                .unwrap_or_else(failed("rehome"))
        }
    };
    assert_eq!(
        rehome(C, A).await,
        1,
        "the waiting one; the running one stays"
    );
    let waiting = list(
        &store,
        DeliveryState::Waiting,
        Filter::new().listener(A),
        10,
    )
    .await;
    assert_eq!(listed_ns(&waiting), [1, 3], "in its place in emit order");
    let discard = |listener: &'static str| {
        let store = &store;
        async move {
            store
                .discard_listener(listener)
                .await
                .unwrap_or_else(failed("discard_listener"))
        }
    };
    assert_eq!(
        discard(GONE).await,
        2,
        "its waiting delivery and its dead letter"
    );
    assert_eq!(discard(C).await, 0, "a running delivery is not discarded");

    ok(
        "dead_letter",
        store.dead_letter(&running[0].receipt, "renamed").await,
    );
    assert_eq!(rehome(C, B).await, 1, "a dead letter is rehomed too");
    let dead = find(&store, DeliveryState::Dead, B, 2).await;
    assert!(store
        .replay(&dead.id)
        .await
        .unwrap_or_else(failed("replay")));
    assert_eq!(ns(&claim(&store, "w1", &[B], 10, LONG).await), [2]);
    let counts = store
        .listener_counts()
        .await
        .unwrap_or_else(failed("listener_counts"));
    let names: Vec<&str> = counts.iter().map(|count| count.listener.as_str()).collect();
    assert_eq!(names, [A, B], "nothing left of the orphans");
}
