//! Leases: a claim holds its deliveries until its lease runs out, unless extended; a receipt
//! acts only while its claim is the last one.

use std::time::{Duration, SystemTime};

use super::{
    claim, counts, due, fresh, insert, ns, ok, receipts, Harness, A, LONG, MARGIN, RETENTION, SHORT,
};
use crate::durable::Store;

/// A claim whose lease runs out (its worker died, say) lets the delivery be claimed again, as
/// the next attempt, under a new receipt; while the lease runs, nobody else gets it.
pub async fn an_expired_lease_is_claimed_again_as_the_next_attempt(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    let first = claim(&store, "dead-worker", &[A], 10, SHORT).await;
    assert_eq!((ns(&first), first[0].attempt), (vec![1], 1));
    assert!(
        claim(&store, "w2", &[A], 10, SHORT).await.is_empty(),
        "the lease holds"
    );
    assert_eq!(counts(&store).await, (0, 1, 0));

    tokio::time::sleep(SHORT + MARGIN).await;
    assert_eq!(
        counts(&store).await,
        (1, 0, 0),
        "an expired lease counts as waiting"
    );
    // The same lease as the first claimer's: workers sharing a store use one lease, and a store
    // may measure expiry by the claimer's (Redis does).
    let second = claim(&store, "w2", &[A], 10, SHORT).await;
    assert_eq!((ns(&second), second[0].attempt), (vec![1], 2));
    assert_ne!(
        second[0].receipt, first[0].receipt,
        "a new claim, a new receipt"
    );
}

/// A worker whose lease ran out and whose delivery someone else claimed can no longer
/// acknowledge, retry, dead-letter or extend it: the new claim stands.
pub async fn a_stale_receipt_changes_nothing(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    let stale = receipts(&claim(&store, "w1", &[A], 1, SHORT).await);
    tokio::time::sleep(SHORT + MARGIN).await;
    let fresh_claim = claim(&store, "w2", &[A], 1, SHORT).await;
    assert_eq!((ns(&fresh_claim), fresh_claim[0].attempt), (vec![1], 2));

    ok("ack", store.ack(&stale).await);
    let later = SystemTime::now() + LONG;
    ok("retry", store.retry(&stale[0], later, "late").await);
    ok("dead_letter", store.dead_letter(&stale[0], "late").await);
    ok("extend", store.extend(&stale, LONG).await);
    // Whether the new lease ran out meanwhile depends on this machine's speed; that the delivery
    // is there once, not dead, and that the new receipt still finishes it, does not.
    let (waiting, leased, dead) = counts(&store).await;
    assert_eq!((waiting + leased, dead), (1, 0), "the stale receipt acted");
    ok("ack", store.ack(&receipts(&fresh_claim)).await);
    assert_eq!(counts(&store).await, (0, 0, 0), "the new claim stood");
}

/// A receipt whose lease ran out while nobody claimed the delivery again still acknowledges
/// it: a slow listener that finished is not run twice for nothing.
pub async fn a_receipt_whose_lease_ran_out_unclaimed_still_acknowledges(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1), due(2)]).await;
    let claimed = claim(&store, "w", &[A], 10, SHORT).await;
    tokio::time::sleep(SHORT + MARGIN).await;
    ok("ack", store.ack(&receipts(&claimed[..1])).await);
    assert_eq!(
        counts(&store).await,
        (1, 0, 0),
        "the other one waits to be claimed again"
    );
}

/// Extending a claim keeps it: a claimer with the same lease does not get the delivery while
/// the extensions go on, and gets the one that was not extended.
pub async fn extend_keeps_a_claim_past_its_first_lease(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let lease = Duration::from_secs(1);
    insert(&store, &[due(1), due(2)]).await;
    let mut claimed = claim(&store, "w1", &[A], 10, lease).await;
    claimed.sort_by_key(super::n_of);
    let kept = receipts(&claimed[..1]);
    // Extended every 0.4 leases for 1.5 leases: a stall of up to 0.6 of a lease cannot upset it.
    for _ in 0..3 {
        tokio::time::sleep(lease * 2 / 5).await;
        ok("extend", store.extend(&kept, lease).await);
    }
    tokio::time::sleep(lease * 3 / 10).await;
    let taken = claim(&store, "w2", &[A], 10, lease).await;
    assert_eq!(ns(&taken), [2], "only the delivery that was not extended");
    assert_eq!(taken[0].attempt, 2);
    ok("ack", store.ack(&kept).await);
    assert_eq!(
        counts(&store).await,
        (0, 1, 0),
        "the extended receipt still acknowledges"
    );
}

/// Released deliveries (their worker shut down and cancelled them) are claimable at once, by
/// any handle, as the same attempt; the released receipt acts no more. A limited listener's
/// released delivery keeps its place.
pub async fn released_deliveries_are_claimable_at_once_as_the_same_attempt(harness: &impl Harness) {
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let other = super::opened(harness, &storage, RETENTION).await;
    insert(&store, &[due(1), due(2)]).await;
    let mut held = claim(&store, "w1", &[A], 10, LONG).await;
    held.sort_by_key(super::n_of);
    assert_eq!(ns(&held), [1, 2]);
    ok("release", store.release(&receipts(&held[..1])).await);
    assert_eq!(counts(&store).await, (1, 1, 0), "released: waiting");
    let taken = claim(&other, "w2", &[A], 10, LONG).await;
    assert_eq!(
        (ns(&taken), taken[0].attempt),
        (vec![1], 1),
        "at once, as the same attempt"
    );
    ok("release", store.release(&receipts(&held[..1])).await);
    ok("ack", store.ack(&receipts(&held[..1])).await);
    assert_eq!(
        counts(&store).await,
        (0, 2, 0),
        "the released receipt acts no more"
    );

    super::insert(
        &store,
        &[super::emit(3, &[super::ONE], SystemTime::now(), None)],
    )
    .await;
    super::insert(
        &store,
        &[super::emit(4, &[super::ONE], SystemTime::now(), None)],
    )
    .await;
    let first = claim(&store, "w1", &[super::ONE], 10, LONG).await;
    assert_eq!(ns(&first), [3]);
    ok("release", store.release(&receipts(&first)).await);
    let again = claim(&other, "w2", &[super::ONE], 10, LONG).await;
    assert_eq!(
        (ns(&again), again[0].attempt),
        (vec![3], 1),
        "a limited listener's released delivery keeps its place"
    );
}
