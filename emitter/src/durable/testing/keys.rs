//! Idempotency keys: an emit whose key is already stored is skipped, until the key expires.

use std::time::{Duration, SystemTime};

use super::{
    claim, counts, emit, fresh, insert, ns, ok, receipts, Harness, A, B, LONG, MARGIN, RETENTION,
};

/// The first emit of each key is stored; later ones, in the same batch or another, are counted
/// as duplicates and stored nowhere, also once the first one's deliveries are done.
pub async fn idempotency_keys_skip_duplicates_within_and_across_batches(harness: &impl Harness) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let now = SystemTime::now();
    let first = [
        emit(1, &[A, B], now, Some("k1")),
        emit(2, &[A, B], now, Some("k1")),
        emit(3, &[A], now, Some("k2")),
        emit(4, &[A], now, None),
        emit(5, &[A], now, None),
    ];
    assert_eq!(insert(&store, &first).await, (4, 1));
    let second = [
        emit(6, &[A], now, Some("k2")),
        emit(7, &[A], now, Some("k3")),
    ];
    assert_eq!(insert(&store, &second).await, (1, 1));
    let claimed = claim(&store, "w", &[A], 100, LONG).await;
    assert_eq!(ns(&claimed), [1, 3, 4, 5, 7]);
    ok("ack", store_ack(&store, &claimed).await);
    assert_eq!(
        insert(&store, &[emit(8, &[A], now, Some("k1"))]).await,
        (0, 1),
        "a key is remembered after its deliveries are done"
    );
    assert_eq!(
        counts(&store).await,
        (1, 0, 0),
        "`B`'s delivery of the first emit"
    );
}

async fn store_ack(
    store: &impl crate::durable::Store,
    claimed: &[crate::durable::Claimed],
) -> Result<(), crate::error::BackendError> {
    store.ack(&receipts(claimed)).await
}

/// A key is remembered for the key retention given at [`Store::open`](crate::durable::Store::open),
/// then an emit with it is stored again.
pub async fn an_expired_idempotency_key_is_accepted_again(harness: &impl Harness) {
    let retention = Duration::from_secs(1);
    let Some((_storage, store)) = fresh(harness, retention).await else {
        return;
    };
    let keyed = |n| [emit(n, &[A], SystemTime::now(), Some("tick"))];
    assert_eq!(insert(&store, &keyed(1)).await, (1, 0));
    assert_eq!(insert(&store, &keyed(2)).await, (0, 1));
    tokio::time::sleep(retention + MARGIN).await;
    assert_eq!(insert(&store, &keyed(3)).await, (1, 0), "the key expired");
    assert_eq!(
        insert(&store, &keyed(4)).await,
        (0, 1),
        "and is remembered again"
    );
    assert_eq!(counts(&store).await, (2, 0, 0));
}
