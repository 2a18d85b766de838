//! What shutdown reports: per (event, listener), what was delivered, failed, or left unfinished.

use std::fmt;
use std::time::Duration;

use crate::emit_id::EmitId;
use crate::table::EventTable;

/// What [`Emitter::shutdown`](crate::Emitter::shutdown) and
/// [`Emitter::shutdown_timeout`](crate::Emitter::shutdown_timeout) report, per (event, listener).
///
/// After a full drain every row has nothing queued or running. After a deadline, the rows name
/// the deliveries that were still queued (dropped) or running (cancelled). Printing the report
/// (`{}`) lists only what did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// One row per (event, listener) pair of the table, in table order.
    pub deliveries: Vec<DeliveryReport>,
    /// Events accepted and not finished when the deadline passed (0 after a full drain),
    /// including any still held by the backend.
    pub pending_events: u64,
}

/// The deliveries of one listener for one event, since the emitter started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// The event's id.
    pub event_id: &'static str,
    /// The listener's name.
    pub listener: &'static str,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Deliveries that failed on their last attempt.
    pub failed: u64,
    /// Emits whose delivery had not started at the deadline; they were dropped.
    pub queued: Vec<EmitId>,
    /// Deliveries running at the deadline; they were cancelled.
    pub running: Vec<StuckDelivery>,
}

/// A delivery that was still running when the shutdown deadline passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StuckDelivery {
    /// The emit it belongs to.
    pub emit_id: EmitId,
    /// The attempt that was running.
    pub attempt: u32,
    /// How long the delivery had been running, retries included.
    pub running_for: Duration,
}

/// A delivery that a shutdown deadline left unfinished, as the scheduler or a backend names it
/// for the [`ShutdownReport`]: queued (it had not started; it was dropped, or, on a durable
/// backend, was never stored) or running (it was cancelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedDelivery {
    pub(crate) event_id: &'static str,
    pub(crate) listener: &'static str,
    pub(crate) emit_id: EmitId,
    pub(crate) running: Option<(u32, Duration)>,
}

impl UnfinishedDelivery {
    /// A delivery of `emit_id` to `listener` that had not started.
    pub fn queued(event_id: &'static str, listener: &'static str, emit_id: EmitId) -> Self {
        Self {
            event_id,
            listener,
            emit_id,
            running: None,
        }
    }

    /// A delivery of `emit_id` to `listener` whose attempt `attempt` was running, for
    /// `running_for` (retries included).
    pub fn running(
        event_id: &'static str,
        listener: &'static str,
        emit_id: EmitId,
        attempt: u32,
        running_for: Duration,
    ) -> Self {
        Self {
            event_id,
            listener,
            emit_id,
            running: Some((attempt, running_for)),
        }
    }
}

impl ShutdownReport {
    pub(crate) fn new(
        table: &EventTable,
        unfinished: Vec<UnfinishedDelivery>,
        pending_events: u64,
    ) -> Self {
        let mut rows: Vec<Vec<DeliveryReport>> = table
            .events()
            .iter()
            .map(|entry| {
                entry
                    .listeners
                    .iter()
                    .map(|listener| {
                        let stats = listener.stats.snapshot();
                        DeliveryReport {
                            event_id: entry.id,
                            listener: listener.name,
                            delivered: stats.delivered,
                            failed: stats.failed,
                            queued: Vec::new(),
                            running: Vec::new(),
                        }
                    })
                    .collect()
            })
            .collect();
        for delivery in unfinished {
            let Some(row) = rows
                .iter_mut()
                .flatten()
                .find(|row| row.event_id == delivery.event_id && row.listener == delivery.listener)
            else {
                continue;
            };
            match delivery.running {
                None => row.queued.push(delivery.emit_id),
                Some((attempt, running_for)) => row.running.push(StuckDelivery {
                    emit_id: delivery.emit_id,
                    attempt,
                    running_for,
                }),
            }
        }
        let mut deliveries: Vec<DeliveryReport> = rows.into_iter().flatten().collect();
        for row in &mut deliveries {
            row.queued.sort_unstable();
            row.running.sort_by_key(|stuck| stuck.emit_id);
        }
        ShutdownReport {
            deliveries,
            pending_events,
        }
    }

    /// Whether everything emitted was handled: nothing was left queued or running.
    pub fn is_complete(&self) -> bool {
        self.pending_events == 0
            && self
                .deliveries
                .iter()
                .all(|row| row.queued.is_empty() && row.running.is_empty())
    }

    /// The row of one listener for one event.
    pub fn delivery(&self, event_id: &str, listener: &str) -> Option<&DeliveryReport> {
        self.deliveries
            .iter()
            .find(|row| row.event_id == event_id && row.listener == listener)
    }

    /// Deliveries that succeeded, all listeners together.
    pub fn delivered(&self) -> u64 {
        self.deliveries.iter().map(|row| row.delivered).sum()
    }

    /// Deliveries that failed for good, all listeners together.
    pub fn failed(&self) -> u64 {
        self.deliveries.iter().map(|row| row.failed).sum()
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_complete() {
            return write!(
                f,
                "shutdown complete: {} delivered, {} failed",
                self.delivered(),
                self.failed()
            );
        }
        writeln!(
            f,
            "shutdown deadline passed with {} events unfinished ({} delivered, {} failed before it)",
            self.pending_events,
            self.delivered(),
            self.failed()
        )?;
        for row in &self.deliveries {
            for stuck in &row.running {
                writeln!(
                    f,
                    "  running: {} for `{}` (emit {}, attempt {}, for {:?})",
                    row.listener, row.event_id, stuck.emit_id, stuck.attempt, stuck.running_for
                )?;
            }
            if !row.queued.is_empty() {
                const NAMED: usize = 10;
                let named: Vec<String> = row
                    .queued
                    .iter()
                    .take(NAMED)
                    .map(EmitId::to_string)
                    .collect();
                let more = row.queued.len().saturating_sub(NAMED);
                writeln!(
                    f,
                    "  queued:  {} for `{}`: {} deliveries dropped (emits {}{})",
                    row.listener,
                    row.event_id,
                    row.queued.len(),
                    named.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        Ok(())
    }
}
