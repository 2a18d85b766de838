//! The `custom_backend` example: the audit trail records every event once, in emit order, before
//! its listeners run; every event is still delivered; and a trail that cannot be written stops
//! delivery and makes shutdown fail.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the tests call its functions"
)]
#[path = "../examples/custom_backend.rs"]
pub mod example;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, EmitId, Emitter, EventMeta, State};
use example::{AuditTrail, Entry, PaymentReceived};

/// An in-memory trail the test can read while the emitter writes to it.
#[derive(Clone, Default)]
struct SharedTrail(Arc<Mutex<Vec<u8>>>);

impl SharedTrail {
    /// The `(emit id, event id)` of each line; the timestamp in front is checked to be a number.
    fn records(&self) -> Vec<(String, String)> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let [emitted_at, emit_id, event_id] = fields[..] else {
                    panic!("not an audit line: {line:?}");
                };
                assert!(
                    emitted_at.parse::<u128>().is_ok(),
                    "not a timestamp in {line:?}"
                );
                (emit_id.to_owned(), event_id.to_owned())
            })
            .collect()
    }
}

impl Write for SharedTrail {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_event_is_recorded_once_in_emit_order_and_delivered() {
    let trail = SharedTrail::default();
    let summary = example::run(trail.clone()).await.unwrap();

    let [payment, second_payment, refund] = summary.emitted[..] else {
        panic!("expected three emits, got {:?}", summary.emitted);
    };
    assert_eq!(
        trail.records(),
        [
            (payment.to_string(), "payment_received".to_owned()),
            (second_payment.to_string(), "payment_received".to_owned()),
            (refund.to_string(), "refund_issued".to_owned()),
        ]
    );
    let entry = |emit_id: EmitId, event_id: &'static str, invoice: u64, cents: u64| Entry {
        emit_id,
        event_id,
        invoice,
        cents,
    };
    assert_eq!(
        summary.ledger,
        [
            entry(payment, "payment_received", 1001, 5000),
            entry(second_payment, "payment_received", 1002, 1250),
            entry(refund, "refund_issued", 1001, 500),
        ]
    );
}

/// Records, for each payment it handles, whether the trail already had that emit's line.
#[listener(events = [PaymentReceived])]
async fn check_trail(meta: EventMeta, trail: State<SharedTrail>, seen: State<Seen>) {
    let emit_id = meta.emit_id().to_string();
    let recorded = trail.records().iter().any(|(id, _)| *id == emit_id);
    seen.0 .0.lock().unwrap().push((meta.emit_id(), recorded));
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(EmitId, bool)>>>);

#[tokio::test]
async fn an_event_is_in_the_trail_before_its_listeners_run() {
    let trail = SharedTrail::default();
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .backend(AuditTrail::new(trail.clone()))
        .listeners(listeners![check_trail])
        .state(trail.clone())
        .state(seen.clone())
        .start()
        .await
        .unwrap();

    let mut emitted = Vec::new();
    for invoice in 1..=3_u64 {
        emitted.push(emit!(emitter, PaymentReceived, invoice, cents = 100).unwrap());
    }
    emitter.shutdown().await.unwrap();

    let mut seen = seen.0.lock().unwrap().clone();
    seen.sort();
    let expected: Vec<(EmitId, bool)> = emitted.into_iter().map(|id| (id, true)).collect();
    assert_eq!(seen, expected);
}

/// A trail whose disk is full.
struct FullDisk;

impl Write for FullDisk {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("no space left on device"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_event_the_trail_cannot_record_is_not_delivered_and_shutdown_reports_why() {
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let emitter = Emitter::builder()
        .backend(AuditTrail::new(FullDisk))
        .listeners(listeners![check_delivery])
        .state(Delivered(Arc::clone(&delivered)))
        .start()
        .await
        .unwrap();

    emit!(emitter, PaymentReceived, invoice = 1, cents = 100).unwrap();
    let error = emitter.shutdown().await.unwrap_err();

    assert!(
        delivered.lock().unwrap().is_empty(),
        "delivered: {:?}",
        delivered.lock().unwrap()
    );
    assert_eq!(error.to_string(), "writing the audit trail failed");
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("no space left on device"));
}

#[derive(Clone)]
struct Delivered(Arc<Mutex<Vec<u64>>>);

#[listener(events = [PaymentReceived])]
async fn check_delivery(invoice: u64, delivered: State<Delivered>) {
    delivered.0 .0.lock().unwrap().push(invoice);
}
