//! What a worker reports: a retry later, or a dead letter, to be listed, replayed or discarded.

use std::time::{Duration, SystemTime};

use super::{
    claim, counts, due, event, fresh, insert, ns, ok, receipts, Harness, A, LONG, MARGIN,
    RETENTION, SHORT,
};
use crate::durable::Store;

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
