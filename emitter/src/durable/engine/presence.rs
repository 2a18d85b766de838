//! The heartbeat: tells the store now and then that this worker runs, which listeners it runs,
//! and what they did since, for the operator's console.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Mode;
use crate::delivery::Core;
use crate::durable::{Heartbeat, ListenerActivity, Store};
use crate::stats::StatsSnapshot;

/// How long the last heartbeat of a stopping worker may take: a shutdown is not held up by a
/// store that does not answer.
const LAST_BEAT: Duration = Duration::from_millis(500);

/// How many heartbeats a worker may miss before it no longer counts as running.
const MISSED: u32 = 3;

/// Sends a heartbeat at once and every `every` while `mode` is [`Mode::Run`], then a last one
/// with no time to live.
pub(super) async fn beat<S: Store>(
    store: Arc<S>,
    core: Arc<Core>,
    worker: String,
    listeners: Vec<&'static str>,
    every: Duration,
    mut mode: watch::Receiver<Mode>,
) {
    let ttl = every.saturating_mul(MISSED);
    // What the store was told so far, per listener: a heartbeat carries what happened since.
    let mut told: BTreeMap<&'static str, StatsSnapshot> = BTreeMap::new();
    loop {
        let (beat, totals) = heartbeat(&core, &worker, &listeners, ttl, &told);
        let sent = tokio::select! {
            sent = store.heartbeat(&beat) => sent,
            _ = mode.changed() => break,
        };
        match sent {
            Ok(()) => told = totals,
            // What was not told is told with the next heartbeat.
            Err(error) => tracing::debug!("could not send the store a heartbeat: {error}"),
        }
        if *mode.borrow_and_update() != Mode::Run {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = mode.changed() => break,
        }
    }
    // The last tells what the listeners did since, and that the worker stopped: the console
    // stops counting it at once rather than when its heartbeats are missed.
    let (beat, _) = heartbeat(&core, &worker, &listeners, Duration::ZERO, &told);
    if let Ok(Err(error)) = tokio::time::timeout(LAST_BEAT, store.heartbeat(&beat)).await {
        tracing::debug!("could not send the store a last heartbeat: {error}");
    }
}

/// The heartbeat of `worker` now, and the totals it reports up to.
fn heartbeat(
    core: &Core,
    worker: &str,
    listeners: &[&'static str],
    ttl: Duration,
    told: &BTreeMap<&'static str, StatsSnapshot>,
) -> (Heartbeat, BTreeMap<&'static str, StatsSnapshot>) {
    let mut totals: BTreeMap<&'static str, StatsSnapshot> = listeners
        .iter()
        .map(|listener| (*listener, StatsSnapshot::default()))
        .collect();
    for entry in core.table.events() {
        for listener in &entry.listeners {
            if let Some(total) = totals.get_mut(listener.name) {
                let stats = listener.stats.snapshot();
                total.delivered += stats.delivered;
                total.failed += stats.failed;
                total.retried += stats.retried;
            }
        }
    }
    let activity = totals
        .iter()
        .map(|(listener, total)| {
            let before = told.get(listener).copied().unwrap_or_default();
            ListenerActivity {
                listener: (*listener).to_owned(),
                delivered: total.delivered.saturating_sub(before.delivered),
                failed: total.failed.saturating_sub(before.failed),
                retried: total.retried.saturating_sub(before.retried),
            }
        })
        .collect();
    (Heartbeat::new(worker, activity, ttl), totals)
}
