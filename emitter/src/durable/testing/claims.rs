//! Storing and claiming: one delivery per listener, due ones only, up to the limit, once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use super::{
    claim, counts, due, emit, event, fresh, insert, ns, ok, opened, receipts, Harness, A, B, C,
    LONG, RETENTION,
};
use crate::durable::{Inserted, Receipt, Store};

/// An emit to `A`, `B` and `A` again is stored as one delivery each for `A` and `B`; a claim
/// hands out the event as it was stored, as attempt 1, under a receipt of its own.
pub async fn insert_stores_one_delivery_per_distinct_listener(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let now = SystemTime::now();
    assert_eq!(
        insert(&store, &[emit(1, &[A, B, A], now, None)]).await,
        (1, 0)
    );
    assert_eq!(
        counts(&store).await,
        (2, 0, 0),
        "one delivery per distinct listener"
    );

    let for_a = claim(&store, "w1", &[A], 10, LONG).await;
    assert_eq!(for_a.len(), 1);
    assert_eq!(for_a[0].listener, A);
    assert_eq!(for_a[0].attempt, 1);
    assert_eq!(
        for_a[0].event,
        event(1),
        "the event comes back as it was stored"
    );
    assert!(
        claim(&store, "w2", &[A], 10, LONG).await.is_empty(),
        "claimed once"
    );
    assert_eq!(counts(&store).await, (1, 1, 0));

    let for_b = claim(&store, "w2", &[B, C], 10, LONG).await;
    assert_eq!(for_b.len(), 1);
    assert_eq!(
        (for_b[0].listener.as_str(), for_b[0].event.clone()),
        (B, event(1))
    );
    assert_ne!(
        for_b[0].receipt, for_a[0].receipt,
        "each delivery has its own receipt"
    );
    assert_eq!(counts(&store).await, (0, 2, 0));
}

/// A claim takes deliveries that are due, for the listeners it names only, at most `limit`,
/// those stored first first.
pub async fn claim_takes_due_deliveries_of_the_named_listeners_up_to_the_limit(
    harness: &impl Harness,
) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let later = SystemTime::now() + LONG;
    let emits = [due(1), due(2), due(3), due(4), due(5)];
    assert_eq!(insert(&store, &emits).await, (5, 0));
    insert(&store, &[emit(6, &[B], SystemTime::now(), None)]).await;
    insert(&store, &[emit(7, &[A], later, None)]).await;

    let first = claim(&store, "w", &[A], 3, LONG).await;
    assert_eq!(ns(&first), [1, 2, 3], "up to the limit, those stored first");
    let rest = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(ns(&rest), [4, 5], "the delivery due later is not claimed");
    assert!(claim(&store, "w", &[A], 10, LONG).await.is_empty());
    assert_eq!(
        counts(&store).await,
        (2, 5, 0),
        "due later and for `B`: waiting"
    );
    assert_eq!(ns(&claim(&store, "w", &[B], 10, LONG).await), [6]);
}

/// Claims that can take nothing, and inserts, acknowledgements and extensions of nothing,
/// succeed and change nothing.
pub async fn empty_calls_do_nothing(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    assert!(claim(&store, "w", &[], 10, LONG).await.is_empty());
    assert!(claim(&store, "w", &[A], 0, LONG).await.is_empty());
    assert!(
        claim(&store, "w", &[C], 10, LONG).await.is_empty(),
        "nothing for `C`"
    );
    let inserted = store.insert(&[]).await;
    assert_eq!(inserted.ok(), Some(Inserted::default()));
    ok("ack(&[])", store.ack(&[]).await);
    ok("extend(&[])", store.extend(&[], LONG).await);
    let letters = store.dead_letters(0).await.map(|letters| letters.len());
    assert_eq!(letters.ok(), Some(0));
    assert_eq!(counts(&store).await, (1, 0, 0));
}

/// An acknowledgement removes the deliveries of its receipts; receipts the store did not issue
/// (another id, another lease, text of no format it writes) remove nothing.
pub async fn ack_removes_deliveries_and_ignores_receipts_it_did_not_issue(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1), due(2), due(3), due(4)]).await;
    let claimed = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(claimed.len(), 4);
    let mut batch = receipts(&claimed[..2]);
    batch.extend([
        Receipt::new(&claimed[2].receipt.id, "not-its-lease"),
        Receipt::new("not-an-id", &claimed[3].receipt.lease),
        Receipt::new("", ""),
        claimed[0].receipt.clone(),
    ]);
    ok("ack", store.ack(&batch).await);
    assert_eq!(
        counts(&store).await,
        (0, 2, 0),
        "only the two issued receipts acted"
    );
    ok("ack", store.ack(&receipts(&claimed[2..])).await);
    assert_eq!(counts(&store).await, (0, 0, 0));
}

/// Claimers on two handles of one storage (two processes), claiming concurrently, never get the
/// same delivery: every one is claimed exactly once, as attempt 1.
pub async fn concurrent_claimers_take_each_delivery_exactly_once<H: Harness>(harness: &H)
where
    H::Store: 'static,
{
    let Some((storage, first)) = fresh(harness, RETENTION).await else {
        return;
    };
    let second = opened(harness, &storage, RETENTION).await;
    let all: Vec<_> = (0..400).map(due).collect();
    for batch in all.chunks(100) {
        assert_eq!(insert(&first, batch).await, (100, 0));
    }
    let handles = [Arc::new(first), Arc::new(second)];
    let mut claimers = Vec::new();
    for worker in 0..6 {
        let store = Arc::clone(&handles[worker % 2]);
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = claim(&*store, &format!("w{worker}"), &[A], 7, LONG).await;
                // Claimed more than there are: a delivery went out twice; stop and say so.
                if claimed.is_empty() || mine.len() > 400 {
                    return mine;
                }
                mine.extend(claimed);
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut all_receipts = Vec::new();
    for claimer in claimers {
        let claimed = claimer
            .await
            .unwrap_or_else(|error| panic!("a claimer failed: {error}"));
        for claim in claimed {
            assert_eq!(
                claim.attempt,
                1,
                "delivery {} was claimed twice",
                super::n_of(&claim)
            );
            assert!(seen.insert(super::n_of(&claim)), "claimed twice");
            all_receipts.push(claim.receipt);
        }
    }
    assert_eq!(seen.len(), 400, "every delivery was claimed");
    assert_eq!(counts(&*handles[0]).await, (0, 400, 0));
    ok("ack", handles[1].ack(&all_receipts).await);
    assert_eq!(counts(&*handles[0]).await, (0, 0, 0));
}

/// A delivery due later waits (and counts as waiting) until its time, then is claimed as its
/// first attempt; one due in the past is claimed at once.
pub async fn a_delayed_delivery_is_claimed_once_due(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let delay = super::SHORT;
    let now = SystemTime::now();
    let past = now - std::time::Duration::from_secs(5);
    insert(
        &store,
        &[emit(1, &[A], now + delay, None), emit(2, &[A], past, None)],
    )
    .await;
    assert_eq!(
        counts(&store).await,
        (2, 0, 0),
        "a delayed delivery is waiting"
    );
    assert_eq!(ns(&claim(&store, "w", &[A], 10, LONG).await), [2]);
    assert!(
        claim(&store, "w", &[A], 10, LONG).await.is_empty(),
        "not due yet"
    );
    tokio::time::sleep(delay + super::MARGIN).await;
    let claimed = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(ns(&claimed), [1]);
    assert_eq!(claimed[0].attempt, 1);
}
