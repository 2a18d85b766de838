//! What a worker reports: a retry later, or a dead letter, to be listed, replayed or discarded.

use std::time::{Duration, SystemTime};

use super::{
    claim, counts, due, event, fresh, insert, ns, ok, receipts, Harness, A, LONG, MARGIN,
    RETENTION, SHORT,
};
use crate::durable::{NewEmit, Store};

/// A retry releases the delivery (no longer leased) until its time, keeps its attempts, and
/// ends the claim: its receipt acknowledges nothing any more. A time in the past is due now.
pub async fn retry_releases_the_delivery_until_its_time_keeping_its_attempts(
    harness: &impl Harness,
) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    let first = claim(&store, "w", &[A], 10, LONG).await;
    let later = SystemTime::now() + SHORT;
    ok(
        "retry",
        store.retry(&first[0].receipt, later, "smtp down").await,
    );
    assert_eq!(counts(&store).await, (1, 0, 0), "released, waiting");
    assert!(
        claim(&store, "w", &[A], 10, LONG).await.is_empty(),
        "not due yet"
    );
    ok("ack", store.ack(&receipts(&first)).await);
    assert_eq!(
        counts(&store).await,
        (1, 0, 0),
        "the released receipt acts no more"
    );

    tokio::time::sleep(SHORT + MARGIN).await;
    let second = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!((ns(&second), second[0].attempt), (vec![1], 2));
    assert_eq!(second[0].event, event(1));
    let past = SystemTime::now() - Duration::from_secs(5);
    ok(
        "retry",
        store.retry(&second[0].receipt, past, "again").await,
    );
    let third = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(
        (ns(&third), third[0].attempt),
        (vec![1], 3),
        "a past time is due now"
    );
    ok("ack", store.ack(&receipts(&third)).await);
    assert_eq!(counts(&store).await, (0, 0, 0));
}

/// A postponed delivery (its event is of a version newer than the worker's) is released until
/// its time like a retry, but its claim does not count as an attempt: the next claim has the
/// attempt number the postponed one had. The postponed receipt acts no more, and a time in the
/// past is due now. The event comes back whole, its version with it.
pub async fn postpone_gives_the_delivery_back_until_its_time_without_an_attempt(
    harness: &impl Harness,
) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    // Event 2 is of version 3.
    insert(&store, &[due(2)]).await;
    let first = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!((ns(&first), first[0].attempt), (vec![2], 1));
    let later = SystemTime::now() + SHORT;
    let note = "version 3 of event `contract.event` is newer than this worker's 2";
    ok(
        "postpone",
        store.postpone(&first[0].receipt, later, note).await,
    );
    assert_eq!(counts(&store).await, (1, 0, 0), "given back, waiting");
    assert!(
        claim(&store, "w", &[A], 10, LONG).await.is_empty(),
        "not due yet"
    );
    ok("ack", store.ack(&receipts(&first)).await);
    assert_eq!(
        counts(&store).await,
        (1, 0, 0),
        "the postponed receipt acts no more"
    );

    tokio::time::sleep(SHORT + MARGIN).await;
    let second = claim(&store, "w2", &[A], 10, LONG).await;
    assert_eq!(
        (ns(&second), second[0].attempt, second[0].crashes),
        (vec![2], 1, 0),
        "the postponed claim was not an attempt"
    );
    assert_eq!(second[0].event, event(2), "the event and its version kept");
    let past = SystemTime::now() - Duration::from_secs(5);
    ok(
        "postpone",
        store.postpone(&second[0].receipt, past, note).await,
    );
    let third = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(
        (ns(&third), third[0].attempt),
        (vec![2], 1),
        "a past time is due now, still the first attempt"
    );
    ok(
        "retry",
        store.retry(&third[0].receipt, past, "failed").await,
    );
    let fourth = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(
        (ns(&fourth), fourth[0].attempt),
        (vec![2], 2),
        "a retry after it counts as before"
    );
    ok("ack", store.ack(&receipts(&fourth)).await);
    assert_eq!(counts(&store).await, (0, 0, 0));
}

/// Dead letters keep the listener, the event, the attempts and the reason, oldest first; a
/// replay sends one back, due now, with its attempts from zero; a discard deletes it. Ids no
/// dead letter has replay and discard nothing.
pub async fn dead_letters_keep_the_event_and_are_replayed_or_discarded(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1), due(2)]).await;
    let mut claimed = claim(&store, "w", &[A], 10, LONG).await;
    claimed.sort_by_key(super::n_of);
    let before = SystemTime::now() - Duration::from_secs(5);
    ok(
        "dead_letter",
        store.dead_letter(&claimed[0].receipt, "gave up").await,
    );
    ok(
        "dead_letter",
        store.dead_letter(&claimed[1].receipt, "bad payload").await,
    );
    assert_eq!(counts(&store).await, (0, 0, 2));

    let letters = store
        .dead_letters(10)
        .await
        .unwrap_or_else(|error| panic!("dead_letters failed: {error}"));
    let reasons: Vec<&str> = letters
        .iter()
        .map(|letter| letter.reason.as_str())
        .collect();
    assert_eq!(reasons, ["gave up", "bad payload"], "oldest first");
    let first = &letters[0];
    assert_eq!((first.listener.as_str(), first.attempts), (A, 1));
    assert_eq!(first.event, event(1));
    let now = SystemTime::now() + Duration::from_secs(5);
    assert!(
        first.failed_at > before && first.failed_at < now,
        "failed_at is about now"
    );
    let one = store.dead_letters(1).await.map(|letters| letters.len());
    assert_eq!(one.ok(), Some(1), "up to the limit");

    assert_eq!(store.replay(&first.id).await.ok(), Some(true));
    assert_eq!(
        store.replay(&first.id).await.ok(),
        Some(false),
        "replayed once"
    );
    assert_eq!(counts(&store).await, (1, 0, 1));
    let replayed = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(
        (ns(&replayed), replayed[0].attempt),
        (vec![1], 1),
        "attempts from zero"
    );
    assert_eq!(replayed[0].event, event(1));

    assert_eq!(store.discard(&letters[1].id).await.ok(), Some(true));
    assert_eq!(store.discard(&letters[1].id).await.ok(), Some(false));
    for nonsense in ["", "nonsense", "-1", "99999999999", "1-2-3", "99999-0"] {
        assert_eq!(
            store.replay(nonsense).await.ok(),
            Some(false),
            "{nonsense:?}"
        );
        assert_eq!(
            store.discard(nonsense).await.ok(),
            Some(false),
            "{nonsense:?}"
        );
    }
    assert_eq!(counts(&store).await, (0, 1, 0));
}

/// A dead letter's attempts count every claim, those that ended in a retry included.
pub async fn a_dead_letter_counts_every_claim(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    let first = claim(&store, "w", &[A], 1, LONG).await;
    ok(
        "retry",
        store
            .retry(&first[0].receipt, SystemTime::now(), "first")
            .await,
    );
    let second = claim(&store, "w", &[A], 1, LONG).await;
    ok(
        "dead_letter",
        store.dead_letter(&second[0].receipt, "second").await,
    );
    let letters = store
        .dead_letters(10)
        .await
        .unwrap_or_else(|error| panic!("dead_letters failed: {error}"));
    assert_eq!(
        (letters[0].attempts, letters[0].reason.as_str()),
        (2, "second")
    );
}

/// `wait_for_work` is only a wake-up: with nothing to wake it, it returns by its timeout.
pub async fn wait_for_work_returns_by_its_timeout(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        store.wait_for_work(Duration::from_millis(100)),
    )
    .await;
    assert!(
        waited.is_ok(),
        "wait_for_work(100 ms) did not return within 30 s"
    );
}

/// An event of emit `emit_id` for `listeners`, due at `run_at`.
fn emit_of(emit_id: u128, listeners: &[&'static str], run_at: SystemTime) -> NewEmit {
    let mut event = event(1);
    event.emit_id = crate::emit_id::EmitId::from_u128(emit_id);
    NewEmit::new(event, listeners.to_vec(), run_at, None)
}

async fn unfinished(
    store: &impl Store,
    emits: std::ops::RangeInclusive<crate::emit_id::EmitId>,
) -> u64 {
    store
        .unfinished(emits)
        .await
        .unwrap_or_else(|error| panic!("unfinished failed: {error}"))
}

/// `unfinished` counts the unfinished deliveries (waiting, delayed, leased, waiting for a
/// retry; not dead, not acknowledged) of the emits whose ids are in the range, and no other.
pub async fn unfinished_counts_the_deliveries_of_a_range_of_emits(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let lane = |n: u128| (0xabcd_u128 << 64) | n;
    let range =
        crate::emit_id::EmitId::from_u128(lane(1))..=crate::emit_id::EmitId::from_u128(lane(4));
    let count = |store| unfinished(store, range.clone());
    assert_eq!(count(&store).await, 0, "nothing stored");
    let now = SystemTime::now();
    insert(
        &store,
        &[
            emit_of(lane(1), &[A, super::B], now),
            emit_of(lane(2), &[A], now),
            emit_of(lane(4), &[A], now + LONG),
            // Outside the range: before it, after it, in another emitter's lane.
            emit_of(lane(0), &[A], now),
            emit_of(lane(5), &[A], now),
            emit_of((0xabce_u128 << 64) | 2, &[A], now),
        ],
    )
    .await;
    assert_eq!(
        count(&store).await,
        4,
        "four deliveries of three emits in the range"
    );
    let for_b = claim(&store, "w", &[super::B], 10, LONG).await;
    assert_eq!(count(&store).await, 4, "leased counts");
    ok("ack", store.ack(&receipts(&for_b)).await);
    assert_eq!(count(&store).await, 3, "acknowledged does not");
    let mut for_a = claim(&store, "w", &[A], 10, LONG).await;
    for_a.retain(|claimed| {
        claimed.event.emit_id.as_u128() == lane(1) || claimed.event.emit_id.as_u128() == lane(2)
    });
    for_a.sort_by_key(|claimed| claimed.event.emit_id);
    assert_eq!(for_a.len(), 2);
    ok(
        "retry",
        store.retry(&for_a[0].receipt, now + LONG, "later").await,
    );
    assert_eq!(count(&store).await, 3, "waiting for a retry counts");
    ok(
        "dead_letter",
        store.dead_letter(&for_a[1].receipt, "no").await,
    );
    assert_eq!(count(&store).await, 2, "dead does not");
}

/// The trace context stored with an event comes back with every claim of it, through a delay,
/// a retry and a dead letter and its replay.
pub async fn the_trace_context_travels_with_the_event(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = |n: u64, run_at: SystemTime| {
        NewEmit::new(
            event(n).with_trace(Some(traceparent.to_owned())),
            vec![A],
            run_at,
            None,
        )
    };
    let now = SystemTime::now();
    insert(&store, &[traced(1, now), traced(2, now + SHORT)]).await;
    let first = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(ns(&first), [1]);
    assert_eq!(first[0].event.trace.as_deref(), Some(traceparent));
    assert_eq!(
        first[0].event,
        event(1).with_trace(Some(traceparent.to_owned()))
    );
    ok("retry", store.retry(&first[0].receipt, now, "again").await);
    tokio::time::sleep(SHORT + MARGIN).await;
    let again = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(ns(&again), [1, 2], "retried and delayed");
    for claimed in &again {
        assert_eq!(claimed.event.trace.as_deref(), Some(traceparent));
        ok(
            "dead_letter",
            store.dead_letter(&claimed.receipt, "failed").await,
        );
    }
    let letters = store
        .dead_letters(10)
        .await
        .unwrap_or_else(|error| panic!("dead_letters failed: {error}"));
    assert_eq!(letters.len(), 2);
    for letter in &letters {
        assert_eq!(letter.event.trace.as_deref(), Some(traceparent));
    }
    let replayed = store
        .replay(&letters[0].id)
        .await
        .unwrap_or_else(|error| panic!("replay failed: {error}"));
    assert!(replayed);
    let back = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].event.trace.as_deref(), Some(traceparent));
}
