//! Durable delivery on SQLite: events survive the process, failures retry and then wait as dead
//! letters, which are inspected and replayed.
//!
//! Moving from the in-memory backend is one builder line:
//! `.backend(Durable::new(SqliteStore::open(path)?))`. This example then shows:
//!
//! - an invoice listener that fails its first attempt (the printer is warming up) and succeeds
//!   on the retry, as its `attempts`/`backoff` say;
//! - a webhook listener that keeps failing for one customer until its attempts run out: the
//!   delivery becomes a dead letter, which is listed with its reason, fixed and replayed;
//! - a reminder emitted with a delay, and an emit deduplicated by its idempotency key;
//! - everything stored in one SQLite file, which a restarted process would pick up.
//!
//! `cargo run --example durable --features sqlite [-- path/to/events.db]` (default:
//! `events.db` in the current directory; `emitter status --url sqlite://events.db` then shows
//! what it holds).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{Durable, DurableConfig};
use emitter::{listener, listeners, EmitOptions, Emitter, Event, EventMeta, State};

/// An order was paid.
#[derive(Event, Debug, Clone)]
pub struct OrderPaid {
    pub order: u64,
    pub customer: String,
}

/// A reminder to send later.
#[derive(Event, Debug, Clone)]
pub struct ReminderDue {
    pub order: u64,
}

/// What the listeners did, for `main` to print and the test to check.
#[derive(Clone, Default)]
pub struct Log {
    lines: Arc<Mutex<Vec<String>>>,
    /// Whether the customer's webhook endpoint is fixed.
    pub webhook_fixed: Arc<AtomicBool>,
}

impl Log {
    fn push(&self, line: String) {
        println!("  {line}");
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[listener(events = [OrderPaid], name = "billing.print_invoice", attempts = 3, backoff = "100ms..1s")]
async fn print_invoice(order: u64, meta: EventMeta, State(log): State<Log>) -> Result<(), String> {
    if meta.attempt() == 1 {
        log.push(format!("invoice #{order}: printer warming up (attempt 1)"));
        return Err("the printer is warming up".into());
    }
    log.push(format!(
        "invoice #{order}: printed (attempt {})",
        meta.attempt()
    ));
    Ok(())
}

#[listener(events = [OrderPaid], name = "integrations.webhook", attempts = 2, backoff = "50ms..50ms")]
async fn call_webhook(order: u64, customer: &str, State(log): State<Log>) -> Result<(), String> {
    if customer == "globex" && !log.webhook_fixed.load(Ordering::SeqCst) {
        return Err(format!("{customer}'s endpoint answered 503"));
    }
    log.push(format!("webhook for #{order}: {customer} notified"));
    Ok(())
}

#[listener(events = [ReminderDue], name = "mail.reminder")]
async fn send_reminder(order: u64, meta: EventMeta, State(log): State<Log>) {
    let waited = meta.emitted_at().elapsed().unwrap_or_default();
    log.push(format!(
        "reminder for #{order}: sent {} ms after it was emitted",
        waited.as_millis()
    ));
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// The listeners' lines.
    pub lines: Vec<String>,
    /// The dead letters found before replaying, as `(listener, reason)`.
    pub dead: Vec<(String, String)>,
    /// Deliveries left unfinished in the store at the end (none).
    pub unfinished: u64,
}

/// Runs the story against the SQLite file at `path`.
pub async fn run(path: &Path) -> Result<Summary, Box<dyn Error>> {
    let log = Log::default();
    let backend = Durable::with_config(
        SqliteStore::open(path)?,
        DurableConfig::default().poll_interval(Duration::from_millis(50)),
    );
    let emitter = Emitter::builder()
        .listeners(listeners![print_invoice, call_webhook, send_reminder])
        .state(log.clone())
        .backend(backend.clone())
        .start()
        .await?;

    println!("emitting two paid orders, a delayed reminder, and a retried request twice:");
    emitter
        .emit_async(OrderPaid {
            order: 1,
            customer: "acme".into(),
        })
        .await?;
    emitter
        .emit_async(OrderPaid {
            order: 2,
            customer: "globex".into(),
        })
        .await?;
    emitter.emit_after(Duration::from_millis(300), ReminderDue { order: 1 })?;
    for _ in 0..2 {
        // A client retrying its request: the key makes the second emit a no-op.
        emitter.emit_with(
            OrderPaid {
                order: 3,
                customer: "initech".into(),
            },
            EmitOptions::new().idempotency_key("order-3-paid"),
        )?;
    }
    backend.wait_settled().await?;

    let letters = backend.dead_letters(100).await?;
    println!("dead letters: {}", letters.len());
    let mut dead = Vec::new();
    for letter in &letters {
        println!(
            "  {} on {} after {} attempts: {}\n    payload: {}",
            letter.listener,
            letter.event.event_id,
            letter.attempts,
            letter.reason,
            letter.payload_text()
        );
        dead.push((letter.listener.clone(), letter.reason.clone()));
    }

    println!("the endpoint is fixed; replaying:");
    log.webhook_fixed.store(true, Ordering::SeqCst);
    for letter in &letters {
        backend.replay(&letter.id).await?;
    }
    backend.wait_settled().await?;
    let unfinished = backend.counts().await?.unfinished();
    emitter.shutdown().await?;
    Ok(Summary {
        lines: log.lines(),
        dead,
        unfinished,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // In the current directory by default, where `emitter status --url sqlite://events.db`
    // finds it afterwards.
    let path: PathBuf = std::env::args()
        .nth(1)
        .map_or_else(|| "events.db".into(), Into::into);
    println!("storing events in {}", path.display());
    let summary = run(&path).await?;
    println!(
        "done: {} listener runs logged, {} deliveries unfinished",
        summary.lines.len(),
        summary.unfinished
    );
    println!(
        "look at the store: cargo run -p emitter-cli -- status --url sqlite://{}",
        path.display()
    );
    Ok(())
}
