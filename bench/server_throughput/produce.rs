//! The producer, in the coordinator, and the namespaces (schemas, key prefixes) of a run.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use emitter::durable::postgres::statements::Statements;
use emitter::durable::postgres::{PostgresConfig, PostgresStore};
use emitter::durable::redis::{RedisConfig, RedisStore};
use emitter::durable::{Durable, DurableConfig, Store};
use emitter::{listeners, Emitter};
use emitter_bench::profile::{Profile, Profiled, Stats};
use redis::Value;

use emitter_bench::{check, emit_each};

use crate::cli::{Backend, Side};
use crate::postgres_baseline::{pg, pg_connect, pg_produce};
use crate::redis_baseline::{rd, redis_connect, redis_produce, stream_key};
use crate::stats::{unix_nanos, Tally};
use crate::{count, Tick, LISTENER, RUN_LIMIT};

/// What the producer measured.
pub(crate) struct Produced {
    /// When the first event was emitted, in Unix nanoseconds (to place the workers' times).
    pub(crate) started_ns: u64,
    pub(crate) stored: Duration,
    pub(crate) total: Duration,
    pub(crate) profile: Option<Profile>,
}

/// The start of a run on both clocks: `Instant` for durations, the wall clock for the workers.
pub(crate) struct Clock {
    pub(crate) started: Instant,
    pub(crate) started_ns: u64,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            started_ns: unix_nanos(SystemTime::now()),
            started: Instant::now(),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Creates what a side needs before its workers start: the baseline's schema or consumer group.
/// The emitter's stores create their own at start; for PostgreSQL the schema is migrated here
/// once so that the workers find it, like the baseline's.
pub(crate) async fn prepare(
    backend: Backend,
    side: Side,
    url: &str,
    namespace: &str,
) -> Result<(), String> {
    match (backend, side) {
        (Backend::Postgres, Side::Emitter) => postgres_store(url, namespace)
            .await?
            .migrate()
            .await
            .map_err(|error| format!("cannot create the store's schema: {error}")),
        (Backend::Postgres, Side::Baseline) => {
            let client = pg_connect(url, None).await?;
            let sql = Statements::new(namespace);
            client
                .batch_execute(&format!(
                    "{};\n{};\n{};\n{};\n{}",
                    sql.schema_v1, sql.migrate_v2, sql.migrate_v3, sql.migrate_v4, sql.migrate_v5
                ))
                .await
                .map_err(pg("create the baseline's schema"))
        }
        (Backend::Redis, Side::Emitter) => Ok(()),
        (Backend::Redis, Side::Baseline) => {
            let mut conn = redis_connect(url).await?;
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream_key(namespace))
                .arg(LISTENER)
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<Value>(&mut conn)
                .await
                .map(drop)
                .map_err(rd("create the consumer group"))
        }
    }
}

/// Drops a run's schema or keys.
pub(crate) async fn cleanup(backend: Backend, url: &str, namespace: &str) -> Result<(), String> {
    match backend {
        Backend::Postgres => {
            let client = pg_connect(url, None).await?;
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{namespace}\" CASCADE"))
                .await
                .map_err(pg("drop the run's schema"))
        }
        Backend::Redis => {
            let mut conn = redis_connect(url).await?;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{namespace}:*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(rd("list the run's keys"))?;
                if !keys.is_empty() {
                    redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async::<Value>(&mut conn)
                        .await
                        .map_err(rd("delete the run's keys"))?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        }
    }
}

/// Stores `events` events and waits for the store to settle; the clock runs in here.
pub(crate) async fn produce(
    backend: Backend,
    side: Side,
    url: &str,
    namespace: &str,
    events: u64,
    profile: bool,
) -> Result<Produced, String> {
    match (backend, side) {
        (Backend::Postgres, Side::Emitter) => {
            emitter_produce(postgres_store(url, namespace).await?, events, profile).await
        }
        (Backend::Redis, Side::Emitter) => {
            emitter_produce(redis_store(url, namespace).await?, events, profile).await
        }
        (Backend::Postgres, Side::Baseline) => pg_produce(url, namespace, events).await,
        (Backend::Redis, Side::Baseline) => redis_produce(url, namespace, events).await,
    }
}

pub(crate) async fn postgres_store(url: &str, namespace: &str) -> Result<PostgresStore, String> {
    PostgresConfig::new(url)
        .schema(namespace)
        .connect()
        .await
        .map_err(|error| format!("cannot connect the PostgreSQL store: {error}"))
}

pub(crate) async fn redis_store(url: &str, namespace: &str) -> Result<RedisStore, String> {
    RedisConfig::new(url)
        .prefix(namespace)
        .connect()
        .await
        .map_err(|error| format!("cannot connect the Redis store: {error}"))
}

pub(crate) async fn emitter_produce<S: Store>(
    store: S,
    events: u64,
    profile: bool,
) -> Result<Produced, String> {
    if !profile {
        return emitter_produce_with(store, events).await;
    }
    let stats = Arc::new(Stats::default());
    let mut produced = emitter_produce_with(
        Profiled {
            store,
            stats: Arc::clone(&stats),
        },
        events,
    )
    .await?;
    produced.profile = Some(stats.snapshot());
    Ok(produced)
}

pub(crate) async fn emitter_produce_with<S: Store>(
    store: S,
    events: u64,
) -> Result<Produced, String> {
    let backend = Durable::with_config(store, DurableConfig::default().deliver(false));
    let emitter = Emitter::builder()
        .listeners(listeners![count])
        // Never used here (this process delivers nothing), but the listener asks for it.
        .state(Tally::new(0))
        .backend(backend.clone())
        .start()
        .await
        .map_err(|error| format!("the producer's emitter did not start: {error}"))?;
    let clock = Clock::start();
    let timed = tokio::time::timeout(RUN_LIMIT, async {
        emit_each(&emitter, (0..events).map(|n| Tick { n })).await?;
        // On a durable backend an emit is pending until the writer stored it: once idle, every
        // event is in the store, and `wait_settled` cannot mistake "not yet stored" for "done".
        emitter.wait_idle().await;
        let stored = clock.elapsed();
        backend
            .wait_settled()
            .await
            .map_err(|error| format!("wait_settled failed: {error}"))?;
        Ok::<_, String>((stored, clock.elapsed()))
    })
    .await;
    let Ok(timed) = timed else {
        let counts = backend.counts().await;
        return Err(format!(
            "the run did not settle within {RUN_LIMIT:?}; the store counts {counts:?}"
        ));
    };
    let (stored, total) = timed?;
    check(
        "producer metrics: emitted",
        emitter.metrics().emitted,
        events,
    )?;
    let counts = backend
        .counts()
        .await
        .map_err(|error| format!("counts failed: {error}"))?;
    check("store: unfinished deliveries", counts.unfinished(), 0)?;
    check("store: dead letters", counts.dead, 0)?;
    emitter
        .shutdown()
        .await
        .map_err(|error| format!("the producer's shutdown failed: {error}"))?;
    Ok(Produced {
        started_ns: clock.started_ns,
        stored,
        total,
        profile: None,
    })
}

/// The baseline's emit ids: 128 bits like the emitter's, a per-process high half and a count.
pub(crate) fn emit_id(n: u64) -> String {
    let process = u128::from(std::process::id()) << 64;
    format!("{:032x}", process | u128::from(n))
}
