//! Running deliveries: one worker task per listener, the attempt loop (retry, backoff, timeout),
//! and what is left when a shutdown deadline passes.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::context::{EmitId, EventMeta};
use crate::emitter::{Emitter, EventToken};
use crate::error::{Failure, ListenerError};
use crate::event::Payload;
use crate::listener::{BoxFuture, Delivery};
use crate::table::ListenerEntry;

/// One (event, listener) delivery waiting for its listener's worker.
pub(crate) struct Job {
    /// The event's index in the table.
    pub(crate) event: usize,
    /// The listener's position among the event's listeners.
    pub(crate) slot: usize,
    pub(crate) payload: Payload,
    pub(crate) event_id: &'static str,
    pub(crate) emit_id: EmitId,
    pub(crate) emitted_at: SystemTime,
    pub(crate) parent: Option<tracing::Span>,
    /// Held until the delivery ends: the event is pending until its last delivery drops this.
    pub(crate) _token: Arc<EventToken>,
}

/// What a worker is told besides jobs.
pub(crate) enum Control {
    /// Everything is delivered: exit.
    Stop,
    /// The shutdown deadline passed: drop what is queued, abort what runs, say what that was.
    Cancel(oneshot::Sender<Vec<Unfinished>>),
}

/// A delivery that had not finished when the shutdown deadline passed.
#[derive(Debug)]
pub(crate) struct Unfinished {
    pub(crate) event: usize,
    pub(crate) slot: usize,
    pub(crate) emit_id: EmitId,
    /// The attempt running at the deadline; `None` if it had not started.
    pub(crate) running: Option<(u32, Duration)>,
}

/// The sending side of a listener's worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    pub(crate) jobs: mpsc::UnboundedSender<Job>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

struct Running {
    event: usize,
    slot: usize,
    emit_id: EmitId,
    /// The attempt being run, 0 once the delivery is over.
    attempt: Arc<AtomicU32>,
    since: tokio::time::Instant,
}

/// Starts the worker of listener `listener` and returns its handle.
pub(crate) fn spawn_worker(
    emitter: Emitter,
    listener: usize,
    runtime: &tokio::runtime::Handle,
) -> WorkerHandle {
    let (jobs, job_receiver) = mpsc::unbounded_channel();
    let (control, control_receiver) = mpsc::unbounded_channel();
    runtime.spawn(worker(emitter, listener, job_receiver, control_receiver));
    WorkerHandle { jobs, control }
}

/// Takes the listener's jobs in emit order and runs each as a task, at most `concurrency` at once:
/// with a limit of 1, one after the other.
async fn worker(
    emitter: Emitter,
    listener: usize,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let limit = emitter
        .table()
        .listener_infos()
        .get(listener)
        .and_then(|info| info.policy.concurrency_limit())
        .map_or(usize::MAX, |limit| limit.get());
    let mut tasks = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Running> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::Cancel(reply)) => {
                    let unfinished = cancel(&emitter, &mut jobs, &mut tasks, &running);
                    let _ = reply.send(unfinished);
                    return;
                }
                Some(Control::Stop) | None => return,
            },
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(error) => error.id(),
                };
                running.remove(&id);
            }
            job = jobs.recv(), if tasks.len() < limit => match job {
                Some(job) => {
                    let attempt = Arc::new(AtomicU32::new(0));
                    let record = Running {
                        event: job.event,
                        slot: job.slot,
                        emit_id: job.emit_id,
                        attempt: Arc::clone(&attempt),
                        since: tokio::time::Instant::now(),
                    };
                    let task = tasks.spawn(deliver(emitter.clone(), job, attempt));
                    running.insert(task.id(), record);
                }
                None => return,
            },
        }
    }
}

fn cancel(
    emitter: &Emitter,
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    tasks: &mut JoinSet<()>,
    running: &HashMap<tokio::task::Id, Running>,
) -> Vec<Unfinished> {
    let mut unfinished: Vec<Unfinished> = running
        .values()
        .filter_map(|record| {
            let attempt = record.attempt.load(Ordering::SeqCst);
            (attempt > 0).then(|| Unfinished {
                event: record.event,
                slot: record.slot,
                emit_id: record.emit_id,
                running: Some((attempt, record.since.elapsed())),
            })
        })
        .collect();
    tasks.abort_all();
    while let Ok(job) = jobs.try_recv() {
        if let Some(entry) = emitter.table().listener_entry(job.event, job.slot) {
            entry.stats.unqueued();
        }
        unfinished.push(Unfinished {
            event: job.event,
            slot: job.slot,
            emit_id: job.emit_id,
            running: None,
        });
    }
    unfinished
}

/// Counts a delivery as running until dropped, also when its task is aborted.
struct RunningGuard<'a> {
    entry: &'a ListenerEntry,
    event_id: &'static str,
    attempt: &'a AtomicU32,
    outcome: Option<bool>,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.attempt.store(0, Ordering::SeqCst);
        self.entry
            .stats
            .finished(self.outcome, self.event_id, self.entry.name);
    }
}

/// Runs one delivery to its end: attempts, backoff between them, timeout of each; then reports.
async fn deliver(emitter: Emitter, job: Job, attempt_cell: Arc<AtomicU32>) {
    let Some(entry) = emitter.table().listener_entry(job.event, job.slot) else {
        return;
    };
    let Some(policy) = emitter
        .table()
        .listener_infos()
        .get(entry.listener)
        .map(|info| info.policy)
    else {
        return;
    };
    entry.stats.started();
    let mut guard = RunningGuard {
        entry,
        event_id: job.event_id,
        attempt: &attempt_cell,
        outcome: None,
    };
    let mut waits = policy.backoff_policy().schedule(policy.max_attempts());
    let mut attempt = 1;
    let outcome = loop {
        guard.attempt.store(attempt, Ordering::SeqCst);
        let meta = EventMeta {
            event_id: job.event_id,
            emit_id: job.emit_id,
            emitted_at: job.emitted_at,
            attempt,
            listener: entry.name,
        };
        let span = tracing::info_span!(
            parent: job.parent.as_ref().and_then(tracing::Span::id),
            "emitter.delivery",
            event_id = job.event_id,
            listener = entry.name,
            emit_id = %job.emit_id,
            attempt,
        );
        let run = CatchUnwind((entry.call)(Delivery {
            payload: Arc::clone(&job.payload),
            meta: meta.clone(),
            emitter: emitter.clone(),
        }));
        let result = match policy.attempt_timeout() {
            Some(limit) => tokio::time::timeout(limit, run)
                .instrument(span)
                .await
                .unwrap_or(Err(Failure::Timeout(limit))),
            None => run.instrument(span).await,
        };
        emitter.observe_attempt(&meta, &job.payload, &result);
        match result {
            Ok(()) => break Ok(()),
            Err(failure) => match waits.next() {
                Some(wait) => {
                    entry.stats.retried(job.event_id, entry.name);
                    tracing::warn!(
                        listener = entry.name,
                        event_id = job.event_id,
                        emit_id = %job.emit_id,
                        attempt,
                        "listener failed, retrying in {wait:?}: {failure}"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => break Err(failure),
            },
        }
    };
    guard.outcome = Some(outcome.is_ok());
    drop(guard);
    if let Err(failure) = outcome {
        emitter.report(ListenerError {
            listener: entry.name,
            event_id: job.event_id,
            emit_id: job.emit_id,
            attempt,
            failure,
        });
    }
}

/// Turns a panic while polling a listener's future into a [`Failure::Panic`].
struct CatchUnwind(BoxFuture);

impl Future for CatchUnwind {
    type Output = Result<(), Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(Failure::from_panic(payload))),
        }
    }
}
