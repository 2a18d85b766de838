//! The `passing_arguments` example: each listener of one event receives exactly the fields it
//! named, whatever their order and whether it borrows or owns them.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the test calls `run`"
)]
#[path = "../examples/passing_arguments.rs"]
pub mod example;

#[tokio::test]
async fn each_listener_receives_the_fields_it_names() {
    let lines = example::run(
        42,
        "jane@example.com",
        "moving abroad",
        Some("great service"),
    )
    .await
    .unwrap();

    assert_eq!(
        lines,
        [
            r#"archive_account: UserDeleted { user_id: 42, email: "jane@example.com", reason: "moving abroad", feedback: Some("great service") }"#,
            "export_to_warehouse: event=user_deleted user_id=42 reason=moving abroad",
            "notify_customer_support: user_id=42 reason=moving abroad feedback=great service",
            "send_farewell_email: email=jane@example.com",
        ]
    );
}

#[tokio::test]
async fn an_absent_optional_field_arrives_as_none() {
    let lines = example::run(7, "john@example.com", "too expensive", None)
        .await
        .unwrap();

    assert!(
        lines.contains(
            &"notify_customer_support: user_id=7 reason=too expensive feedback=none".to_owned()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&r#"archive_account: UserDeleted { user_id: 7, email: "john@example.com", reason: "too expensive", feedback: None }"#.to_owned()),
        "{lines:#?}"
    );
}
