//! The operator's view ([`Admin`]): deliveries listed by state and filtered, a page at a time;
//! one delivery in full; counts per listener.

use std::time::{Duration, SystemTime};

use super::{
    claim, due, emit, event, fresh, insert, n_of_emit, ok, Harness, A, B, LONG, RETENTION,
};
use crate::durable::admin::{Admin, Delivery, DeliveryState, Filter, Query, Step};
use crate::durable::{NewEmit, Store, StoredEvent};
use crate::error::BackendErrorKind;

/// Every delivery in `state` that `filter` matches, a page of `limit` at a time; checks that
/// only the last page is short and that no delivery comes twice.
pub(super) async fn list(
    store: &impl Admin,
    state: DeliveryState,
    filter: Filter,
    limit: usize,
) -> Vec<Delivery> {
    let mut all: Vec<Delivery> = Vec::new();
    let mut cursor = None;
    loop {
        let query = Query::new(state)
            .filter(filter.clone())
            .limit(limit)
            .cursor(cursor);
        let page = store
            .deliveries(&query)
            .await
            .unwrap_or_else(|error| panic!("deliveries failed: {error}"));
        assert!(
            page.deliveries.len() <= limit,
            "a page holds at most its limit"
        );
        for delivery in &page.deliveries {
            assert_eq!(delivery.state, state, "listed in its state: {delivery:?}");
            assert!(
                all.iter().all(|seen| seen.id != delivery.id),
                "listed twice: {delivery:?}"
            );
        }
        let short = page.deliveries.len() < limit;
        all.extend(page.deliveries);
        match page.next {
            Some(next) => {
                assert!(!short, "a short page is the last: it has no next page");
                cursor = Some(next);
            }
            None => return all,
        }
    }
}

/// The `n`s of listed deliveries, in their order.
pub(super) fn listed_ns(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries
        .iter()
        .map(|delivery| n_of_emit(delivery.emit_id))
        .collect()
}

/// The delivery of event `n` for `listener` in `state`; panics naming what was listed if none.
pub(super) async fn find(
    store: &impl Admin,
    state: DeliveryState,
    listener: &str,
    n: u64,
) -> Delivery {
    let listed = list(store, state, Filter::new().listener(listener), 100).await;
    listed
        .iter()
        .find(|delivery| n_of_emit(delivery.emit_id) == n)
        .cloned()
        .unwrap_or_else(|| panic!("no {state} delivery of event {n} for {listener} in {listed:?}"))
}

/// Each delivery is listed in its state (waiting, scheduled, running, dead) with what the store
/// knows of it: the event's ids and emit time, the attempts, the lease holder while it runs, the
/// reason it died; and counted per listener in the same states.
pub async fn deliveries_are_listed_in_their_state<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let before = SystemTime::now() - Duration::from_millis(5);
    insert(&store, &[due(1), due(2), due(3)]).await;
    insert(&store, &[emit(4, &[A], SystemTime::now() + LONG, None)]).await;
    insert(&store, &[emit(5, &[B], SystemTime::now(), None)]).await;
    let running = claim(&store, "w1", &[A], 1, LONG).await;
    let dying = claim(&store, "w2", &[A], 1, LONG).await;
    ok(
        "dead_letter",
        store.dead_letter(&dying[0].receipt, "boom").await,
    );
    let now = SystemTime::now();

    let mut waiting = list(&store, DeliveryState::Waiting, Filter::new(), 10).await;
    // Across listeners, deliveries due in the same millisecond come in no particular order.
    assert!(
        waiting.windows(2).all(|pair| pair[0].due <= pair[1].due),
        "{waiting:?}"
    );
    waiting.sort_by_key(|delivery| n_of_emit(delivery.emit_id));
    assert_eq!(listed_ns(&waiting), [3, 5]);
    for delivery in &waiting {
        let n = n_of_emit(delivery.emit_id);
        assert_eq!(delivery.event_id, "contract.event");
        assert_eq!(delivery.emitted_at, event(n).emitted_at);
        assert_eq!((delivery.attempts, delivery.worker.as_deref()), (0, None));
        assert!(
            delivery.due >= before && delivery.due <= now,
            "due since: {delivery:?}"
        );
    }
    assert_eq!(waiting[0].listener, A);
    assert_eq!(waiting[1].listener, B);

    let listed = list(&store, DeliveryState::Running, Filter::new(), 10).await;
    assert_eq!(listed_ns(&listed), [1]);
    assert_eq!(listed[0].id, running[0].receipt.id, "the id its claim has");
    assert_eq!(
        (listed[0].attempts, listed[0].worker.as_deref()),
        (1, Some("w1")),
        "the lease holder"
    );
    assert!(
        listed[0].due > now && listed[0].due <= SystemTime::now() + LONG,
        "running: due is when the lease runs out, {:?}",
        listed[0].due
    );

    let scheduled = list(&store, DeliveryState::Scheduled, Filter::new(), 10).await;
    assert_eq!(listed_ns(&scheduled), [4]);
    assert!(
        scheduled[0].due > now + LONG - Duration::from_secs(60),
        "scheduled: due is when it will be"
    );

    let dead = list(&store, DeliveryState::Dead, Filter::new(), 10).await;
    assert_eq!(listed_ns(&dead), [2]);
    assert_eq!(
        (
            dead[0].attempts,
            dead[0].error.as_deref(),
            dead[0].listener.as_str()
        ),
        (1, Some("boom"), A)
    );
    assert!(
        dead[0].due >= before && dead[0].due <= SystemTime::now(),
        "when it failed"
    );

    let counts = store
        .listener_counts()
        .await
        .unwrap_or_else(|error| panic!("listener_counts failed: {error}"));
    let names: Vec<&str> = counts.iter().map(|count| count.listener.as_str()).collect();
    assert_eq!(
        names,
        [A, B],
        "every listener with something stored, by name"
    );
    let of_a = &counts[0];
    assert_eq!(
        (of_a.waiting, of_a.scheduled, of_a.running, of_a.dead),
        (1, 1, 1, 1)
    );
    let oldest = of_a
        .oldest_waiting
        .unwrap_or_else(|| panic!("A has a waiting delivery"));
    assert!(
        oldest >= before && oldest <= SystemTime::now(),
        "{oldest:?}"
    );
    assert_eq!(
        (counts[1].waiting, counts[1].total()),
        (1, 1),
        "B: one waiting"
    );
}

/// Pages taken one after the other list every delivery once, in order: waiting ones in emit
/// order, scheduled ones by due time, dead letters by failure time; only the last page is short.
/// A cursor the store did not make is refused as invalid input.
pub async fn pages_list_each_delivery_once_in_order<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    // All due at the same time: the order, and where each page starts, is then the ids'.
    let now = SystemTime::now();
    let emits: Vec<NewEmit> = (1..=25).map(|n| emit(n, &[A], now, None)).collect();
    insert(&store, &emits).await;
    let waiting = list(&store, DeliveryState::Waiting, Filter::new(), 10).await;
    assert_eq!(listed_ns(&waiting), (1..=25).collect::<Vec<_>>());
    let one_by_one = list(&store, DeliveryState::Waiting, Filter::new(), 1).await;
    assert_eq!(listed_ns(&one_by_one), listed_ns(&waiting));

    // Due later the lower the number: scheduled ones come by due time, not emit order.
    let delayed: Vec<NewEmit> = (26..=32)
        .map(|n| {
            emit(
                n,
                &[A],
                now + LONG + Duration::from_secs(60 * (40 - n)),
                None,
            )
        })
        .collect();
    insert(&store, &delayed).await;
    let scheduled = list(&store, DeliveryState::Scheduled, Filter::new(), 3).await;
    assert_eq!(listed_ns(&scheduled), (26..=32).rev().collect::<Vec<_>>());

    for _ in 0..12 {
        let taken = claim(&store, "w", &[A], 1, LONG).await;
        ok(
            "dead_letter",
            store.dead_letter(&taken[0].receipt, "dead").await,
        );
    }
    let dead = list(&store, DeliveryState::Dead, Filter::new(), 5).await;
    assert_eq!(
        listed_ns(&dead),
        (1..=12).collect::<Vec<_>>(),
        "in the order they failed"
    );
    let waiting = list(&store, DeliveryState::Waiting, Filter::new(), 10).await;
    assert_eq!(listed_ns(&waiting), (13..=25).collect::<Vec<_>>());

    for state in DeliveryState::ALL {
        let query = Query::new(state).cursor(Some("not a cursor".to_owned()));
        match store.deliveries(&query).await {
            Err(error) => assert_eq!(
                error.kind(),
                BackendErrorKind::InvalidInput,
                "a {state} cursor the store did not make: {error}"
            ),
            Ok(page) => panic!("a {state} cursor the store did not make listed {page:?}"),
        }
    }
}

/// A filter narrows a listing to a listener, an event, an emit, or a range of due times (for
/// dead letters, failure times); its conditions combine.
pub async fn filters_narrow_a_listing<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let now = SystemTime::now();
    let other = StoredEvent::new(
        "contract.other",
        event(2).emit_id,
        event(2).emitted_at,
        event(2).payload,
    );
    insert(
        &store,
        &[
            emit(1, &[A, B], now, None),
            NewEmit::new(other, vec![A], now, None),
            emit(3, &[A], now + LONG, None),
        ],
    )
    .await;
    let waiting = |filter: Filter| list(&store, DeliveryState::Waiting, filter, 10);
    // Sorted: across listeners, deliveries due at once come in no particular order.
    let of = |deliveries: Vec<Delivery>| -> Vec<(u64, String)> {
        let mut listed: Vec<(u64, String)> = deliveries
            .into_iter()
            .map(|delivery| (n_of_emit(delivery.emit_id), delivery.listener))
            .collect();
        listed.sort();
        listed
    };
    assert_eq!(
        of(waiting(Filter::new().listener(B)).await),
        [(1, B.to_owned())]
    );
    assert_eq!(
        of(waiting(Filter::new().event_id("contract.other")).await),
        [(2, A.to_owned())]
    );
    assert_eq!(
        of(waiting(Filter::new().emit_id(event(1).emit_id)).await),
        [(1, A.to_owned()), (1, B.to_owned())],
        "every delivery of one emit"
    );
    assert_eq!(
        of(waiting(Filter::new().emit_id(event(1).emit_id).listener(B)).await),
        [(1, B.to_owned())]
    );
    let hour = Duration::from_secs(3600);
    assert_eq!(waiting(Filter::new().after(now - hour)).await.len(), 3);
    assert!(waiting(Filter::new().before(now - hour)).await.is_empty());
    assert!(waiting(Filter::new().after(now + hour)).await.is_empty());
    let scheduled = |filter: Filter| list(&store, DeliveryState::Scheduled, filter, 10);
    assert_eq!(
        of(scheduled(Filter::new().after(now + LONG / 2)).await),
        [(3, A.to_owned())]
    );
    assert!(scheduled(Filter::new().before(now + LONG / 2))
        .await
        .is_empty());
    assert!(scheduled(Filter::new().listener(B)).await.is_empty());

    let taken = claim(&store, "w", &[B], 10, LONG).await;
    ok(
        "dead_letter",
        store.dead_letter(&taken[0].receipt, "no").await,
    );
    let dead = |filter: Filter| list(&store, DeliveryState::Dead, filter, 10);
    assert_eq!(
        of(dead(Filter::new().after(now - hour)).await),
        [(1, B.to_owned())]
    );
    assert!(dead(Filter::new().before(now - hour)).await.is_empty());
    assert!(dead(Filter::new().listener(A)).await.is_empty());
    assert!(dead(Filter::new().event_id("contract.other"))
        .await
        .is_empty());
}

/// A delivery is shown in full by the id it is listed with, in any state: its payload and
/// trace context as stored, its attempts, its last error, and its history. An id the store
/// did not issue shows nothing.
pub async fn a_delivery_is_shown_in_full_by_its_id<H: Harness>(harness: &H)
where
    H::Store: Admin,
{
    let Some((_storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    let traced = event(1).with_trace(Some(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
    ));
    insert(
        &store,
        &[NewEmit::new(
            traced.clone(),
            vec![A],
            SystemTime::now(),
            None,
        )],
    )
    .await;
    let show = |id: String| {
        let store = &store;
        async move {
            store
                .delivery(&id)
                .await
                .unwrap_or_else(|error| panic!("delivery failed: {error}"))
        }
    };

    let first = claim(&store, "w1", &[A], 10, LONG).await;
    let past = SystemTime::now() - Duration::from_secs(1);
    ok(
        "retry",
        store.retry(&first[0].receipt, past, "smtp down").await,
    );
    let waiting = find(&store, DeliveryState::Waiting, A, 1).await;
    let shown = show(waiting.id.clone())
        .await
        .unwrap_or_else(|| panic!("a waiting delivery is shown"));
    assert_eq!(shown.delivery.state, DeliveryState::Waiting);
    assert_eq!(
        (shown.payload.clone(), shown.trace.clone()),
        (traced.payload.clone(), traced.trace.clone())
    );
    assert_eq!(
        (shown.delivery.attempts, shown.delivery.error.as_deref()),
        (1, Some("smtp down")),
        "its attempts and last error"
    );
    assert_eq!(shown.delivery.emit_id, traced.emit_id);
    assert!(matches!(
        shown.history().as_slice(),
        [
            Step::Emitted { .. },
            Step::Failed { attempts: 1, .. },
            Step::Due { .. }
        ]
    ));

    let second = claim(&store, "w2", &[A], 10, LONG).await;
    let running = show(second[0].receipt.id.clone())
        .await
        .unwrap_or_else(|| panic!("a running delivery is shown"));
    assert_eq!(
        (
            running.delivery.state,
            running.delivery.attempts,
            running.delivery.worker.as_deref()
        ),
        (DeliveryState::Running, 2, Some("w2"))
    );
    ok(
        "dead_letter",
        store.dead_letter(&second[0].receipt, "gave up").await,
    );
    let dead = find(&store, DeliveryState::Dead, A, 1).await;
    let shown = show(dead.id.clone())
        .await
        .unwrap_or_else(|| panic!("a dead letter is shown"));
    assert_eq!(
        (
            shown.delivery.state,
            shown.delivery.attempts,
            shown.delivery.error.as_deref()
        ),
        (DeliveryState::Dead, 2, Some("gave up"))
    );
    assert_eq!(
        (&shown.payload, &shown.trace),
        (&traced.payload, &traced.trace)
    );
    assert!(matches!(
        shown.history().last(),
        Some(Step::DeadLettered { attempts: 2, .. })
    ));

    let mut unknown = vec!["", "nope", "999999999", "1-0/contract.a", "delayed:1:1"];
    // A store whose dead letters keep their delivery's id shows the dead letter by it.
    if waiting.id != dead.id {
        unknown.push(&waiting.id);
    }
    for id in unknown {
        assert_eq!(
            show(id.to_owned()).await,
            None,
            "no delivery has the id {id:?}"
        );
    }
}
