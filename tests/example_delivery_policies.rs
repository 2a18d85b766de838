//! The `delivery_policies` example: each listener's policy changes what happens. The payment is
//! retried on the backoff's schedule until it goes through, the stock is applied in emit order,
//! the slow report is cancelled at its timeout and reported, and the counters add up.
//!
//! The tests run on tokio's paused clock: backoff waits and timeouts are exact and instant.

use std::time::Duration;

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the test calls `run`"
)]
#[path = "../examples/delivery_policies.rs"]
pub mod example;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[tokio::test(start_paused = true)]
async fn each_listener_gets_its_policy() {
    // Order 3 is a bulk order: its sales report runs past the timeout.
    let summary = example::run(100, &[3, 1, 12, 2]).await.unwrap();
    let log = &summary.log;

    // `attempts = 3, backoff = "50ms..200ms"` (no jitter): busy at 0 and 50 ms, captured 100 ms
    // later, for every order.
    let mut payments: Vec<(u64, u32, u128, &str)> = log
        .payments
        .iter()
        .map(|&(order, attempt, at, outcome)| (order, attempt, at.as_millis(), outcome))
        .collect();
    payments.sort_unstable();
    let expected: Vec<_> = (1..=4)
        .flat_map(|order| {
            [
                (order, 1, 0, "busy"),
                (order, 2, 50, "busy"),
                (order, 3, 150, "captured"),
            ]
        })
        .collect();
    assert_eq!(payments, expected);

    // `concurrency = 1`: applied in emit order, and no update lost (100 - 3 - 1 - 12 - 2).
    assert_eq!(log.reserved, [(1, 97), (2, 96), (3, 84), (4, 82)]);
    assert_eq!(log.stock, 82);

    // `timeout = "100ms"`: the bulk order's report is cancelled twice (the emitter's default of
    // two attempts) and reaches the error hook as a timeout; the payments' retries do not.
    let mut reported = log.reported.clone();
    reported.sort_unstable();
    assert_eq!(reported, [1, 2, 4]);
    let [failed] = log.failures.as_slice() else {
        panic!("expected one failure, got {:#?}", log.failures);
    };
    assert!(
        failed.listener.ends_with("::update_sales_report"),
        "{failed:?}"
    );
    assert_eq!(failed.emit_id, summary.emits[2], "order 3: {failed:?}");
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.timed_out_after, Some(ms(100)));
    assert!(
        failed.message.contains("timed out after 100ms"),
        "{}",
        failed.message
    );

    // The shutdown drained everything, and its rows say the same per listener.
    let report = &summary.report;
    assert!(report.is_complete(), "{report}");
    assert_eq!(
        report.to_string(),
        "shutdown complete: 11 delivered, 1 failed"
    );
    let rows: Vec<(&str, u64, u64)> = report
        .deliveries
        .iter()
        .map(|row| {
            let name = row.listener.rsplit("::").next().unwrap();
            (name, row.delivered, row.failed)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("capture_payment", 4, 0),
            ("reserve_stock", 4, 0),
            ("update_sales_report", 3, 1),
        ]
    );

    // 4 orders x 3 listeners = 12 deliveries: 11 delivered, 1 failed. Retries: 2 per payment
    // and 1 for the bulk order's report.
    let metrics = summary.metrics;
    assert_eq!((metrics.emitted, metrics.rejected), (4, 0), "{metrics:?}");
    assert_eq!(
        (metrics.retried, metrics.failed, metrics.delivered),
        (9, 1, 11),
        "{metrics:?}"
    );
    assert_eq!(
        (metrics.queued, metrics.in_flight, metrics.pending_events),
        (0, 0, 0),
        "{metrics:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_bulk_order_nothing_reaches_the_error_hook() {
    let quantities = [5, 9, 1, 7, 2, 8, 3, 6];
    let summary = example::run(50, &quantities).await.unwrap();
    let log = &summary.log;

    assert!(log.failures.is_empty(), "{:#?}", log.failures);
    // Every payment goes through at its third attempt.
    let mut captured: Vec<(u64, u32)> = log
        .payments
        .iter()
        .filter(|payment| payment.3 == "captured")
        .map(|payment| (payment.0, payment.1))
        .collect();
    captured.sort_unstable();
    assert_eq!(
        captured,
        (1..=8).map(|order| (order, 3)).collect::<Vec<_>>()
    );

    // Bigger orders take the warehouse longer: run side by side they would finish out of order.
    let mut left = 50;
    let expected: Vec<(u64, i64)> = (1..)
        .zip(quantities)
        .map(|(order, quantity)| {
            left -= i64::from(quantity);
            (order, left)
        })
        .collect();
    assert_eq!(log.reserved, expected);
    assert_eq!(log.stock, 9);

    let metrics = summary.metrics;
    assert_eq!(
        (metrics.retried, metrics.failed, metrics.delivered),
        (16, 0, 24),
        "{metrics:?}"
    );
}
