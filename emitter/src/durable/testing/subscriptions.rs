//! Subscriptions and the backlog: what workers record for emitting processes to route by, and
//! what the start-up compatibility check reads.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use super::{emit, fresh, insert, opened, Harness, A, B, C, RETENTION};
use crate::durable::{Backlog, Store, Subscription};

/// A subscription as the cases compare it: event id, listener, concurrency limit, version.
type Row = (String, String, Option<u32>, u32);

async fn subscriptions(store: &impl Store) -> Vec<Row> {
    store
        .subscriptions()
        .await
        .unwrap_or_else(|error| panic!("subscriptions failed: {error}"))
        .into_iter()
        .map(|s| {
            let limit = s.concurrency.map(NonZeroU32::get);
            (s.event_id, s.listener, limit, s.version)
        })
        .collect()
}

fn owned(rows: &[(&str, &str, Option<u32>, u32)]) -> Vec<Row> {
    rows.iter()
        .map(|(event, listener, limit, version)| {
            (
                (*event).to_owned(),
                (*listener).to_owned(),
                *limit,
                *version,
            )
        })
        .collect()
}

/// A worker's subscriptions replace those of the listeners it names (its listeners and their
/// aliases), leave the others', are read back in (event id, listener) order by every handle, with
/// their concurrency limit, the event version the worker reads and when they were seen;
/// `unsubscribe` deletes one listener's.
pub async fn subscriptions_replace_those_of_the_named_listeners_only(harness: &impl Harness) {
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    assert!(
        subscriptions(&store).await.is_empty(),
        "fresh storage has none"
    );
    let before = SystemTime::now() - Duration::from_secs(1);
    let limit = NonZeroU32::new(2);
    let first = [
        Subscription::new("e2", A, SystemTime::now()).with_version(3),
        Subscription::new("e1", A, SystemTime::now()).concurrency(limit),
        Subscription::new("e1", B, SystemTime::now()).with_version(2),
    ];
    let result = store.subscribe(&[A, B], &first).await;
    assert!(result.is_ok(), "subscribe failed: {result:?}");
    let other = opened(harness, &storage, RETENTION).await;
    assert_eq!(
        subscriptions(&other).await,
        owned(&[
            ("e1", A, Some(2), 1),
            ("e1", B, None, 2),
            ("e2", A, None, 3)
        ]),
        "every handle reads them, in (event id, listener) order"
    );
    let seen = other
        .subscriptions()
        .await
        .unwrap_or_else(|error| panic!("subscriptions failed: {error}"));
    assert!(
        seen.iter()
            .all(|s| s.seen_at >= before && s.seen_at <= SystemTime::now() + Duration::from_secs(1)),
        "seen when recorded: {seen:?}"
    );

    // A renamed listener: `C` replaces `A` (its alias) and subscribes to `e3` only.
    let second = [Subscription::new("e3", C, SystemTime::now())];
    let result = other.subscribe(&[C, A], &second).await;
    assert!(result.is_ok(), "subscribe failed: {result:?}");
    assert_eq!(
        subscriptions(&store).await,
        owned(&[("e1", B, None, 2), ("e3", C, None, 1)]),
        "`A`'s are gone, `B`'s stay"
    );

    let deleted = store.unsubscribe(B).await;
    assert_eq!(deleted.ok(), Some(1), "one subscription of `B`");
    let deleted = store.unsubscribe(B).await;
    assert_eq!(deleted.ok(), Some(0), "none left");
    assert_eq!(subscriptions(&other).await, owned(&[("e3", C, None, 1)]));
}

async fn backlog(store: &impl Store) -> Vec<Backlog> {
    store
        .backlog()
        .await
        .unwrap_or_else(|error| panic!("backlog failed: {error}"))
}

/// The backlog counts the unfinished deliveries (due, delayed or leased) per listener, event id
/// and event version, in that order; finished ones are not counted.
pub async fn the_backlog_counts_unfinished_deliveries_per_listener_and_event(
    harness: &impl Harness,
) {
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    assert!(backlog(&store).await.is_empty(), "fresh storage has none");
    let now = SystemTime::now();
    let later = now + Duration::from_secs(3600);
    let mut other_event = emit(3, &[B], now, None);
    other_event.event.event_id = "contract.other".to_owned();
    insert(
        &store,
        &[
            emit(1, &[A, B], now, None),
            emit(2, &[A], later, None),
            other_event,
        ],
    )
    .await;
    let claimed = super::claim(&store, "w", &[B], 1, super::LONG).await;
    assert_eq!(claimed.len(), 1, "one of `B`'s is leased");
    assert_eq!(
        backlog(&store).await,
        [
            // Events 1 and 2 are stored at versions 2 and 3 (see `event`), event 3 at 1.
            Backlog::new(A, "contract.event", 1).with_version(2),
            Backlog::new(A, "contract.event", 1).with_version(3),
            Backlog::new(B, "contract.event", 1).with_version(2),
            Backlog::new(B, "contract.other", 1).with_version(1),
        ],
        "due, delayed and leased deliveries count"
    );
    let receipt = claimed[0].receipt.clone();
    let result = store.ack(&[receipt]).await;
    assert!(result.is_ok(), "ack failed: {result:?}");
    let left = backlog(&store).await;
    assert_eq!(
        left.iter().map(|b| b.unfinished).sum::<u64>(),
        3,
        "an acknowledged delivery is not counted: {left:?}"
    );
}
