//! Cron schedules: events emitted on a timetable, once per tick however many processes run it.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::{Emitter, Shared};
use crate::emit_id::EmitId;
use crate::envelope::EmitOptions;
use crate::error::EmitError;
use crate::event::Event;

type Emit = dyn Fn(&Emitter, SystemTime, EmitOptions) -> Result<EmitId, EmitError> + Send + Sync;

/// An event emitted on a cron timetable. Give it to
/// [`EmitterBuilder::schedule`](crate::EmitterBuilder::schedule).
///
/// Expressions are parsed by the [`croner`] crate: five fields (minute, hour, day of month,
/// month, day of week) or six with seconds first, in UTC; `L`, `W` and `#` are supported.
///
/// Each tick is emitted with the idempotency key `cron:{name}:{tick in ms}`, so on a durable
/// backend shared by several processes, each running the schedule, the tick is delivered once.
/// Ticks that pass while no process runs are not made up for.
///
/// ```
/// use emitter::{Event, Schedule};
///
/// #[derive(Event)]
/// pub struct NightlyReport {
///     pub kind: String,
/// }
///
/// # fn main() -> Result<(), emitter::ScheduleError> {
/// // `tick` is the time the tick was due, for example to name the period a report covers.
/// let schedule = Schedule::cron("nightly-report", "0 3 * * *", |_tick| NightlyReport {
///     kind: "sales".into(),
/// })?;
/// assert_eq!(schedule.name(), "nightly-report");
///
/// let typo = Schedule::cron("typo", "0 25 * * *", |_| NightlyReport { kind: "x".into() });
/// assert!(typo.unwrap_err().to_string().contains("`0 25 * * *` is not a cron expression"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Schedule {
    name: String,
    expression: String,
    cron: croner::Cron,
    event_id: &'static str,
    emit: Arc<Emit>,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("name", &self.name)
            .field("expression", &self.expression)
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

/// A cron schedule that could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cron schedule `{name}`: {reason}")]
pub struct ScheduleError {
    name: String,
    reason: String,
}

impl Schedule {
    /// Emits `make(tick)` on every tick of the cron `expression`, `tick` being the time the tick
    /// was due. `name` identifies the schedule across processes and restarts: keep it stable.
    pub fn cron<E: Event>(
        name: impl Into<String>,
        expression: &str,
        make: impl Fn(SystemTime) -> E + Send + Sync + 'static,
    ) -> Result<Self, ScheduleError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(ScheduleError {
                name,
                reason: "the name is empty: give the schedule a stable name".into(),
            });
        }
        let cron = expression
            .parse::<croner::Cron>()
            .map_err(|error| ScheduleError {
                name: name.clone(),
                reason: format!("`{expression}` is not a cron expression: {error}"),
            })?;
        Ok(Self {
            name,
            expression: expression.to_owned(),
            cron,
            event_id: E::ID,
            emit: Arc::new(move |emitter, tick, options| emitter.emit_with(make(tick), options)),
        })
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cron expression.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The id of the event it emits.
    pub fn event_id(&self) -> &'static str {
        self.event_id
    }

    /// The first tick strictly after `time`, if there is one.
    pub fn next_after(&self, time: SystemTime) -> Option<SystemTime> {
        let time: DateTime<Utc> = time.into();
        self.cron
            .find_next_occurrence(&time, false)
            .ok()
            .map(SystemTime::from)
    }

    /// The idempotency key of the tick at `tick`: the schedule's name and the tick's Unix time
    /// in milliseconds.
    fn key(&self, tick: SystemTime) -> String {
        let millis = tick
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        format!("cron:{}:{millis}", self.name)
    }
}

/// Emits the schedule's ticks until the emitter shuts down or is dropped.
pub(super) async fn run(schedule: Schedule, emitter: Weak<Shared>) {
    let mut after = SystemTime::now();
    while let Some(tick) = schedule.next_after(after) {
        // Sleep in steps: the wall clock, not tokio's monotonic one, says when a tick is due.
        while let Ok(left) = tick.duration_since(SystemTime::now()) {
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_secs(60))).await;
        }
        let Some(shared) = emitter.upgrade() else {
            return;
        };
        let producer = Emitter {
            shared,
            from_listener: false,
        };
        let options = EmitOptions::new()
            .at(tick)
            .idempotency_key(schedule.key(tick));
        match (schedule.emit)(&producer, tick, options) {
            Ok(_) => {}
            Err(EmitError::ShutDown | EmitError::NotStarted | EmitError::Stopped) => return,
            Err(error) => tracing::error!(
                schedule = schedule.name,
                event_id = schedule.event_id,
                "a scheduled emit failed: {error}"
            ),
        }
        after = tick;
        let now = SystemTime::now();
        if now.duration_since(tick).unwrap_or_default() > Duration::from_secs(1) {
            tracing::warn!(
                schedule = schedule.name,
                "ticks were missed (the process was busy or suspended); going on from now"
            );
            after = now;
        }
    }
}
