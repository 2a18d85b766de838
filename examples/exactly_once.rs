//! Exactly-once effects on SQLite: a listener whose writes commit together with the
//! acknowledgement of its delivery, and events emitted in the application's own transaction.
//!
//! - `place_order` inserts an order and emits `OrderPlaced` in one transaction
//!   (`Durable::emit_in`): the order and its event exist together, or neither does.
//! - `book_revenue` takes `tx: &SqliteTx`: it runs in a transaction on the store's file, adds a
//!   row to the ledger and emits `ReceiptDue` in that transaction. Its first attempt fails after
//!   writing (as a crash or a bug would): the row and the follow-up are rolled back with it, and
//!   the retry books the order once. The ledger ends with exactly one row per order, however
//!   often the listener ran.
//! - `send_receipt` is an ordinary listener: an effect outside the database (an email) stays at
//!   least once, so it is written to be idempotent.
//!
//! `cargo run --example exactly_once --features sqlite [-- path/to/app.db]` (default: `app.db`
//! in the current directory).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use emitter::durable::sqlite::rusqlite::{params, Connection};
use emitter::durable::sqlite::{SqliteStore, SqliteTx};
use emitter::durable::{Durable, DurableConfig};
use emitter::{listener, listeners, BoxError, EmitOptions, Emitter, Event, EventMeta, State};

/// An order was placed.
#[derive(Event, Debug, Clone)]
pub struct OrderPlaced {
    pub order: i64,
    pub cents: i64,
}

/// A receipt is to be sent for a booked order.
#[derive(Event, Debug, Clone)]
pub struct ReceiptDue {
    pub order: i64,
}

/// What the listeners did, for `main` to print and the test to check.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        println!("  {line}");
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Books the order in the ledger and asks for its receipt, in the listener's transaction.
#[listener(events = [OrderPlaced], attempts = 3, backoff = "10ms..10ms")]
async fn book_revenue(
    order: i64,
    cents: i64,
    meta: EventMeta,
    tx: &SqliteTx,
    State(log): State<Log>,
    State(backend): State<Durable<SqliteStore>>,
) -> Result<(), BoxError> {
    tx.with(|conn| {
        conn.execute(
            "INSERT INTO ledger (order_id, cents) VALUES (?1, ?2)",
            params![order, cents],
        )
    })?;
    tx.with(|conn| -> Result<_, BoxError> {
        Ok(backend.emit_in(conn, ReceiptDue { order }, EmitOptions::new())?)
    })?;
    if meta.attempt() == 1 {
        log.push(format!(
            "order #{order}: booked, then failed (attempt 1): rolled back"
        ));
        return Err("the ledger service hiccuped".into());
    }
    log.push(format!(
        "order #{order}: booked (attempt {})",
        meta.attempt()
    ));
    Ok(())
}

/// Sends the receipt: outside the database, so at least once.
#[listener(events = [ReceiptDue])]
async fn send_receipt(order: i64, State(log): State<Log>) {
    log.push(format!("order #{order}: receipt sent"));
}

/// What the run came to.
pub struct Summary {
    /// What the listeners said.
    pub lines: Vec<String>,
    /// The ledger's rows: `(order, cents)`.
    pub ledger: Vec<(i64, i64)>,
    /// Deliveries left in the store (unfinished, dead).
    pub left: (u64, u64),
}

/// Places three orders and waits until everything they started is done.
pub async fn run(path: &Path) -> Result<Summary, Box<dyn Error>> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, cents INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS ledger (order_id INTEGER NOT NULL, cents INTEGER NOT NULL);
         DELETE FROM orders; DELETE FROM ledger;",
    )?;
    let backend = Durable::with_config(
        SqliteStore::open(path)?,
        DurableConfig::default().poll_interval(Duration::from_millis(20)),
    );
    let log = Log::default();
    let emitter = Emitter::builder()
        .listeners(listeners![book_revenue, send_receipt])
        .state(log.clone())
        .state(backend.clone())
        .backend(backend.clone())
        .start()
        .await?;

    for (order, cents) in [(1, 1_250), (2, 990), (3, 4_000)] {
        let transaction = conn.transaction()?;
        transaction.execute(
            "INSERT INTO orders (id, cents) VALUES (?1, ?2)",
            params![order, cents],
        )?;
        backend.emit_in(
            &transaction,
            OrderPlaced { order, cents },
            EmitOptions::new(),
        )?;
        transaction.commit()?;
    }
    // Rolled back: neither the order nor its event exists.
    let transaction = conn.transaction()?;
    transaction.execute("INSERT INTO orders (id, cents) VALUES (4, 100)", [])?;
    backend.emit_in(
        &transaction,
        OrderPlaced {
            order: 4,
            cents: 100,
        },
        EmitOptions::new(),
    )?;
    transaction.rollback()?;

    emitter.wait_idle().await;
    // The receipts were emitted in the listener's transactions: wait for them too.
    backend.wait_settled().await?;
    let counts = backend.counts().await?;
    emitter.shutdown().await?;

    let mut statement = conn.prepare("SELECT order_id, cents FROM ledger ORDER BY order_id")?;
    let ledger = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Summary {
        lines: log.lines(),
        ledger,
        left: (counts.unfinished(), counts.dead),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("app.db"), PathBuf::from);
    println!("placing orders in {}:", path.display());
    let summary = run(&path).await?;
    println!("ledger (one row per order, whatever the retries):");
    for (order, cents) in &summary.ledger {
        println!("  order #{order}: {cents} cents");
    }
    Ok(())
}
