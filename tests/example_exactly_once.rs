//! The `exactly_once` example: each order's first booking fails after writing and is rolled
//! back with its follow-up, so the ledger holds exactly one row per committed order, each
//! receipt is sent once, the rolled-back order never existed, and the store ends empty.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the tests call its functions"
)]
#[path = "../examples/exactly_once.rs"]
pub mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_story() {
    let dir = tempfile::tempdir().unwrap();
    let summary = example::run(&dir.path().join("app.db")).await.unwrap();
    let lines = summary.lines;
    let count = |needle: &str| lines.iter().filter(|line| line.contains(needle)).count();
    for order in 1..=3 {
        assert_eq!(
            count(&format!("order #{order}: booked, then failed (attempt 1)")),
            1,
            "{lines:#?}"
        );
        assert_eq!(
            count(&format!("order #{order}: booked (attempt 2)")),
            1,
            "{lines:#?}"
        );
        assert_eq!(
            count(&format!("order #{order}: receipt sent")),
            1,
            "{lines:#?}"
        );
    }
    assert_eq!(
        count("order #4"),
        0,
        "the rolled-back order was delivered: {lines:#?}"
    );
    assert_eq!(summary.ledger, [(1, 1_250), (2, 990), (3, 4_000)]);
    assert_eq!(summary.left, (0, 0));
}
