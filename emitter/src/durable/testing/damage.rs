//! Storage the store did not write as it does: a delivery it cannot read, a newer version.

use std::time::SystemTime;

use super::{claim, counts, emit, fresh, insert, ns, setup, Harness, A, LONG, RETENTION};
use crate::durable::Store;
use crate::error::BackendErrorKind;

/// A delivery the store cannot read is dead-lettered by the claim that meets it, with the
/// reason, and never handed out; the deliveries stored before and after it are claimed, and
/// the dead letter can be listed and discarded.
pub async fn a_delivery_the_store_cannot_read_is_dead_lettered_not_handed_out(
    harness: &impl Harness,
) {
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    insert(&store, &[emit(1, &[A], SystemTime::now(), None)]).await;
    if !harness.corrupt(&storage, A).await {
        eprintln!("*** SKIPPED: the harness cannot store a delivery the store cannot read ***");
        return;
    }
    insert(&store, &[emit(2, &[A], SystemTime::now(), None)]).await;

    let claimed = claim(&store, "w", &[A], 10, LONG).await;
    assert_eq!(
        ns(&claimed),
        [1, 2],
        "the unreadable delivery blocks nothing"
    );
    assert_eq!(counts(&store).await, (0, 2, 1), "it is dead-lettered");
    let letters = store
        .dead_letters(10)
        .await
        .unwrap_or_else(|error| panic!("the dead letter cannot be listed: {error}"));
    assert_eq!(letters.len(), 1);
    assert!(
        !letters[0].reason.is_empty(),
        "the reason says what is wrong"
    );
    assert!(
        claim(&store, "w", &[A], 10, LONG).await.is_empty(),
        "it is not handed out"
    );
    assert_eq!(store.discard(&letters[0].id).await.ok(), Some(true));
    assert_eq!(counts(&store).await, (0, 2, 0));
}

/// Storage written by a newer version of the store is refused when it is opened, as a
/// [`Conflict`](BackendErrorKind::Conflict), rather than misread.
pub async fn storage_of_a_newer_schema_version_is_refused(harness: &impl Harness) {
    let Some((storage, store)) = fresh(harness, RETENTION).await else {
        return;
    };
    drop(store);
    if !harness.write_newer_schema_version(&storage).await {
        eprintln!("*** SKIPPED: the harness keeps no schema version ***");
        return;
    }
    let error = match harness.open(&storage).await {
        Err(error) => error,
        Ok(store) => match store.open(&setup(RETENTION)).await {
            Err(error) => error,
            Ok(()) => panic!("storage of a newer schema version was opened"),
        },
    };
    assert_eq!(error.kind(), BackendErrorKind::Conflict, "{error}");
    assert!(error.to_string().contains("newer"), "{error}");
    // The storage is left as it was: opening it again still refuses.
    let again = async {
        let store = harness.open(&storage).await?;
        store.open(&setup(RETENTION)).await
    };
    assert!(again.await.is_err());
}
