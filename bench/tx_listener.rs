//! A transactional listener (`tx: &PgTx`) against a plain listener doing the same insert in a
//! transaction of its own, on PostgreSQL, end to end, in one process.
//!
//! ```sh
//! cargo run --release -p emitter-bench --features postgres --example tx_listener
//! cargo run --release -p emitter-bench --features postgres --example tx_listener -- --quick
//! ```
//!
//! Each side stores N events (10,000; `--quick`: 2,000) with an emitter that delivers nothing,
//! then starts a worker and times from its start until the store holds nothing unfinished. Both
//! workers use the store with an 8-connection pool and the default `DurableConfig`; each
//! delivery inserts one row into an application table.
//!
//! - **transactional**: the listener takes `tx: &PgTx` and runs `INSERT` on it; the worker
//!   deletes the delivery in the same transaction and commits (`BEGIN`, `INSERT`, `DELETE`,
//!   `COMMIT` on one pooled connection).
//! - **plain**: the listener runs `BEGIN`, `INSERT`, `COMMIT` on one of 8 connections of its own;
//!   the worker acknowledges the delivery afterwards, batched with others, as for any listener.
//!
//! The two sides alternate which runs first, for 3 rounds (`--quick`: 1) after a warm-up round;
//! the program prints each round, the medians and the ratio transactional/plain. Every run is
//! checked (one row per event, the store empty): a mismatch makes the program exit with
//! status 1. A private PostgreSQL server is started (the tests' harness), unless
//! `--postgres-url URL` names one.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use emitter::durable::postgres::{PgTx, PostgresConfig, PostgresStore};
use emitter::durable::{Durable, DurableConfig};
use emitter::{listener, listeners, BoxError, Emitter, Event, State};
use emitter_tests::servers::Postgres;
use tokio_postgres::{Client, NoTls};

const EVENTS: i64 = 10_000;
const QUICK_EVENTS: i64 = 2_000;
/// The store's pool, and the plain listener's own connections.
const CONNECTIONS: usize = 8;

#[derive(Event, Debug, Clone)]
#[event(id = "tx_bench.numbered")]
pub struct Numbered {
    pub n: i64,
}

/// The plain listener's connections, taken in turn.
#[derive(Clone)]
struct Connections {
    clients: Arc<Vec<tokio::sync::Mutex<Client>>>,
    next: Arc<AtomicUsize>,
}

#[listener(events = [Numbered], name = "tx_bench.transactional")]
async fn transactional(n: i64, tx: &PgTx) -> Result<(), BoxError> {
    tx.execute("INSERT INTO effects (n) VALUES ($1)", &[&n])
        .await?;
    Ok(())
}

#[listener(events = [Numbered], name = "tx_bench.plain")]
async fn plain(n: i64, State(connections): State<Connections>) -> Result<(), BoxError> {
    let turn = connections.next.fetch_add(1, Ordering::Relaxed) % connections.clients.len();
    let mut client = connections.clients[turn].lock().await;
    let transaction = client.transaction().await?;
    transaction
        .execute("INSERT INTO effects (n) VALUES ($1)", &[&n])
        .await?;
    transaction.commit().await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Transactional,
    Plain,
}

async fn connect(url: &str) -> Result<Client, BoxError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn store(url: &str, schema: &str) -> Result<PostgresStore, BoxError> {
    Ok(PostgresConfig::new(url)
        .schema(schema)
        .pool_size(CONNECTIONS)
        .connect()
        .await?)
}

/// One run of `side`: events per second.
async fn run(side: Side, url: &str, events: i64, round: usize) -> Result<f64, BoxError> {
    let schema = format!(
        "tx_bench_{}_{round}",
        if side == Side::Plain { "plain" } else { "tx" }
    );
    let app = connect(url).await?;
    app.batch_execute("DROP TABLE IF EXISTS effects; CREATE TABLE effects (n bigint NOT NULL)")
        .await?;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(tokio::sync::Mutex::new(connect(url).await?));
    }
    let connections = Connections {
        clients: Arc::new(clients),
        next: Arc::new(AtomicUsize::new(0)),
    };
    let chosen = match side {
        Side::Transactional => listeners![transactional],
        Side::Plain => listeners![plain],
    };

    // Store every event first, with an emitter that delivers nothing.
    let producer = Emitter::builder()
        .listeners(chosen)
        .state(connections.clone())
        .backend(Durable::with_config(
            store(url, &schema).await?,
            DurableConfig::default().deliver(false),
        ))
        .start()
        .await?;
    for n in 0..events {
        producer.emit_async(Numbered { n }).await?;
    }
    producer.shutdown().await?;

    let started = Instant::now();
    let backend = Durable::with_config(
        store(url, &schema).await?,
        DurableConfig::default().poll_interval(Duration::from_millis(10)),
    );
    let worker = Emitter::builder()
        .listeners(chosen)
        .state(connections)
        .backend(backend.clone())
        .start()
        .await?;
    tokio::time::timeout(Duration::from_secs(600), backend.wait_settled()).await??;
    let took = started.elapsed();
    worker.shutdown().await?;

    let row = app
        .query_one("SELECT count(*), count(DISTINCT n) FROM effects", &[])
        .await?;
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    let left = backend.counts().await?;
    if rows != events || distinct != events || left.unfinished() + left.dead != 0 {
        return Err(format!(
            "{side:?}: {rows} rows, {distinct} distinct for {events} events, {left:?} left"
        )
        .into());
    }
    Ok(events as f64 / took.as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let url_arg = args
        .iter()
        .position(|arg| arg == "--postgres-url")
        .and_then(|at| args.get(at + 1).cloned());
    let (events, rounds) = if quick {
        (QUICK_EVENTS, 1)
    } else {
        (EVENTS, 3)
    };
    let server = if url_arg.is_none() {
        match Postgres::start() {
            Some(server) => Some(server),
            None => {
                eprintln!("no PostgreSQL server: set EMITTER_PG_BIN or pass --postgres-url URL");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let url = url_arg.unwrap_or_else(|| server.as_ref().map(Postgres::url).unwrap_or_default());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), BoxError> = runtime.block_on(async {
        // Warm-up: connections, the server's caches.
        run(Side::Transactional, &url, events / 4, 0).await?;
        run(Side::Plain, &url, events / 4, 0).await?;
        let (mut tx, mut plain) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let order = if round % 2 == 1 {
                [Side::Transactional, Side::Plain]
            } else {
                [Side::Plain, Side::Transactional]
            };
            for side in order {
                let rate = run(side, &url, events, round).await?;
                println!("round {round}: {side:?}: {events} events at {rate:.0}/s");
                match side {
                    Side::Transactional => tx.push(rate),
                    Side::Plain => plain.push(rate),
                }
            }
        }
        let (tx, plain) = (median(&mut tx), median(&mut plain));
        println!(
            "median: transactional {tx:.0}/s, plain {plain:.0}/s, ratio transactional/plain {:.2}",
            tx / plain
        );
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tx_listener: {error}");
            ExitCode::FAILURE
        }
    }
}
