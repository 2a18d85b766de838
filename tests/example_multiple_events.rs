//! The `multiple_events` example: one listener of two events sends one email per event, and
//! `EventMeta` tells it which event fired.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the test calls `run`"
)]
#[path = "../examples/multiple_events.rs"]
pub mod example;

use example::Email;

#[tokio::test]
async fn one_listener_sends_an_email_per_event_and_knows_which_event_fired() {
    let sent = example::run("jane@example.com").await.unwrap();

    assert_eq!(
        sent,
        [
            Email {
                to: "jane@example.com".to_owned(),
                subject: "Welcome to Example.com".to_owned(),
                body: "Welcome aboard!".to_owned(),
            },
            Email {
                to: "jane@example.com".to_owned(),
                subject: "Your password was changed".to_owned(),
                body: "Your password was changed.".to_owned(),
            },
        ]
    );
}
