//! The in-memory scheduler: one task per emitter takes envelopes in dispatch order (holding
//! delayed ones until their time), starts each (event, listener) delivery inline, and hands the
//! ones that do not finish at once (or must retry) to tasks; per listener it enforces the
//! concurrency limit with a FIFO backlog.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::attempt::{run_attempt, start_attempt, Begun, Pending};
use super::{Core, Outcome};
use crate::context::EventMeta;
use crate::emit_id::EmitId;
use crate::envelope::Envelope;
use crate::error::Failure;
use crate::event::Payload;
use crate::lifecycle::Lifecycle;
use crate::listener::AdapterSlot;
use crate::report::UnfinishedDelivery;
use crate::table::{EventTable, ListenerEntry};

/// What the scheduler is told besides envelopes.
pub(crate) enum Control {
    /// Everything is delivered: exit.
    Stop,
    /// The shutdown deadline passed: drop what is queued, abort what runs, say what that was.
    Cancel(oneshot::Sender<Vec<UnfinishedDelivery>>),
}

/// The sending side of a scheduler.
#[derive(Debug)]
pub(crate) struct SchedulerHandle {
    pub(crate) envelopes: mpsc::UnboundedSender<Envelope>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

/// Starts a scheduler for `core` on `runtime` and returns its handle.
pub(crate) fn spawn_scheduler(
    core: Arc<Core>,
    runtime: &tokio::runtime::Handle,
) -> SchedulerHandle {
    let (envelopes, envelope_receiver) = mpsc::unbounded_channel();
    let (control, control_receiver) = mpsc::unbounded_channel();
    let table = &core.table;
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
        tasks: JoinSet::new(),
        running: HashMap::new(),
        started: 0,
        delayed: BinaryHeap::new(),
        delayed_count: 0,
        core,
    };
    // Made here, not in `run`: a task dropped before its first poll drops it too.
    let guard = ExitGuard {
        lifecycle: Arc::clone(&scheduler.core.lifecycle),
        exited: false,
    };
    runtime.spawn(scheduler.run(guard, envelope_receiver, control_receiver));
    SchedulerHandle { envelopes, control }
}

struct Scheduler {
    core: Arc<Core>,
    listeners: Vec<ListenerSlot>,
    /// Per (event, listener) pair: the adapter's reusable future allocation.
    adapters: Vec<AdapterSlot>,
    tasks: JoinSet<()>,
    running: HashMap<tokio::task::Id, Running>,
    /// Deliveries started from the current batch, not yet taken off the queue depth.
    started: u64,
    /// Envelopes due later, earliest first.
    delayed: BinaryHeap<Reverse<Delayed>>,
    /// Numbers the delayed envelopes, so that those due at the same time keep dispatch order.
    delayed_count: u64,
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
    /// The attempt being run; 0 once the delivery is over (whoever sets it to 0 counts the task
    /// as stopped).
    attempt: Arc<AtomicU32>,
    since: tokio::time::Instant,
}

/// Per listener: how many of its deliveries run as tasks, and those waiting for room.
struct ListenerSlot {
    limit: usize,
    running: usize,
    backlog: VecDeque<Job>,
}

/// An envelope waiting for its time.
struct Delayed {
    due: tokio::time::Instant,
    number: u64,
    envelope: Envelope,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.number) == (other.due, other.number)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.number).cmp(&(other.due, other.number))
    }
}

/// How many envelopes the scheduler takes from its queue at once.
const BATCH: usize = 256;

/// Marks the emitter stopped when the scheduler is dropped without having exited (its runtime
/// shut down), so that emits fail instead of queueing events nothing will run.
struct ExitGuard {
    lifecycle: Arc<Lifecycle>,
    exited: bool,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if !self.exited {
            self.lifecycle.stopped();
        }
    }
}

impl Scheduler {
    async fn run(
        mut self,
        mut guard: ExitGuard,
        mut envelopes: mpsc::UnboundedReceiver<Envelope>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut batch = Vec::with_capacity(BATCH);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            let next_due = self.delayed.peek().map(|Reverse(delayed)| delayed.due);
            if let Some(due) = next_due {
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
            }
            tokio::select! {
                biased;
                command = control.recv() => {
                    guard.exited = true;
                    if let Some(Control::Cancel(reply)) = command {
                        let _ = reply.send(self.cancel(&mut envelopes));
                    }
                    return;
                }
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
                () = &mut timer, if next_due.is_some() => {
                    let now = tokio::time::Instant::now();
                    while self.delayed.peek().is_some_and(|Reverse(delayed)| delayed.due <= now) {
                        if let Some(Reverse(delayed)) = self.delayed.pop() {
                            batch.push(delayed.envelope);
                        }
                    }
                    self.process_batch(&mut batch).await;
                }
                received = envelopes.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        // Every handle of the emitter was dropped.
                        guard.exited = true;
                        return;
                    }
                    self.process_batch(&mut batch).await;
                }
            }
        }
    }

    /// Starts the deliveries of a batch of envelopes, or holds the delayed ones.
    async fn process_batch(&mut self, batch: &mut Vec<Envelope>) {
        let core = Arc::clone(&self.core);
        poll_fn(|cx| {
            for envelope in batch.drain(..) {
                match due_later(&envelope) {
                    Some(due) => {
                        self.delayed_count += 1;
                        self.delayed.push(Reverse(Delayed {
                            due,
                            number: self.delayed_count,
                            envelope,
                        }));
                    }
                    None => self.process(&core, envelope, cx),
                }
            }
            Poll::Ready(())
        })
        .await;
        // Counted once per batch: the queue depth is shared with every emitting thread.
        core.lifecycle.unqueue(std::mem::take(&mut self.started));
    }

    /// Starts every delivery of an envelope that its listener has room for, and queues the rest.
    fn process(&mut self, core: &Arc<Core>, envelope: Envelope, cx: &mut Context<'_>) {
        let Envelope { payload, event, .. } = envelope;
        let Some(entry) = core.table.event(event) else {
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
            self.start(core, listener, event, slot, &payload, cx);
        }
    }

    /// Runs the first attempt of a delivery inline; if it does not finish, or fails with
    /// attempts left, the delivery goes on as a task.
    fn start(
        &mut self,
        core: &Arc<Core>,
        listener: &ListenerEntry,
        event: usize,
        slot: usize,
        payload: &Payload,
        cx: &mut Context<'_>,
    ) {
        let policy = core.table.policy(listener);
        let meta = EventMeta::of(&payload.header, listener.name, 1);
        let Some(adapter) = self.adapters.get_mut(listener.pair) else {
            return;
        };
        let next = match start_attempt(core, listener, policy, payload, &meta, adapter, cx) {
            Begun::Done(result) => match core.outcomes.conclude(listener, policy, &meta, result) {
                Outcome::Delivered | Outcome::Failed { .. } => return,
                Outcome::Retry { after, .. } => Next::Retry(after),
            },
            Begun::Pending(pending) => Next::Finish(pending),
        };
        let job = Job {
            event,
            slot,
            payload: Arc::clone(payload),
        };
        self.spawn(listener, job, next);
    }

    fn spawn(&mut self, listener: &ListenerEntry, job: Job, next: Next) {
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
        let task = self
            .tasks
            .spawn(go_on(Arc::clone(&self.core), job, next, attempt));
        self.running.insert(task.id(), record);
    }

    /// A delivery task panicked outside the listener (whose panics are caught): the delivery
    /// failed, and the error hook hears of it like of any failure.
    fn task_panicked(&self, record: &Running, payload: Box<dyn std::any::Any + Send>) {
        let attempt = record.attempt.swap(0, Ordering::SeqCst);
        let Some(listener) = self.core.table.listener_entry(record.event, record.slot) else {
            return;
        };
        if attempt > 0 {
            listener.stats.stopped();
        }
        let event_id = self
            .core
            .table
            .event(record.event)
            .map_or("", |entry| entry.id);
        self.core.outcomes.failed(
            listener,
            event_id,
            record.emit_id,
            attempt.max(1),
            Failure::from_panic(payload),
        );
    }

    /// A delivery task ended: make room for the listener's next held-back delivery.
    fn task_finished(&mut self, event: usize, slot: usize) {
        let core = Arc::clone(&self.core);
        let Some(listener) = core.table.listener_entry(event, slot) else {
            return;
        };
        let index = listener.listener;
        self.listeners[index].running = self.listeners[index].running.saturating_sub(1);
        while self.listeners[index].running < self.listeners[index].limit {
            let Some(job) = self.listeners[index].backlog.pop_front() else {
                break;
            };
            let Some(next) = core.table.listener_entry(job.event, job.slot) else {
                continue;
            };
            core.lifecycle.unqueue(1);
            // A held-back delivery starts in a task: the scheduler is not polling a waker here.
            self.spawn(next, job, Next::Start);
        }
    }

    fn cancel(
        &mut self,
        envelopes: &mut mpsc::UnboundedReceiver<Envelope>,
    ) -> Vec<UnfinishedDelivery> {
        let table = Arc::clone(&self.core.table);
        let mut unfinished = Vec::new();
        for record in self.running.values() {
            // Whoever takes the attempt to 0 counts the task as stopped: a task that ended
            // meanwhile did so itself.
            let attempt = record.attempt.swap(0, Ordering::SeqCst);
            if attempt == 0 {
                continue;
            }
            if let Some((event_id, listener)) = names(&table, record.event, record.slot) {
                listener.stats.stopped();
                unfinished.push(UnfinishedDelivery::running(
                    event_id,
                    listener.name,
                    record.emit_id,
                    attempt,
                    record.since.elapsed(),
                ));
            }
        }
        self.tasks.abort_all();
        let mut queued = Vec::new();
        queued.extend(
            self.delayed
                .drain()
                .map(|Reverse(delayed)| delayed.envelope),
        );
        while let Ok(envelope) = envelopes.try_recv() {
            queued.push(envelope);
        }
        let mut dropped = 0;
        for envelope in &queued {
            for slot in 0..table.listener_count(envelope.event) as usize {
                if let Some((event_id, listener)) = names(&table, envelope.event, slot) {
                    dropped += 1;
                    unfinished.push(UnfinishedDelivery::queued(
                        event_id,
                        listener.name,
                        envelope.emit_id(),
                    ));
                }
            }
        }
        for room in &mut self.listeners {
            for job in room.backlog.drain(..) {
                if let Some((event_id, listener)) = names(&table, job.event, job.slot) {
                    dropped += 1;
                    unfinished.push(UnfinishedDelivery::queued(
                        event_id,
                        listener.name,
                        job.payload.header.emit_id,
                    ));
                }
            }
        }
        self.core.lifecycle.unqueue(dropped);
        unfinished
    }
}

/// The event id and the listener of the delivery at (`event`, `slot`).
fn names(table: &EventTable, event: usize, slot: usize) -> Option<(&'static str, &ListenerEntry)> {
    let entry = table.event(event)?;
    Some((entry.id, entry.listeners.get(slot)?))
}

/// When a delayed envelope is due, on tokio's clock; `None` when it is due now.
fn due_later(envelope: &Envelope) -> Option<tokio::time::Instant> {
    let delay = envelope
        .run_at()?
        .duration_since(SystemTime::now())
        .ok()
        .filter(|delay| !delay.is_zero())?;
    Some(tokio::time::Instant::now() + delay)
}

/// Where a delivery that goes on as a task goes on from.
enum Next {
    /// Its first attempt, not started yet (a held-back delivery).
    Start,
    /// The rest of an attempt that did not finish at its first poll.
    Finish(Pending),
    /// The next attempt, after this wait.
    Retry(Duration),
}

/// Runs a delivery from where the scheduler left it to its end: the rest of the current attempt,
/// then retries after their backoff, each attempt under the timeout.
async fn go_on(core: Arc<Core>, job: Job, mut next: Next, attempt_cell: Arc<AtomicU32>) {
    let Some(listener) = core.table.listener_entry(job.event, job.slot) else {
        return;
    };
    let policy = core.table.policy(listener);
    let header = &job.payload.header;
    let mut attempt = 1;
    loop {
        let result = match next {
            Next::Finish(pending) => pending.finish().await,
            Next::Start | Next::Retry(_) => {
                if let Next::Retry(wait) = next {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    // A cancel that took the delivery over ends it.
                    if attempt_cell
                        .compare_exchange(attempt - 1, attempt, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                    {
                        return;
                    }
                }
                let meta = EventMeta::of(header, listener.name, attempt);
                run_attempt(&core, listener, policy, &job.payload, &meta).await
            }
        };
        let meta = EventMeta::of(header, listener.name, attempt);
        match core.outcomes.conclude(listener, policy, &meta, result) {
            Outcome::Retry { after, .. } => next = Next::Retry(after),
            Outcome::Delivered | Outcome::Failed { .. } => break,
        }
    }
    // Counted as stopped before the event is let go, so that once the emitter is idle its
    // metrics show nothing in flight.
    if attempt_cell.swap(0, Ordering::SeqCst) > 0 {
        listener.stats.stopped();
    }
    drop(job);
}
