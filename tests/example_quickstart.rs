//! The `quickstart` example: both listeners run for every order, with that order's fields.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the test calls `run`"
)]
#[path = "../examples/quickstart.rs"]
pub mod example;

#[tokio::test]
async fn quickstart_runs_both_listeners_for_every_order() {
    let lines = example::run().await.unwrap();
    assert_eq!(
        lines,
        [
            "receipt for order 1 sent to ada@example.com",
            "receipt for order 2 sent to grace@example.com",
            "stock reserved for order 1",
            "stock reserved for order 2",
        ]
    );
}
