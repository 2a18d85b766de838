//! The `multiple_listeners` example: both listeners of `user_deleted` run for every deletion, each
//! with the fields it asked for.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the test calls `run`"
)]
#[path = "../examples/multiple_listeners.rs"]
pub mod example;

use example::Ticket;

#[tokio::test]
async fn every_deletion_sends_a_farewell_email_and_opens_a_ticket() {
    let summary = example::run(&[
        ("john@example.com", "too many emails"),
        ("jane@example.com", "moving to a competitor"),
    ])
    .await
    .unwrap();

    // Names are `module::path::function`; the module path depends on where the example is compiled.
    let functions: Vec<&str> = summary
        .listeners
        .iter()
        .map(|name| name.rsplit("::").next().unwrap())
        .collect();
    assert_eq!(
        functions,
        ["notify_customer_support", "send_farewell_email"]
    );
    assert_eq!(summary.farewells, ["jane@example.com", "john@example.com"]);
    assert_eq!(
        summary.tickets,
        [
            Ticket {
                title: "Account closed: jane@example.com".to_owned(),
                body: "Reason given: moving to a competitor".to_owned(),
            },
            Ticket {
                title: "Account closed: john@example.com".to_owned(),
                body: "Reason given: too many emails".to_owned(),
            },
        ]
    );
}
