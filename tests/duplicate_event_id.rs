//! Two event types with one id: the emitter refuses to start and names both types.
//! (Its own test binary: the duplicate poisons every emitter of the binary it is linked into.)

use emitter::{Emitter, Event, StartError};

pub mod accounts {
    use emitter::Event;

    #[derive(Event)]
    pub struct Created {
        pub account: u64,
    }
}

pub mod orders {
    use emitter::Event;

    #[derive(Event)]
    #[event(id = "created")]
    pub struct OrderCreated {
        pub order: u64,
    }
}

#[tokio::test]
async fn two_types_with_one_id_fail_start_naming_both() {
    assert_eq!(accounts::Created::ID, orders::OrderCreated::ID);
    let error = Emitter::builder().start().await.unwrap_err();
    let StartError::DuplicateEventId { id, first, second } = &error else {
        panic!("expected DuplicateEventId, got {error:?}");
    };
    assert_eq!(*id, "created");
    let mut types = [*first, *second];
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "duplicate_event_id::accounts::Created",
            "duplicate_event_id::orders::OrderCreated"
        ]
    );
    let message = error.to_string();
    assert!(message.contains("#[event(id = \"...\")]"), "{message}");
}
