//! A `State<T>` parameter can be destructured in the signature, as in axum: the listener then
//! works with the `T` itself, without `.0`.
use std::sync::{Arc, Mutex};

use emitter::{listener, Event, State};

#[derive(Event)]
pub struct OrderPlaced {
    pub order: u64,
}

#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<u64>>>);

#[listener(events = [OrderPlaced])]
async fn record(order: u64, State(journal): State<Journal>) {
    if let Ok(mut lines) = journal.0.lock() {
        lines.push(order);
    }
}

#[listener(events = [OrderPlaced])]
fn record_sync(order: u64, State(journal): State<Journal>) {
    if let Ok(mut lines) = journal.0.lock() {
        lines.push(order);
    }
}

fn main() {
    let journal = Journal::default();
    block_on(record(7, State(journal.clone())));
    record_sync(8, State(journal.clone()));
    assert_eq!(*journal.0.lock().unwrap(), [7, 8]);
}

/// Runs a future that never waits.
fn block_on(future: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(future);
}
