//! The PostgreSQL baseline: the store's own statements, with the raw client.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::SystemTime;

use emitter::durable::postgres::statements::Statements;
use tokio::sync::Notify;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

use emitter_bench::check;

use crate::produce::{emit_id, Clock, Produced};
use crate::stats::Tally;
use crate::workers::{say_ready, wake, Stop, WorkerReport};
use crate::{
    Tick, CLAIM_LIMIT, EVENT_ID, IDLE_WAIT, INSERT_BATCH, LEASE, LISTENER, RUN_LIMIT, SETTLE_POLL,
};

pub(crate) async fn pg_produce(
    url: &str,
    namespace: &str,
    events: u64,
) -> Result<Produced, String> {
    let client = pg_connect(url, None).await?;
    let sql = Statements::new(namespace);
    let insert = client
        .prepare(&sql.insert_unkeyed.text)
        .await
        .map_err(pg("prepare the insert"))?;
    let counts = client
        .prepare(&sql.counts.text)
        .await
        .map_err(pg("prepare the count"))?;
    let clock = Clock::start();
    let (stored, total) = tokio::time::timeout(RUN_LIMIT, async {
        let mut next = 0;
        while next < events {
            let end = (next + INSERT_BATCH as u64).min(events);
            let now = SystemTime::now();
            let len = usize::try_from(end - next).unwrap_or(0);
            let mut event_ids = Vec::with_capacity(len);
            let mut emit_ids = Vec::with_capacity(len);
            let mut emitted_at = Vec::with_capacity(len);
            let mut payloads = Vec::with_capacity(len);
            let mut listener_emit = Vec::with_capacity(len);
            for n in next..end {
                let payload = serde_json::to_vec(&Tick { n })
                    .map_err(|error| format!("cannot encode event {n}: {error}"))?;
                event_ids.push(EVENT_ID);
                emit_ids.push(emit_id(n));
                emitted_at.push(now);
                payloads.push(payload);
                listener_emit.push(i64::try_from(listener_emit.len() + 1).unwrap_or(i64::MAX));
            }
            // Due now, one delivery each, to the one listener.
            let due_in = vec![0_i64; len];
            let listeners = vec![LISTENER; len];
            let traces: Vec<Option<&str>> = vec![None; len];
            let versions = vec![1_i32; len];
            let row = client
                .query_one(
                    &insert,
                    &[
                        &event_ids,
                        &emit_ids,
                        &emitted_at,
                        &payloads,
                        &due_in,
                        &listener_emit,
                        &listeners,
                        &traces,
                        &versions,
                    ],
                )
                .await
                .map_err(pg("insert"))?;
            let stored: i64 = row.try_get(0).map_err(pg("read the insert's count"))?;
            check(
                "rows inserted",
                u64::try_from(stored).unwrap_or(0),
                end - next,
            )?;
            next = end;
        }
        let stored = clock.elapsed();
        loop {
            let row = client
                .query_one(&counts, &[])
                .await
                .map_err(pg("count the deliveries"))?;
            let count = |index: usize| -> Result<i64, String> {
                row.try_get(index).map_err(pg("read a count"))
            };
            let (waiting, leased, dead) = (count(0)?, count(1)?, count(2)?);
            check("baseline dead letters", u64::try_from(dead).unwrap_or(1), 0)?;
            if waiting + leased == 0 {
                break;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        Ok::<_, String>((stored, clock.elapsed()))
    })
    .await
    .map_err(|_| format!("the run did not settle within {RUN_LIMIT:?}"))??;
    Ok(Produced {
        started_ns: clock.started_ns,
        stored,
        total,
        profile: None,
    })
}

pub(crate) async fn pg_worker(
    url: &str,
    namespace: &str,
    tally: Tally,
    stop: Stop,
) -> Result<WorkerReport, String> {
    let sql = Statements::new(namespace);
    let client = pg_connect(url, None).await?;
    let listen = pg_connect(url, Some(Arc::clone(&stop.wake))).await?;
    listen
        .batch_execute(&format!("LISTEN \"{namespace}_deliveries\""))
        .await
        .map_err(pg("listen"))?;
    let claim = client
        .prepare(&sql.claim.text)
        .await
        .map_err(pg("prepare the claim"))?;
    let delete = client
        .prepare(&sql.ack.text)
        .await
        .map_err(pg("prepare the delete"))?;
    let worker = format!("baseline-{}", std::process::id());
    let listeners = vec![LISTENER];
    let limit = CLAIM_LIMIT as i64;
    let lease = LEASE.as_millis() as i64;
    say_ready();
    while !stop.is_set() {
        let rows = client
            .query(&claim, &[&listeners, &limit, &lease, &worker])
            .await
            .map_err(pg("claim"))?;
        if rows.is_empty() {
            let _ = tokio::time::timeout(IDLE_WAIT, stop.wake.notified()).await;
            continue;
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut leases = Vec::with_capacity(rows.len());
        for row in &rows {
            // Every column the store reads, read the same way.
            let read = |error| format!("a claimed row is unreadable: {error}");
            let id: i64 = row.try_get("id").map_err(read)?;
            let lease: i64 = row.try_get("lease").map_err(read)?;
            let _attempt: i32 = row.try_get("attempt").map_err(read)?;
            let _due: SystemTime = row.try_get("due").map_err(read)?;
            let _listener: String = row.try_get("listener").map_err(read)?;
            let _event_id: String = row.try_get("event_id").map_err(read)?;
            let emit_id: String = row.try_get("emit_id").map_err(read)?;
            let _emitted_at: SystemTime = row.try_get("emitted_at").map_err(read)?;
            let payload: Vec<u8> = row.try_get("payload").map_err(read)?;
            let hex: String = emit_id.chars().filter(|c| *c != '-').collect();
            u128::from_str_radix(&hex, 16)
                .map_err(|_| format!("row {id} has emit id `{emit_id}`"))?;
            let tick: Tick = serde_json::from_slice(&payload)
                .map_err(|error| format!("row {id} does not decode: {error}"))?;
            tally.add(tick.n);
            ids.push(id);
            leases.push(lease);
        }
        let deleted = client
            .execute(&delete, &[&ids, &leases])
            .await
            .map_err(pg("delete"))?;
        check("rows deleted", deleted, ids.len() as u64)?;
    }
    Ok(tally.report(0, None))
}

// The raw clients. ------------------------------------------------------------------------------

pub(crate) fn pg(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> String {
    move |error| format!("cannot {doing}: {error}")
}

/// A connection without TLS, driven by a task of its own; notifications wake `wake`.
pub(crate) async fn pg_connect(url: &str, wake: Option<Arc<Notify>>) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg("connect to PostgreSQL (without TLS)"))?;
    tokio::spawn(drive(connection, wake));
    Ok(client)
}

pub(crate) async fn drive(
    mut connection: Connection<Socket, NoTlsStream>,
    wake_on: Option<Arc<Notify>>,
) {
    while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
        match message {
            Ok(AsyncMessage::Notification(_)) => {
                if let Some(notify) = &wake_on {
                    wake(notify);
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
