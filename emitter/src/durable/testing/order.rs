//! Concurrency limits: a limited listener's deliveries in progress are its first ones in emit
//! order, at most its limit, across every handle of the store; with a limit of one, one at a
//! time in emit order, retries included.

use std::time::SystemTime;

use super::{
    claim, counts, emit, fresh, insert, ns, ok, opened, receipts, Harness, LONG, MARGIN, ONE,
    RETENTION, SHORT, TWO,
};
use crate::durable::Store;

/// Stores events `ns` for `listener`, due now, one insert each, so that their order is the
/// order of the inserts.
async fn in_order(store: &impl Store, listener: &'static str, ns: &[u64]) {
    for &n in ns {
        insert(store, &[emit(n, &[listener], SystemTime::now(), None)]).await;
    }
}

/// A listener limited to one delivery at a time gets the oldest, and nothing more from any
/// handle of the store until it is acknowledged; then the next, in emit order.
pub async fn one_at_a_time_means_in_emit_order_across_handles(harness: &impl Harness) {
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let other = opened(harness, &storage, RETENTION).await;
    in_order(&store, ONE, &[1, 2, 3, 4]).await;
    let mut order = Vec::new();
    for turn in 0..4 {
        let (mine, theirs) = if turn % 2 == 0 {
            (&store, &other)
        } else {
            (&other, &store)
        };
        let taken = claim(mine, "w1", &[ONE], 10, LONG).await;
        assert_eq!(taken.len(), 1, "one at a time: {:?}", ns(&taken));
        assert!(
            claim(theirs, "w2", &[ONE], 10, LONG).await.is_empty(),
            "the other handle gets nothing while one runs"
        );
        order.extend(ns(&taken));
        ok("ack", mine.ack(&receipts(&taken)).await);
    }
    assert_eq!(order, [1, 2, 3, 4], "emit order");
    assert_eq!(counts(&store).await, (0, 0, 0));
}

/// A delivery waiting for its retry holds back the deliveries of its listener behind it (the
/// limit is one): the retry runs first, then the others in order.
pub async fn a_retry_holds_back_the_deliveries_behind_it(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    in_order(&store, ONE, &[1, 2]).await;
    let first = claim(&store, "w", &[ONE], 10, LONG).await;
    assert_eq!((ns(&first), first[0].attempt), (vec![1], 1));
    let later = SystemTime::now() + SHORT;
    ok(
        "retry",
        store.retry(&first[0].receipt, later, "smtp down").await,
    );
    assert!(
        claim(&store, "w", &[ONE], 10, LONG).await.is_empty(),
        "nothing runs while the first waits for its retry"
    );
    assert_eq!(counts(&store).await, (2, 0, 0), "both wait");
    ok("ack", store.ack(&receipts(&first)).await);
    assert_eq!(
        counts(&store).await,
        (2, 0, 0),
        "the failed claim acts no more"
    );

    tokio::time::sleep(SHORT + MARGIN).await;
    let again = claim(&store, "w", &[ONE], 10, LONG).await;
    assert_eq!(
        (ns(&again), again[0].attempt),
        (vec![1], 2),
        "the retry first"
    );
    ok("ack", store.ack(&receipts(&again)).await);
    let next = claim(&store, "w", &[ONE], 10, LONG).await;
    assert_eq!((ns(&next), next[0].attempt), (vec![2], 1), "then the next");
}

/// A limit of two: two handles together never hold more than two of the listener's
/// deliveries, a retry holds its place, and the next in order comes when one is done.
pub async fn a_concurrency_limit_holds_across_handles(harness: &impl Harness) {
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let other = opened(harness, &storage, RETENTION).await;
    in_order(&store, TWO, &[1, 2, 3, 4, 5]).await;
    let first = claim(&store, "w1", &[TWO], 10, LONG).await;
    assert_eq!(ns(&first), [1, 2], "the first two in order");
    assert!(claim(&other, "w2", &[TWO], 10, LONG).await.is_empty());
    let later = SystemTime::now() + LONG;
    let (one, two) = if ns(&first[..1]) == [1] {
        (&first[0], &first[1])
    } else {
        (&first[1], &first[0])
    };
    ok("retry", store.retry(&one.receipt, later, "later").await);
    assert!(
        claim(&other, "w2", &[TWO], 10, LONG).await.is_empty(),
        "the delivery waiting for its retry keeps its place"
    );
    ok("ack", store.ack(std::slice::from_ref(&two.receipt)).await);
    let third = claim(&other, "w2", &[TWO], 10, LONG).await;
    assert_eq!(ns(&third), [3], "the next in order, one place free");
    assert!(claim(&store, "w1", &[TWO], 10, LONG).await.is_empty());
    assert_eq!(counts(&store).await, (3, 1, 0));
}

/// A limited listener's delivery whose lease ran out (its worker died) is claimed again before
/// anything after it.
pub async fn an_expired_lease_of_a_limited_listener_comes_first(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    in_order(&store, ONE, &[1, 2]).await;
    let first = claim(&store, "dead-worker", &[ONE], 10, SHORT).await;
    assert_eq!(ns(&first), [1]);
    assert!(claim(&store, "w", &[ONE], 10, SHORT).await.is_empty());
    tokio::time::sleep(SHORT + MARGIN).await;
    let again = claim(&store, "w", &[ONE], 10, SHORT).await;
    assert_eq!((ns(&again), again[0].attempt), (vec![1], 2));
}

/// A delayed delivery does not hold back a limited listener before it is due: it takes its
/// place in the order when it becomes due.
pub async fn a_delayed_delivery_takes_its_place_in_order_when_due(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let soon = SystemTime::now() + SHORT;
    insert(&store, &[emit(1, &[ONE], soon, None)]).await;
    in_order(&store, ONE, &[2]).await;
    let first = claim(&store, "w", &[ONE], 10, LONG).await;
    assert_eq!(ns(&first), [2], "the delayed one is not due");
    tokio::time::sleep(SHORT + MARGIN).await;
    assert!(
        claim(&store, "w", &[ONE], 10, LONG).await.is_empty(),
        "due now, behind the one running"
    );
    ok("ack", store.ack(&receipts(&first)).await);
    let second = claim(&store, "w", &[ONE], 10, LONG).await;
    assert_eq!(ns(&second), [1]);
}
