//! The `welcome_email` example: every created user gets a welcome mail addressed to them, and a
//! mail the server refuses is reported to the error hook without stopping the others.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the test calls `run`"
)]
#[path = "../examples/welcome_email.rs"]
pub mod example;

use example::Mail;

fn mail(to: &str, subject: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
    }
}

#[tokio::test]
async fn each_new_user_gets_a_welcome_mail_with_their_name() {
    let summary = example::run(&[("jane@example.com", "Jane"), ("john@example.com", "John")])
        .await
        .unwrap();

    assert_eq!(summary.users, ["jane@example.com", "john@example.com"]);
    assert_eq!(
        summary.sent,
        [
            mail("jane@example.com", "Welcome, Jane!"),
            mail("john@example.com", "Welcome, John!"),
        ]
    );
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
}

#[tokio::test]
async fn a_refused_mail_reaches_the_error_hook_and_the_others_are_sent() {
    let summary = example::run(&[
        ("nobody@example.invalid", "Nobody"),
        ("jane@example.com", "Jane"),
    ])
    .await
    .unwrap();

    assert_eq!(
        summary.users,
        ["nobody@example.invalid", "jane@example.com"]
    );
    assert_eq!(summary.sent, [mail("jane@example.com", "Welcome, Jane!")]);
    let [failure] = summary.failures.as_slice() else {
        panic!("expected one failure, got {:?}", summary.failures);
    };
    assert!(failure.contains("send_welcome_email"), "{failure}");
    assert!(failure.contains("user_created"), "{failure}");
    assert!(
        failure.contains("the mail server refused `nobody@example.invalid`"),
        "{failure}"
    );
}
