//! Delivery policies in an order service: each listener of `order_placed` has the policy its job
//! needs, and the emitter's default covers the rest.
//!
//! - `capture_payment` calls a gateway that is busy twice for every order. With `attempts = 3,
//!   backoff = "50ms..200ms"` it waits 50 ms, then 100 ms, and the third attempt goes through.
//! - `reserve_stock` reads the stock, waits for the warehouse, writes the new stock: orders run side
//!   by side would overwrite each other. `concurrency = 1` applies them one at a time, in emit order.
//! - `update_sales_report` has `timeout = "100ms"`, which a bulk order exceeds: its attempts are
//!   cancelled and, once the default two are spent, the error hook gets a `Failure::Timeout`.
//!
//! `cargo run --example delivery_policies`

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emitter::{emit, listener, Backoff, Capacity, DeliveryPolicy, EmitId, Emitter};
use emitter::{Event, EventMeta, Failure, Metrics, ShutdownReport, State};
use tokio::time::{sleep, Instant};

#[derive(Event)]
pub struct OrderPlaced {
    pub order: u64,
    pub quantity: u32,
}

/// What the shop's systems saw.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Requests to the payment gateway: `(order, attempt, time since opening, outcome)`.
    pub payments: Vec<(u64, u32, Duration, &'static str)>,
    /// Items on hand.
    pub stock: i64,
    /// `(order, stock left)`, in the order the warehouse applied them.
    pub reserved: Vec<(u64, i64)>,
    /// Orders the sales report counts.
    pub reported: Vec<u64>,
    /// What the error hook received.
    pub failures: Vec<Failed>,
}

/// A delivery that failed for good, as the error hook saw it.
#[derive(Debug, Clone)]
pub struct Failed {
    pub listener: &'static str,
    pub emit_id: EmitId,
    pub attempts: u32,
    /// The limit, when the last attempt timed out (`Failure::Timeout`).
    pub timed_out_after: Option<Duration>,
    pub message: String,
}

/// The shop's clock and log, shared with the listeners as `State<Shop>`.
#[derive(Clone)]
pub struct Shop {
    opened: Instant,
    log: Arc<Mutex<Log>>,
}

#[listener(events = [OrderPlaced], attempts = 3, backoff = "50ms..200ms")]
async fn capture_payment(order: u64, meta: EventMeta, shop: State<Shop>) -> Result<(), String> {
    let mut log = shop.log.lock().unwrap();
    // The gateway is busy for the first two requests of every order.
    let busy = log.payments.iter().filter(|p| p.0 == order).count() < 2;
    let outcome = if busy { "busy" } else { "captured" };
    log.payments
        .push((order, meta.attempt(), shop.opened.elapsed(), outcome));
    if busy {
        return Err(format!("gateway busy, order {order} not paid"));
    }
    Ok(())
}

#[listener(events = [OrderPlaced], concurrency = 1)]
async fn reserve_stock(order: u64, quantity: u32, shop: State<Shop>) {
    let on_hand = shop.log.lock().unwrap().stock;
    sleep(Duration::from_millis(10 * u64::from(quantity))).await; // the warehouse picks the items
    let mut log = shop.log.lock().unwrap();
    log.stock = on_hand - i64::from(quantity);
    let left = log.stock;
    log.reserved.push((order, left));
}

#[listener(events = [OrderPlaced], timeout = "100ms")]
async fn update_sales_report(order: u64, quantity: u32, shop: State<Shop>) {
    // A bulk order, of 10 items or more, takes the reporting database seconds.
    let millis = if quantity >= 10 { 5_000 } else { 20 };
    sleep(Duration::from_millis(millis)).await;
    shop.log.lock().unwrap().reported.push(order);
}

/// What happened, for `main` to print and the test to check.
#[derive(Debug)]
pub struct Summary {
    pub log: Log,
    /// The emit of each order, in order.
    pub emits: Vec<EmitId>,
    pub report: ShutdownReport,
    pub metrics: Metrics,
}

/// Opens the shop with `stock` items, places one order per quantity, and shuts down.
pub async fn run(stock: i64, quantities: &[u32]) -> Result<Summary, Box<dyn Error>> {
    let log = Arc::new(Mutex::new(Log {
        stock,
        ..Log::default()
    }));
    let hook_log = Arc::clone(&log);
    // For listeners that say nothing else: 2 attempts of at most 1 s each, 100 ms apart. Without
    // jitter, the waits are exactly the schedule (the payment's 50 ms then 100 ms).
    let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
    let policy = DeliveryPolicy::default()
        .attempts(2)
        .timeout(Duration::from_secs(1));
    let emitter = Emitter::builder()
        .state(Shop {
            opened: Instant::now(),
            log: Arc::clone(&log),
        })
        .delivery_policy(policy.backoff(backoff.without_jitter()))
        // At most 1,000 orders in flight: beyond, `emit` hands the order back (`EmitError::Full`).
        .capacity(Capacity::Bounded(1_000))
        .on_error(move |error| {
            let failed = Failed {
                listener: error.listener,
                emit_id: error.emit_id,
                attempts: error.attempt,
                timed_out_after: match error.failure {
                    Failure::Timeout(limit) => Some(limit),
                    _ => None,
                },
                message: error.to_string(),
            };
            hook_log.lock().unwrap().failures.push(failed);
        })
        .start()
        .await?;

    let mut emits = Vec::new();
    for (order, &quantity) in (1u64..).zip(quantities) {
        emits.push(emit!(emitter, OrderPlaced, order, quantity)?);
    }
    let report = emitter.shutdown_timeout(Duration::from_secs(30)).await?;
    let log = log.lock().unwrap().clone();
    let metrics = emitter.metrics();
    Ok(Summary {
        log,
        emits,
        report,
        metrics,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let summary = run(100, &[3, 1, 12, 2]).await?;
    for order in (1..).take(summary.emits.len()) {
        let payments = summary.log.payments.iter().filter(|p| p.0 == order);
        let attempts: Vec<String> = payments
            .map(|(_, n, at, outcome)| format!("attempt {n} {outcome} at {} ms", at.as_millis()))
            .collect();
        println!("order {order}: payment {}", attempts.join(", "));
    }
    for (order, left) in &summary.log.reserved {
        println!("order {order}: stock reserved, {left} left");
    }
    let reported = &summary.log.reported;
    println!("sales report counted orders {reported:?} (in any order: no concurrency limit)");
    for failed in &summary.log.failures {
        println!("error hook: {}", failed.message);
    }
    println!("{}", summary.report);
    for row in &summary.report.deliveries {
        let (name, delivered, failed) = (row.listener, row.delivered, row.failed);
        println!("  {name}: {delivered} delivered, {failed} failed");
    }
    println!("{:?}", summary.metrics);
    Ok(())
}
