//! With the `metrics` feature, the emitter's counters reach the `metrics` facade.
//! (Its own test binary: it installs the process-wide recorder.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Capacity, Emitter, Event};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use tokio::sync::watch;

#[derive(Event)]
pub struct Ping {
    pub n: u32,
}

#[listener(events = [Ping], attempts = 2, backoff = "1ms..1ms")]
async fn flaky(n: u32, gate: emitter::State<watch::Receiver<bool>>) -> Result<(), String> {
    let _ = gate.0.clone().wait_for(|open| *open).await;
    if n == 1 {
        return Err("one is flaky".to_owned());
    }
    Ok(())
}

/// Every counter and gauge by its key with labels, e.g. `emitter_delivered_total{event=ping,listener=...}`.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<BTreeMap<String, f64>>>);

struct Cell {
    key: String,
    values: Collected,
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        *self
            .values
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value as f64;
    }

    fn absolute(&self, value: u64) {
        self.values
            .0
            .lock()
            .unwrap()
            .insert(self.key.clone(), value as f64);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        *self
            .values
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }

    fn decrement(&self, value: f64) {
        *self
            .values
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() -= value;
    }

    fn set(&self, value: f64) {
        self.values
            .0
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl Collected {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Cell {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            values: self.clone(),
        })
    }

    fn get(&self, key: &str) -> f64 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0.0)
    }
}

impl Recorder for Collected {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn counters_and_gauges_are_exported_with_event_and_listener_labels() {
    let collected = Collected::default();
    metrics::set_global_recorder(collected.clone()).unwrap();
    let (open, gate) = watch::channel(false);
    let emitter = Emitter::builder()
        .listeners(listeners![flaky])
        .state(gate)
        .capacity(Capacity::Bounded(3))
        .start()
        .await
        .unwrap();
    for n in 1..=3u32 {
        emit!(emitter, Ping, n).unwrap();
    }
    assert!(
        emit!(emitter, Ping, n = 4).is_err(),
        "the emitter holds three events"
    );
    assert_eq!(
        collected.get("emitter_queued{}") + collected.get("emitter_in_flight{}"),
        3.0
    );

    open.send_replace(true);
    emitter.shutdown().await.unwrap();

    let labels = "event=ping,listener=metrics_export::flaky";
    assert_eq!(collected.get("emitter_emitted_total{event=ping}"), 3.0);
    assert_eq!(collected.get("emitter_rejected_total{event=ping}"), 1.0);
    assert_eq!(
        collected.get(&format!("emitter_delivered_total{{{labels}}}")),
        2.0
    );
    assert_eq!(
        collected.get(&format!("emitter_retried_total{{{labels}}}")),
        1.0
    );
    assert_eq!(
        collected.get(&format!("emitter_failed_total{{{labels}}}")),
        1.0
    );
    assert_eq!(collected.get("emitter_queued{}"), 0.0);
    assert_eq!(collected.get("emitter_in_flight{}"), 0.0);
}
