//! Suspects: a delivery whose claim ended without an outcome (its worker died, or lost its
//! lease) may be what kills its workers, so it is counted and claimed alone.

use std::time::SystemTime;

use super::{
    claim, counts, due, emit, fresh, insert, ns, ok, receipts, Harness, A, B, MARGIN, RETENTION,
    SHORT, TWO,
};
use crate::durable::{Claimed, Store};

/// (the `n`, the attempt, the crashes) of each claim, sorted.
fn seen(claims: &[Claimed]) -> Vec<(u64, u32, u32)> {
    let mut seen: Vec<(u64, u32, u32)> = claims
        .iter()
        .map(|claimed| (super::n_of(claimed), claimed.attempt, claimed.crashes))
        .collect();
    seen.sort_unstable();
    seen
}

/// Each claim whose lease ran out counts as a crash of the delivery, until an attempt fails
/// (a retry: the attempt had an outcome). A released claim neither counts nor ends the count.
pub async fn a_claim_counts_the_crashes_since_the_last_failed_attempt(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[due(1)]).await;
    let first = claim(&store, "dead-worker", &[A], 10, SHORT).await;
    assert_eq!(seen(&first), [(1, 1, 0)], "a first claim: no crash");
    tokio::time::sleep(SHORT + MARGIN).await;
    let second = claim(&store, "dead-worker", &[A], 10, SHORT).await;
    assert_eq!(
        seen(&second),
        [(1, 2, 1)],
        "the first claim's lease ran out"
    );
    tokio::time::sleep(SHORT + MARGIN).await;
    // The same lease as before: a store may measure expiry by the claimer's (Redis does).
    let third = claim(&store, "w", &[A], 10, SHORT).await;
    assert_eq!(seen(&third), [(1, 3, 2)], "and the second's");

    ok("release", store.release(&receipts(&third)).await);
    let fourth = claim(&store, "w", &[A], 10, SHORT).await;
    assert_eq!(
        seen(&fourth),
        [(1, 3, 2)],
        "a released claim neither counts nor ends the count"
    );

    ok(
        "retry",
        store
            .retry(&fourth[0].receipt, SystemTime::now(), "failed")
            .await,
    );
    let fifth = claim(&store, "w", &[A], 10, SHORT).await;
    assert_eq!(seen(&fifth), [(1, 4, 0)], "a failed attempt ends the count");
    ok("ack", store.ack(&receipts(&fifth)).await);
    assert_eq!(counts(&store).await, (0, 0, 0));
}

/// A suspect is claimed alone: while suspects are due, each claim hands out one of them and
/// nothing else, however large its limit, for listeners with a concurrency limit too; then the
/// other deliveries come, together again.
pub async fn a_suspect_is_claimed_alone(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let now = SystemTime::now();
    insert(
        &store,
        &[
            due(1),
            due(2),
            emit(3, &[B], now, None),
            emit(4, &[TWO], now, None),
            emit(5, &[TWO], now, None),
        ],
    )
    .await;
    let crashed = claim(&store, "dead-worker", &[A, B, TWO], 10, SHORT).await;
    assert_eq!(ns(&crashed), [1, 2, 3, 4, 5]);
    tokio::time::sleep(SHORT + MARGIN).await;
    // Healthy deliveries beside the suspects: of a listener without a limit, and of `TWO`
    // (whose two places its suspects hold until they finish).
    let later = SystemTime::now();
    insert(
        &store,
        &[
            emit(6, &[A], later, None),
            emit(7, &[B], later, None),
            emit(8, &[TWO], later, None),
        ],
    )
    .await;

    // The same lease as before (see above); the rest of the case takes a moment, well within it.
    let mut suspects = Vec::new();
    for _ in 0..5 {
        let taken = claim(&store, "w", &[A, B, TWO], 10, SHORT).await;
        assert_eq!(
            taken.len(),
            1,
            "a suspect alone, not with others: {:?}",
            seen(&taken)
        );
        assert_eq!(
            (taken[0].attempt, taken[0].crashes),
            (2, 1),
            "its lease ran out once"
        );
        suspects.extend(taken);
    }
    assert_eq!(ns(&suspects), [1, 2, 3, 4, 5], "every suspect, once each");

    let healthy = claim(&store, "w", &[A, B, TWO], 10, SHORT).await;
    assert_eq!(
        seen(&healthy),
        [(6, 1, 0), (7, 1, 0)],
        "then the others, together; `TWO`'s places are still taken"
    );
    ok("ack", store.ack(&receipts(&suspects)).await);
    let last = claim(&store, "w", &[A, B, TWO], 10, SHORT).await;
    assert_eq!(seen(&last), [(8, 1, 0)]);
}
