//! Quickstart: one event, two listeners, a few emits, and a shutdown that waits for them.
//!
//! `cargo run --example quickstart`

use std::error::Error;
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, Emitter, Event, State};

#[derive(Event)]
pub struct OrderPlaced {
    pub order: u64,
    pub email: String,
}

/// What the listeners did, shared with them as `State<Journal>`.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn record(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

// Listeners register themselves at link time: there is no list to keep up to date.
#[listener(events = [OrderPlaced])]
async fn send_receipt(order: u64, email: &str, journal: State<Journal>) {
    journal.record(format!("receipt for order {order} sent to {email}"));
}

#[listener(events = [OrderPlaced])]
async fn reserve_stock(order: u64, journal: State<Journal>) {
    journal.record(format!("stock reserved for order {order}"));
}

/// Places two orders and returns what the listeners did, sorted: they run concurrently.
pub async fn run() -> Result<Vec<String>, Box<dyn Error>> {
    let journal = Journal::default();
    let emitter = Emitter::builder().state(journal.clone()).start().await?;
    emit!(emitter, OrderPlaced, order = 1, email = "ada@example.com")?;
    emit!(emitter, OrderPlaced, order = 2, email = "grace@example.com")?;
    emitter.shutdown().await?; // returns once every listener has finished
    let mut lines = journal.0.lock().unwrap().clone();
    lines.sort();
    Ok(lines)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    for line in run().await? {
        println!("{line}");
    }
    Ok(())
}
