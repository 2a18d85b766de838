//! The operator's listing on a large store: the first page of one listener's waiting deliveries
//! among 1,000,000 stored, on SQLite and PostgreSQL, against the same listing on a store of
//! 1,000 (the baseline: what a listing costs when the backlog is small), in the same run.
//!
//! ```sh
//! EMITTER_PG_BIN=/usr/lib/postgresql/15/bin \
//!   cargo run --release -p emitter-bench --features sqlite,postgres --example admin_listing
//! cargo run ... --example admin_listing -- --quick   # 100,000 instead of 1,000,000
//! cargo run ... --example admin_listing -- --no-analyze   # PostgreSQL without statistics
//! cargo run ... --example admin_listing -- --explain      # and PostgreSQL's plans of the listing
//! ```
//!
//! Each store is filled through `Store::insert` as the engine fills it (batches of 1,000 emits,
//! each to one of 10 listeners in turn, all due now), then `ANALYZE`d where the store has
//! statistics (PostgreSQL: as autovacuum would after a bulk load). Each query runs 5 times to
//! warm up, then 50 times; the program prints the median and the 95th percentile of each:
//! the first page (50) of one listener's waiting deliveries, a page 1,000 deliveries deep
//! (through its cursor), the first page across all listeners, and the counts per listener (the
//! `status` command's query, which counts every row and so grows with the store).

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::admin::{DeliveryState, Filter, Query};
use emitter::durable::postgres::PostgresConfig;
use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{Admin, NewEmit, Route, Setup, StoredEvent};
use emitter::EmitId;
use emitter_tests::servers::Postgres;

const LISTENERS: [&str; 10] = [
    "bench.l0", "bench.l1", "bench.l2", "bench.l3", "bench.l4", "bench.l5", "bench.l6", "bench.l7",
    "bench.l8", "bench.l9",
];
const BATCH: u64 = 1_000;
const PAGE: usize = 50;
const WARM_UP: usize = 5;
const RUNS: usize = 50;

fn setup() -> Setup {
    Setup::new(
        vec![Route {
            event_id: "bench.event",
            listeners: LISTENERS.to_vec(),
        }],
        Duration::from_secs(3600),
    )
}

async fn fill(store: &impl Admin, deliveries: u64) -> Result<Duration, String> {
    store.open(&setup()).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let now = SystemTime::now();
    let mut n = 0;
    while n < deliveries {
        let emits: Vec<NewEmit> = (n..(n + BATCH).min(deliveries))
            .map(|n| {
                let event = StoredEvent::new(
                    "bench.event".to_owned(),
                    EmitId::from_u128(u128::from(n) + 1),
                    now,
                    format!("{{\"n\":{n}}}").into_bytes(),
                );
                let listener = LISTENERS[(n % LISTENERS.len() as u64) as usize];
                NewEmit::new(event, vec![listener], now, None)
            })
            .collect();
        n += emits.len() as u64;
        store.insert(&emits).await.map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed())
}

/// Median and 95th percentile of `RUNS` runs of `query`, after `WARM_UP`.
async fn measure<F, Fut>(query: F) -> Result<(Duration, Duration), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, String>>,
{
    for _ in 0..WARM_UP {
        query().await?;
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let listed = query().await?;
        times.push(started.elapsed());
        if listed == 0 {
            return Err("a listing came back empty".to_owned());
        }
    }
    times.sort();
    Ok((times[RUNS / 2], times[RUNS * 95 / 100]))
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Measures every query on `store`; one line per query.
async fn queries(store: &impl Admin) -> Result<Vec<(&'static str, (Duration, Duration))>, String> {
    let one = Filter::new().listener(LISTENERS[3]);
    let first_page = || async {
        let query = Query::new(DeliveryState::Waiting)
            .filter(one.clone())
            .limit(PAGE);
        let page = store.deliveries(&query).await.map_err(|e| e.to_string())?;
        Ok(page.deliveries.len())
    };
    // The cursor of the page that ends 1,000 deliveries in.
    let mut cursor = None;
    for _ in 0..(1000 / 500) {
        let query = Query::new(DeliveryState::Waiting)
            .filter(one.clone())
            .cursor(cursor)
            .limit(500);
        cursor = store
            .deliveries(&query)
            .await
            .map_err(|e| e.to_string())?
            .next;
    }
    let deep_page = || async {
        let query = Query::new(DeliveryState::Waiting)
            .filter(one.clone())
            .cursor(cursor.clone())
            .limit(PAGE);
        let page = store.deliveries(&query).await.map_err(|e| e.to_string())?;
        Ok(page.deliveries.len())
    };
    let all_first_page = || async {
        let query = Query::new(DeliveryState::Waiting).limit(PAGE);
        let page = store.deliveries(&query).await.map_err(|e| e.to_string())?;
        Ok(page.deliveries.len())
    };
    let counts = || async {
        let counts = store.listener_counts().await.map_err(|e| e.to_string())?;
        Ok(counts.len())
    };
    Ok(vec![
        ("first page, one listener", measure(first_page).await?),
        ("page 1,000 deep, one listener", measure(deep_page).await?),
        ("first page, all listeners", measure(all_first_page).await?),
        ("counts per listener", measure(counts).await?),
    ])
}

async fn compare<S: Admin>(
    name: &str,
    open: impl AsyncFn(&str) -> Result<S, String>,
    analyze: impl AsyncFn(&str) -> Result<(), String>,
    large: u64,
) -> Result<(), String> {
    let mut results = Vec::new();
    for (namespace, size) in [("small", 1_000), ("large", large)] {
        let store = open(namespace).await?;
        let filled = fill(&store, size).await?;
        analyze(namespace).await?;
        println!(
            "{name}: {size} deliveries stored in {:.1} s",
            filled.as_secs_f64()
        );
        results.push((size, queries(&store).await?));
    }
    println!("{name}: median / p95 of {RUNS} runs");
    for (index, (query, _)) in results[0].1.iter().enumerate() {
        let cell = |at: usize| {
            let (median, p95) = results[at].1[index].1;
            format!("{} / {}", ms(median), ms(p95))
        };
        println!(
            "  {query:<32} {:>6}: {:<22} {:>9}: {}",
            results[0].0,
            cell(0),
            results[1].0,
            cell(1)
        );
    }
    Ok(())
}

/// PostgreSQL's plans (custom and generic) of the waiting listing of one listener and of all.
fn explain(server: &Postgres, schema: &str) {
    let sql = include_str!("../emitter/src/durable/postgres/sql/admin/waiting.sql")
        .replace("{deliveries}", &format!("{schema}.deliveries"));
    let types = "text, timestamptz, int8, timestamptz, timestamptz, int8, text, text";
    for (mode, listener) in [
        ("force_custom_plan", "'bench.l3'"),
        ("force_generic_plan", "'bench.l3'"),
        ("force_generic_plan", "NULL"),
    ] {
        println!("-- {mode}, listener {listener}");
        println!(
            "{}",
            server.psql(&format!(
                "SET plan_cache_mode = {mode}; PREPARE w({types}) AS {sql};
                 EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE w({listener}, 'epoch', 0, \
                 NULL, NULL, 50, NULL, NULL);"
            ))
        );
    }
}

async fn run(large: u64, statistics: bool, plans: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().to_owned();
    compare(
        "SQLite",
        async |name: &str| {
            SqliteStore::open(path.join(format!("{name}.db"))).map_err(|e| e.to_string())
        },
        async |_: &str| Ok(()),
        large,
    )
    .await?;

    let server = Postgres::start().ok_or("PostgreSQL is not installed (set EMITTER_PG_BIN)")?;
    let url = server.url();
    compare(
        "PostgreSQL",
        async |name: &str| {
            PostgresConfig::new(url.clone())
                .schema(name)
                .connect()
                .await
                .map_err(|e| e.to_string())
        },
        async |name: &str| {
            if statistics {
                server.psql(&format!("ANALYZE {name}.deliveries"));
            }
            if plans && name == "large" {
                explain(&server, name);
            }
            Ok(())
        },
        large,
    )
    .await
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let large = if quick { 100_000 } else { 1_000_000 };
    let statistics = !std::env::args().any(|arg| arg == "--no-analyze");
    let plans = std::env::args().any(|arg| arg == "--explain");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(large, statistics, plans)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("admin_listing failed: {error}");
            ExitCode::FAILURE
        }
    }
}
