//! Running deliveries: one scheduler task per emitter takes envelopes in emit order, starts each
//! (event, listener) delivery inline, and hands the ones that do not finish at once (or fail and
//! must retry) to tasks; per listener it enforces the concurrency limit with a FIFO backlog.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::backend::Envelope;
use crate::context::{EmitId, EventMeta};
use crate::emitter::Emitter;
use crate::error::{Failure, ListenerError};
use crate::event::Payload;
use crate::listener::{AdapterSlot, Delivery, Started};
use crate::policy::DeliveryPolicy;
use crate::table::{EventTable, ListenerEntry};

/// What the scheduler is told besides envelopes.
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
    /// The attempt running at the deadline and for how long; `None` if it had not started.
    pub(crate) running: Option<(u32, Duration)>,
}

/// The sending side of a scheduler.
#[derive(Debug)]
pub(crate) struct SchedulerHandle {
    pub(crate) envelopes: mpsc::UnboundedSender<Envelope>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

/// One (event, listener) delivery that runs as a task, or waits for room to.
struct Job {
    event: usize,
    slot: usize,
    /// The event; the emit stays pending until the last of its deliveries drops this.
    payload: Payload,
}

/// A delivery that went on as a task.
struct Running {
    event: usize,
    slot: usize,
    emit_id: EmitId,
    /// The attempt being run, 0 once the delivery is over.
    attempt: Arc<AtomicU32>,
    since: tokio::time::Instant,
}

/// Per listener: how many of its deliveries run as tasks, and those waiting for room.
struct ListenerSlot {
    limit: usize,
    running: usize,
    backlog: VecDeque<Job>,
}

/// Starts the scheduler of `emitter` on `runtime` and returns its handle.
pub(crate) fn spawn_scheduler(
    emitter: &Emitter,
    runtime: &tokio::runtime::Handle,
) -> SchedulerHandle {
    let (envelopes, envelope_receiver) = mpsc::unbounded_channel();
    let (control, control_receiver) = mpsc::unbounded_channel();
    let table = emitter.table_arc();
    let scheduler = Scheduler {
        listeners: table
            .listener_infos()
            .iter()
            .map(|info| ListenerSlot {
                limit: info
                    .policy
                    .concurrency_limit()
                    .map_or(usize::MAX, |limit| limit.get()),
                running: 0,
                backlog: VecDeque::new(),
            })
            .collect(),
        adapters: (0..table.len()).map(|_| AdapterSlot::default()).collect(),
        emitter: Arc::new(emitter.for_listeners()),
        table,
        tasks: JoinSet::new(),
        running: HashMap::new(),
        started: 0,
    };
    runtime.spawn(scheduler.run(envelope_receiver, control_receiver));
    SchedulerHandle { envelopes, control }
}

struct Scheduler {
    emitter: Arc<Emitter>,
    table: Arc<EventTable>,
    listeners: Vec<ListenerSlot>,
    /// Per (event, listener) pair: the adapter's reusable future allocation.
    adapters: Vec<AdapterSlot>,
    tasks: JoinSet<()>,
    running: HashMap<tokio::task::Id, Running>,
    /// Deliveries started from the current batch, not yet taken off the queue depth.
    started: u64,
}

/// How many envelopes the scheduler takes from its queue at once.
const BATCH: usize = 256;

impl Scheduler {
    async fn run(
        mut self,
        mut envelopes: mpsc::UnboundedReceiver<Envelope>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                biased;
                command = control.recv() => match command {
                    Some(Control::Cancel(reply)) => {
                        let unfinished = self.cancel(&mut envelopes);
                        let _ = reply.send(unfinished);
                        return;
                    }
                    Some(Control::Stop) | None => return,
                },
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    let (id, panic) = match done {
                        Ok((id, _)) => (id, None),
                        Err(error) => (error.id(), error.try_into_panic().ok()),
                    };
                    if let Some(record) = self.running.remove(&id) {
                        if let Some(payload) = panic {
                            self.task_panicked(&record, payload);
                        }
                        self.task_finished(record.event, record.slot);
                    }
                }
                received = envelopes.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    let table = Arc::clone(&self.table);
                    poll_fn(|cx| {
                        for envelope in batch.drain(..) {
                            self.process(&table, envelope, cx);
                        }
                        Poll::Ready(())
                    })
                    .await;
                    // Counted once per batch: the queue depth is shared with every emitting thread.
                    self.emitter.lifecycle().unqueue(std::mem::take(&mut self.started));
                }
            }
        }
    }

    /// Starts every delivery of an envelope that its listener has room for, and queues the rest.
    fn process(&mut self, table: &EventTable, envelope: Envelope, cx: &mut Context<'_>) {
        let Envelope { payload, event, .. } = envelope;
        let Some(entry) = table.event(event) else {
            return;
        };
        for (slot, listener) in entry.listeners.iter().enumerate() {
            let room = &mut self.listeners[listener.listener];
            if room.running >= room.limit || !room.backlog.is_empty() {
                room.backlog.push_back(Job {
                    event,
                    slot,
                    payload: Arc::clone(&payload),
                });
                continue;
            }
            self.started += 1;
            self.start(listener, event, slot, &payload, cx);
        }
    }

    /// Runs the first attempt of a delivery inline; if it does not finish, or fails with
    /// attempts left, the delivery goes on as a task.
    fn start(
        &mut self,
        listener: &ListenerEntry,
        event: usize,
        slot: usize,
        payload: &Payload,
        cx: &mut Context<'_>,
    ) {
        let header = &payload.header;
        let meta = EventMeta::of(header, listener.name, 1);
        let span = delivery_span(header.parent.as_deref(), &meta);
        let delivery = Delivery {
            payload: Arc::clone(payload),
            meta: meta.clone(),
            emitter: Arc::clone(&self.emitter),
        };
        let Some(adapter) = self.adapters.get_mut(listener.pair) else {
            return;
        };
        let started = span.in_scope(|| (listener.call)(delivery, adapter, cx));
        let policy = self.table.listener_infos()[listener.listener].policy;
        let first = match started {
            Started::Done(outcome) => {
                self.emitter.observe_attempt(&meta, &outcome);
                match outcome {
                    Ok(()) => {
                        listener.stats.delivered(header.event_id, listener.name);
                        return;
                    }
                    Err(failure) if policy.max_attempts() <= 1 => {
                        listener.stats.failed(header.event_id, listener.name);
                        self.emitter.report(ListenerError {
                            listener: listener.name,
                            event_id: header.event_id,
                            emit_id: header.emit_id,
                            attempt: 1,
                            failure,
                        });
                        return;
                    }
                    Err(failure) => First::Failed(failure),
                }
            }
            Started::Pending(future) => First::Pending(future, span),
        };
        let job = Job {
            event,
            slot,
            payload: Arc::clone(payload),
        };
        self.spawn(listener, job, policy, first);
    }

    fn spawn(&mut self, listener: &ListenerEntry, job: Job, policy: DeliveryPolicy, first: First) {
        let attempt = Arc::new(AtomicU32::new(1));
        let record = Running {
            event: job.event,
            slot: job.slot,
            emit_id: job.payload.header.emit_id,
            attempt: Arc::clone(&attempt),
            since: tokio::time::Instant::now(),
        };
        self.listeners[listener.listener].running += 1;
        listener.stats.running();
        let task = self.tasks.spawn(go_on(
            Arc::clone(&self.emitter),
            Arc::clone(&self.table),
            job,
            policy,
            first,
            attempt,
        ));
        self.running.insert(task.id(), record);
    }

    /// A delivery task panicked outside the listener (whose panics are caught): the delivery
    /// failed, and the error hook hears of it like of any failure.
    fn task_panicked(&self, record: &Running, payload: Box<dyn std::any::Any + Send>) {
        let Some(listener) = self.table.listener_entry(record.event, record.slot) else {
            return;
        };
        let event_id = self.table.event(record.event).map_or("", |entry| entry.id);
        listener.stats.failed(event_id, listener.name);
        self.emitter.report(ListenerError {
            listener: listener.name,
            event_id,
            emit_id: record.emit_id,
            attempt: record.attempt.load(Ordering::SeqCst).max(1),
            failure: Failure::from_panic(payload),
        });
    }

    /// A delivery task ended: make room for the listener's next held-back delivery.
    fn task_finished(&mut self, event: usize, slot: usize) {
        let table = Arc::clone(&self.table);
        let Some(listener) = table.listener_entry(event, slot) else {
            return;
        };
        let index = listener.listener;
        listener.stats.stopped();
        self.listeners[index].running = self.listeners[index].running.saturating_sub(1);
        while self.listeners[index].running < self.listeners[index].limit {
            let Some(job) = self.listeners[index].backlog.pop_front() else {
                break;
            };
            let Some(next) = table.listener_entry(job.event, job.slot) else {
                continue;
            };
            self.emitter.lifecycle().unqueue(1);
            let policy = table.listener_infos()[index].policy;
            // A held-back delivery starts in a task: the scheduler is not polling a waker here.
            self.spawn(next, job, policy, First::NotStarted);
        }
    }

    fn cancel(&mut self, envelopes: &mut mpsc::UnboundedReceiver<Envelope>) -> Vec<Unfinished> {
        let mut unfinished: Vec<Unfinished> = self
            .running
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
        for record in self.running.values() {
            if let Some(listener) = self.table.listener_entry(record.event, record.slot) {
                listener.stats.stopped();
            }
        }
        self.tasks.abort_all();
        let mut dropped = 0;
        for room in &mut self.listeners {
            for job in room.backlog.drain(..) {
                dropped += 1;
                unfinished.push(Unfinished {
                    event: job.event,
                    slot: job.slot,
                    emit_id: job.payload.header.emit_id,
                    running: None,
                });
            }
        }
        while let Ok(envelope) = envelopes.try_recv() {
            let listeners = self
                .table
                .event(envelope.event)
                .map_or(0, |entry| entry.listeners.len());
            for slot in 0..listeners {
                dropped += 1;
                unfinished.push(Unfinished {
                    event: envelope.event,
                    slot,
                    emit_id: envelope.emit_id(),
                    running: None,
                });
            }
        }
        self.emitter.lifecycle().unqueue(dropped);
        unfinished
    }
}

/// How the first attempt of a delivery that goes on as a task ended.
enum First {
    /// Not run yet (a held-back delivery).
    NotStarted,
    /// Still running, in its span.
    Pending(crate::listener::BoxFuture, tracing::Span),
    /// Failed with attempts left.
    Failed(Failure),
}

fn delivery_span(parent: Option<&tracing::Span>, meta: &EventMeta) -> tracing::Span {
    tracing::info_span!(
        parent: parent.and_then(tracing::Span::id),
        "emitter.delivery",
        event_id = meta.event_id,
        listener = meta.listener,
        emit_id = %meta.emit_id,
        attempt = meta.attempt,
    )
}

/// Runs a delivery from where the scheduler left it to its end: the rest of the first attempt,
/// then retries after their backoff, each attempt under the timeout; then reports.
async fn go_on(
    emitter: Arc<Emitter>,
    table: Arc<EventTable>,
    job: Job,
    policy: DeliveryPolicy,
    first: First,
    attempt_cell: Arc<AtomicU32>,
) {
    let Some(listener) = table.listener_entry(job.event, job.slot) else {
        return;
    };
    let started_at = tokio::time::Instant::now();
    let header = &job.payload.header;
    let mut waits = policy.backoff_policy().schedule(policy.max_attempts());
    let mut attempt = 1;
    let mut first = Some(first);
    let outcome = loop {
        attempt_cell.store(attempt, Ordering::SeqCst);
        let meta = EventMeta::of(header, listener.name, attempt);
        let result = match first.take() {
            Some(First::Failed(failure)) => Err(failure),
            Some(First::Pending(future, span)) => {
                let deadline = policy
                    .attempt_timeout()
                    .map(|limit| (started_at + limit, limit));
                let result = within(deadline, future.instrument(span)).await;
                emitter.observe_attempt(&meta, &result);
                result
            }
            Some(First::NotStarted) | None => {
                let result = run_attempt(&emitter, listener, &job.payload, &meta, policy).await;
                emitter.observe_attempt(&meta, &result);
                result
            }
        };
        match result {
            Ok(()) => break Ok(()),
            Err(failure) => match waits.next() {
                Some(wait) if attempt < policy.max_attempts() => {
                    listener.stats.retried(header.event_id, listener.name);
                    tracing::warn!(
                        listener = listener.name,
                        event_id = header.event_id,
                        emit_id = %header.emit_id,
                        attempt,
                        "listener failed, retrying in {wait:?}: {failure}"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => break Err(failure),
            },
        }
    };
    attempt_cell.store(0, Ordering::SeqCst);
    match outcome {
        Ok(()) => listener.stats.delivered(header.event_id, listener.name),
        Err(failure) => {
            listener.stats.failed(header.event_id, listener.name);
            emitter.report(ListenerError {
                listener: listener.name,
                event_id: header.event_id,
                emit_id: header.emit_id,
                attempt,
                failure,
            });
        }
    }
}

/// One attempt, from its first poll, under the listener's timeout.
pub(crate) async fn run_attempt(
    emitter: &Arc<Emitter>,
    listener: &ListenerEntry,
    payload: &Payload,
    meta: &EventMeta,
    policy: DeliveryPolicy,
) -> Result<(), Failure> {
    let span = delivery_span(payload.header.parent.as_deref(), meta);
    let mut delivery = Some(Delivery {
        payload: Arc::clone(payload),
        meta: meta.clone(),
        emitter: Arc::clone(emitter),
    });
    let mut slot = AdapterSlot::default();
    let deadline = policy
        .attempt_timeout()
        .map(|limit| (tokio::time::Instant::now() + limit, limit));
    let started = poll_fn(|cx| {
        Poll::Ready(
            delivery
                .take()
                .map(|delivery| span.in_scope(|| (listener.call)(delivery, &mut slot, cx))),
        )
    })
    .await;
    match started {
        Some(Started::Done(outcome)) => outcome,
        Some(Started::Pending(future)) => within(deadline, future.instrument(span)).await,
        None => Ok(()),
    }
}

/// Awaits an attempt, failing it with [`Failure::Timeout`] at the deadline.
async fn within(
    deadline: Option<(tokio::time::Instant, Duration)>,
    attempt: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    match deadline {
        Some((deadline, limit)) => tokio::time::timeout_at(deadline, attempt)
            .await
            .unwrap_or(Err(Failure::Timeout(limit))),
        None => attempt.await,
    }
}
