//! The in-memory scheduler: one task per emitter takes what the inbox holds in emit order
//! (holding delayed envelopes until their time), starts each (event, listener) delivery inline,
//! and hands the ones that do not finish at once (or must retry) to tasks; per listener it
//! enforces the concurrency limit with a FIFO backlog.
//!
//! What it costs per event is kept small: an event with one listener that has one attempt is
//! moved into its delivery (no allocation, no reference count); an event with several listeners
//! is shared by them in one allocation. Counters (the queue depth, pending events, successful
//! deliveries) are updated once per chunk of events, not per delivery.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::attempt::{run_attempt, Attempt, Begun, Pending};
use super::inbox::{Adapters, Batch, Dropped, Inbox, Queued, Sink};
use super::{Core, Outcome};
use crate::context::EventMeta;
use crate::envelope::Envelope;
use crate::error::Failure;
use crate::event::{Emitted, Event, Header, Payload};
use crate::lifecycle::EventToken;
use crate::listener::AdapterSlot;
use crate::listener::{Adapter, EventRef, Held};
use crate::report::UnfinishedDelivery;
use crate::stats::Tally;
use crate::table::{EventTable, ListenerEntry};

/// What the scheduler is told besides what comes through the inbox.
pub(crate) enum Control {
    /// Everything is delivered: exit.
    Stop,
    /// The shutdown deadline passed: drop what is queued, abort what runs, say what that was.
    Cancel(oneshot::Sender<Vec<UnfinishedDelivery>>),
}

/// The sending side of a scheduler.
#[derive(Debug)]
pub(crate) struct SchedulerHandle {
    pub(crate) inbox: Arc<Inbox<Scheduler>>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

/// Starts a scheduler for `core` on `runtime` and returns its handle.
pub(crate) fn spawn_scheduler(
    core: Arc<Core>,
    runtime: &tokio::runtime::Handle,
) -> SchedulerHandle {
    let inbox = Arc::new(Inbox::new());
    let (control, control_receiver) = mpsc::unbounded_channel();
    let table = &core.table;
    let runs = Runs {
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
        finished: 0,
        delivered: Tally::new(table.len()),
    };
    // Made here, not in `run`: a task dropped before its first poll drops it too, and its
    // `Drop` marks the emitter stopped.
    let scheduler = Scheduler {
        core,
        inbox: Arc::clone(&inbox),
        batch: Batch::default(),
        runs,
        delayed: BinaryHeap::new(),
        delayed_count: 0,
        exited: false,
    };
    runtime.spawn(scheduler.run(control_receiver));
    SchedulerHandle { inbox, control }
}

pub(crate) struct Scheduler {
    core: Arc<Core>,
    inbox: Arc<Inbox<Scheduler>>,
    /// What was taken from the inbox and not handed out yet.
    batch: Batch<Scheduler>,
    runs: Runs,
    /// Envelopes due later, earliest first.
    delayed: BinaryHeap<Reverse<Delayed>>,
    /// Numbers the delayed envelopes, so that those due at the same time keep dispatch order.
    delayed_count: u64,
    /// Whether the scheduler exited as told (rather than being dropped with its runtime).
    exited: bool,
}

/// The deliveries the scheduler runs, and its counts not yet published.
struct Runs {
    listeners: Vec<ListenerSlot>,
    /// Per (event, listener) pair: the adapter's reusable future allocation.
    adapters: Vec<AdapterSlot>,
    tasks: JoinSet<()>,
    running: HashMap<tokio::task::Id, Running>,
    /// Deliveries started since the last flush, not yet taken off the queue depth.
    started: u64,
    /// Events whose deliveries all ended since the last flush, not yet finished.
    finished: u64,
    /// Successful deliveries since the last flush, not yet in the listeners' counters.
    delivered: Tally,
}

/// One (event, listener) delivery that runs as a task, or waits for room to.
struct Job {
    event: usize,
    slot: usize,
    /// The metadata of its first attempt.
    meta: EventMeta,
    /// The event, for the attempts the task makes; `None` when the event was moved into the
    /// delivery's only attempt.
    payload: Option<Payload>,
    /// Finishes a moved event when the delivery ends (when the job is dropped).
    _token: Option<EventToken>,
}

/// A delivery that went on as a task.
struct Running {
    event: usize,
    slot: usize,
    meta: EventMeta,
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

/// How many events the scheduler hands out between two flushes of its counts.
const CHUNK: usize = 256;

impl Drop for Scheduler {
    /// Dropped without having exited, the scheduler's runtime shut down: emits fail from now on
    /// instead of queueing events nothing will run, and what waits is let go.
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        self.core.lifecycle.stopped();
        let mut left = self.inbox.close();
        let mut events = 0;
        for dropped in left.drain().into_iter().chain(self.batch.drain()) {
            // A dropped envelope's token finishes its event.
            if let Dropped::Event { .. } = dropped {
                events += 1;
            }
        }
        self.runs.delivered.flush(&self.core.table);
        self.core.lifecycle.finish_many(self.runs.finished + events);
    }
}

impl Scheduler {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
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
                    // `None`: every handle of the emitter was dropped.
                    self.exited = true;
                    if let Some(Control::Cancel(reply)) = command {
                        let _ = reply.send(self.cancel());
                    }
                    return;
                }
                Some(done) = self.runs.tasks.join_next_with_id(), if !self.runs.tasks.is_empty() => {
                    let (id, panic) = match done {
                        Ok((id, _)) => (id, None),
                        Err(error) => (error.id(), error.try_into_panic().ok()),
                    };
                    if let Some(record) = self.runs.running.remove(&id) {
                        if let Some(payload) = panic {
                            self.runs.task_panicked(&self.core, &record, payload);
                        }
                        self.runs.task_finished(&self.core, record.event, record.slot);
                    }
                }
                () = &mut timer, if next_due.is_some() => {
                    self.deliver_due().await;
                }
                () = poll_fn(|cx| ready(&self.inbox, &mut self.batch, cx)) => {
                    self.deliver_chunk().await;
                }
            }
        }
    }

    /// Hands out the next chunk of the batch, then publishes the counts.
    async fn deliver_chunk(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        self.core.lifecycle.queue_taken(batch.take_queued());
        poll_fn(|cx| {
            batch.deliver(self, CHUNK, cx);
            Poll::Ready(())
        })
        .await;
        if batch.is_empty() {
            batch.shrink();
        }
        self.batch = batch;
        self.runs.flush(&self.core);
        // A long batch lets the runtime's other tasks run between chunks.
        tokio::task::coop::consume_budget().await;
    }

    /// Starts the deliveries of the delayed envelopes that are due.
    async fn deliver_due(&mut self) {
        let now = tokio::time::Instant::now();
        let mut due = Vec::new();
        while self
            .delayed
            .peek()
            .is_some_and(|Reverse(delayed)| delayed.due <= now)
        {
            if let Some(Reverse(delayed)) = self.delayed.pop() {
                due.push(delayed.envelope);
            }
        }
        let (core, runs) = (&self.core, &mut self.runs);
        poll_fn(|cx| {
            for envelope in due.drain(..) {
                runs.deliver_envelope(core, envelope, cx);
            }
            Poll::Ready(())
        })
        .await;
        runs.flush(core);
    }

    fn cancel(&mut self) -> Vec<UnfinishedDelivery> {
        let (core, runs) = (&self.core, &mut self.runs);
        let table = Arc::clone(&core.table);
        let mut unfinished = Vec::new();
        for record in runs.running.values() {
            // Whoever takes the attempt to 0 counts the task as stopped: a task that ended
            // meanwhile did so itself.
            let attempt = record.attempt.swap(0, Ordering::SeqCst);
            if attempt == 0 {
                continue;
            }
            if let Some((_, listener)) = names(&table, record.event, record.slot) {
                listener.stats.stopped();
                unfinished.push(UnfinishedDelivery::running(
                    record.meta.event_id,
                    listener.name,
                    record.meta.emit_id,
                    attempt,
                    record.since.elapsed(),
                ));
            }
        }
        runs.tasks.abort_all();
        // What the inbox holds is queued too; after this, nothing more is taken.
        let mut inbox = self.inbox.close();
        core.lifecycle.queue_taken(inbox.take_queued());
        let mut queued: Vec<Dropped> = self
            .delayed
            .drain()
            .map(|Reverse(delayed)| Dropped::Envelope(delayed.envelope))
            .collect();
        queued.extend(self.batch.drain());
        queued.extend(inbox.drain());
        let mut dropped = 0;
        let mut events = 0;
        for item in &queued {
            let (event, emit_id) = match item {
                Dropped::Event { event, emit } => {
                    events += 1;
                    (*event, core.ids.with_count(*emit))
                }
                Dropped::Envelope(envelope) => (envelope.event, envelope.emit_id()),
            };
            for slot in 0..table.listener_count(event) as usize {
                if let Some((event_id, listener)) = names(&table, event, slot) {
                    dropped += 1;
                    unfinished.push(UnfinishedDelivery::queued(event_id, listener.name, emit_id));
                }
            }
        }
        drop(queued);
        for room in &mut runs.listeners {
            for job in room.backlog.drain(..) {
                if let Some((event_id, listener)) = names(&table, job.event, job.slot) {
                    dropped += 1;
                    unfinished.push(UnfinishedDelivery::queued(
                        event_id,
                        listener.name,
                        job.meta.emit_id,
                    ));
                }
            }
        }
        core.lifecycle.unqueue(dropped);
        runs.finished += events;
        runs.flush(core);
        unfinished
    }
}

/// Ready when the scheduler has something to hand out: what is left of its batch, or what came
/// into the inbox since.
fn ready(inbox: &Inbox<Scheduler>, batch: &mut Batch<Scheduler>, cx: &mut Context<'_>) -> Poll<()> {
    if !batch.is_empty() || inbox.take(batch, cx.waker()) {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

impl Sink for Scheduler {
    fn adapters<E: Event>(&self, event: usize) -> Adapters<E> {
        self.core
            .table
            .event(event)
            .map(|entry| {
                entry
                    .listeners
                    .iter()
                    .map(|listener| listener.call.as_any().downcast_ref::<Adapter<E>>())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn deliver<E: Event>(
        &mut self,
        event: usize,
        queued: Queued<E>,
        adapters: &Adapters<E>,
        cx: &mut Context<'_>,
    ) {
        self.runs.deliver(&self.core, event, queued, adapters, cx);
    }

    fn deliver_envelope(&mut self, envelope: Envelope, cx: &mut Context<'_>) {
        match due_later(&envelope) {
            Some(due) => {
                self.delayed_count += 1;
                self.delayed.push(Reverse(Delayed {
                    due,
                    number: self.delayed_count,
                    envelope,
                }));
            }
            None => self.runs.deliver_envelope(&self.core, envelope, cx),
        }
    }
}

/// Where the scheduler keeps an event while it starts its deliveries: in place (deliveries
/// that run now borrow it), shared (some delivery goes on and needs it), or moved into its last
/// delivery.
enum Holding<E> {
    Here(Emitted<E>),
    Shared(Arc<Emitted<E>>),
    Moved,
}

impl<E: Event> Holding<E> {
    fn get(&self) -> Option<&Emitted<E>> {
        match self {
            Holding::Here(emitted) => Some(emitted),
            Holding::Shared(emitted) => Some(emitted),
            Holding::Moved => None,
        }
    }

    /// The event in one allocation that deliveries can share.
    fn share(&mut self) -> Option<&Arc<Emitted<E>>> {
        if let Holding::Here(_) = self {
            if let Holding::Here(emitted) = std::mem::replace(self, Holding::Moved) {
                *self = Holding::Shared(Arc::new(emitted));
            }
        }
        match self {
            Holding::Shared(emitted) => Some(emitted),
            Holding::Here(_) | Holding::Moved => None,
        }
    }

    /// The event, for a delivery to own, if it is still in place.
    fn take(&mut self) -> Option<Emitted<E>> {
        match std::mem::replace(self, Holding::Moved) {
            Holding::Here(emitted) => Some(emitted),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Runs {
    /// Whether `listener` can start a delivery now: it is under its concurrency limit, and no
    /// earlier delivery of it waits.
    #[inline]
    fn has_room(&self, listener: &ListenerEntry) -> bool {
        let room = &self.listeners[listener.listener];
        room.running < room.limit && room.backlog.is_empty()
    }

    /// Starts the deliveries of a plain emit's event, in its listeners' order.
    fn deliver<E: Event>(
        &mut self,
        core: &Arc<Core>,
        event: usize,
        queued: Queued<E>,
        adapters: &Adapters<E>,
        cx: &mut Context<'_>,
    ) {
        let Some(entry) = core.table.event(event) else {
            self.finished += 1;
            return;
        };
        let mut holding = Holding::Here(Emitted {
            header: Header {
                event_id: E::ID,
                emit_id: core.ids.with_count(queued.emit),
                emitted_at: queued.emitted_at,
                trace: queued.trace,
                token: OnceLock::new(),
            },
            event: queued.event,
        });
        let last = entry.listeners.len().saturating_sub(1);
        for (slot, listener) in entry.listeners.iter().enumerate() {
            if self.has_room(listener) {
                let adapter = adapters.get(slot).copied().flatten();
                self.start_typed(
                    core,
                    listener,
                    adapter,
                    (event, slot),
                    &mut holding,
                    slot == last,
                    cx,
                );
            } else if let Some(shared) = holding.share() {
                let payload = Arc::clone(shared) as Payload;
                self.hold_back(listener, (event, slot), payload);
            }
        }
        self.release(core, holding);
    }

    /// The deliveries of an event have started: it is finished now, unless one that goes on
    /// holds it, which then finishes it.
    fn release<E: Event>(&mut self, core: &Core, holding: Holding<E>) {
        match holding {
            Holding::Here(_) => self.finished += 1,
            // Its delivery finished it, or holds its token.
            Holding::Moved => {}
            Holding::Shared(shared) => match Arc::try_unwrap(shared) {
                Ok(_) => self.finished += 1,
                Err(shared) => {
                    // The last delivery to let it go finishes it, maybe on another thread, so
                    // the counts of those that ended here go out first.
                    self.delivered.flush(&core.table);
                    let _ = shared.header.token.set(EventToken::adopt(&core.lifecycle));
                }
            },
        }
    }

    /// Queues a delivery its listener has no room for yet.
    fn hold_back(
        &mut self,
        listener: &ListenerEntry,
        (event, slot): (usize, usize),
        payload: Payload,
    ) {
        self.listeners[listener.listener].backlog.push_back(Job {
            event,
            slot,
            meta: EventMeta::of(&payload.header, listener.name, 1),
            payload: Some(payload),
            _token: None,
        });
    }

    /// Runs the first attempt of a delivery of an event the scheduler holds as an `E`: in
    /// place when the listener's body has no `.await`, else polled once inline. If it does not
    /// finish, or fails with attempts left, the delivery goes on as a task.
    #[allow(clippy::too_many_arguments)]
    fn start_typed<E: Event>(
        &mut self,
        core: &Arc<Core>,
        listener: &ListenerEntry,
        adapter: Option<&Adapter<E>>,
        (event, slot): (usize, usize),
        holding: &mut Holding<E>,
        last: bool,
        cx: &mut Context<'_>,
    ) {
        self.started += 1;
        let policy = core.table.policy(listener);
        let (Some(adapter), Some(emitted)) = (adapter, holding.get()) else {
            // Not reached: the table lists an adapter under the event type it was made for,
            // and only the last delivery takes the event.
            return;
        };
        let attempt = Attempt {
            core,
            listener,
            policy,
            header: &emitted.header,
            number: 1,
            transaction: None,
        };
        let meta = || EventMeta::of(&emitted.header, listener.name, 1);
        let (next, meta) = match adapter {
            Adapter::Now(call) => {
                let result = attempt.run_now(*call, &emitted.event);
                match core.outcomes.conclude_tallied(
                    listener,
                    policy,
                    meta,
                    result,
                    &mut self.delivered,
                ) {
                    Outcome::Delivered | Outcome::Failed { .. } => return,
                    Outcome::Retry { after, .. } => (Next::Retry(after), meta()),
                }
            }
            Adapter::Future(call) => {
                let prepared = attempt.prepare();
                let meta = meta();
                // The last delivery of an event, with one attempt, owns it.
                let owned = last && policy.max_attempts() == 1;
                let event_ref = match (owned, holding.take()) {
                    (true, Some(emitted)) => EventRef::Owned(emitted),
                    (_, taken) => {
                        if let Some(emitted) = taken {
                            *holding = Holding::Here(emitted);
                        }
                        match holding.share() {
                            Some(shared) => EventRef::Shared(Arc::clone(shared)),
                            None => return,
                        }
                    }
                };
                let owned = matches!(event_ref, EventRef::Owned(_));
                let Some(adapter_slot) = self.adapters.get_mut(listener.pair) else {
                    return;
                };
                match prepared.start(adapter_slot, cx, |parts, slot, cx| {
                    call(Held::new(event_ref, parts), slot, cx)
                }) {
                    Begun::Done(result) => {
                        if owned {
                            // Its only delivery dropped it.
                            self.finished += 1;
                        }
                        match core.outcomes.conclude_tallied(
                            listener,
                            policy,
                            || meta.clone(),
                            result,
                            &mut self.delivered,
                        ) {
                            Outcome::Delivered | Outcome::Failed { .. } => return,
                            Outcome::Retry { after, .. } => (Next::Retry(after), meta),
                        }
                    }
                    Begun::Pending(pending) => (Next::Finish(pending), meta),
                }
            }
        };
        // Goes on as a task: with the event shared, or, if it moved into the delivery, with its
        // token.
        let (payload, token) = match holding.share() {
            Some(shared) => (Some(Arc::clone(shared) as Payload), None),
            None => (None, Some(EventToken::adopt(&core.lifecycle))),
        };
        let job = Job {
            event,
            slot,
            meta,
            payload,
            _token: token,
        };
        self.spawn(core, listener, job, next);
    }

    /// Starts the deliveries of an envelope's event; its token finishes it.
    fn deliver_envelope(&mut self, core: &Arc<Core>, envelope: Envelope, cx: &mut Context<'_>) {
        let Envelope { payload, event, .. } = envelope;
        let Some(entry) = core.table.event(event) else {
            return;
        };
        for (slot, listener) in entry.listeners.iter().enumerate() {
            if self.has_room(listener) {
                self.start_erased(core, listener, (event, slot), &payload, cx);
            } else {
                self.hold_back(listener, (event, slot), Arc::clone(&payload));
            }
        }
    }

    /// Runs the first attempt of a delivery of a type-erased event inline; if it does not
    /// finish, or fails with attempts left, the delivery goes on as a task.
    fn start_erased(
        &mut self,
        core: &Arc<Core>,
        listener: &ListenerEntry,
        (event, slot): (usize, usize),
        payload: &Payload,
        cx: &mut Context<'_>,
    ) {
        self.started += 1;
        let policy = core.table.policy(listener);
        let Some(adapter_slot) = self.adapters.get_mut(listener.pair) else {
            return;
        };
        let attempt = Attempt {
            core,
            listener,
            policy,
            header: &payload.header,
            number: 1,
            transaction: None,
        };
        let next = match attempt.start_erased(payload, adapter_slot, cx) {
            Begun::Done(result) => {
                match core.outcomes.conclude_tallied(
                    listener,
                    policy,
                    || attempt.meta(),
                    result,
                    &mut self.delivered,
                ) {
                    Outcome::Delivered | Outcome::Failed { .. } => return,
                    Outcome::Retry { after, .. } => Next::Retry(after),
                }
            }
            Begun::Pending(pending) => Next::Finish(pending),
        };
        let job = Job {
            event,
            slot,
            meta: attempt.meta(),
            payload: Some(Arc::clone(payload)),
            _token: None,
        };
        self.spawn(core, listener, job, next);
    }

    fn spawn(&mut self, core: &Arc<Core>, listener: &ListenerEntry, job: Job, next: Next) {
        let attempt = Arc::new(AtomicU32::new(1));
        let record = Running {
            event: job.event,
            slot: job.slot,
            meta: job.meta.clone(),
            attempt: Arc::clone(&attempt),
            since: tokio::time::Instant::now(),
        };
        self.listeners[listener.listener].running += 1;
        listener.stats.running();
        let task = self
            .tasks
            .spawn(go_on(Arc::clone(core), job, next, attempt));
        self.running.insert(task.id(), record);
    }

    /// Publishes the counts: successful deliveries first, so that whoever sees the events
    /// finished sees them delivered.
    fn flush(&mut self, core: &Core) {
        self.delivered.flush(&core.table);
        core.lifecycle.unqueue(std::mem::take(&mut self.started));
        core.lifecycle
            .finish_many(std::mem::take(&mut self.finished));
    }

    /// A delivery task panicked outside the listener (whose panics are caught): the delivery
    /// failed, and the error hook hears of it like of any failure.
    fn task_panicked(&self, core: &Core, record: &Running, payload: Box<dyn std::any::Any + Send>) {
        let attempt = record.attempt.swap(0, Ordering::SeqCst);
        let Some(listener) = core.table.listener_entry(record.event, record.slot) else {
            return;
        };
        if attempt > 0 {
            listener.stats.stopped();
        }
        core.outcomes.failed(
            listener,
            record.meta.event_id,
            record.meta.emit_id,
            attempt.max(1),
            Failure::from_panic(payload),
        );
    }

    /// A delivery task ended: make room for the listener's next held-back delivery.
    fn task_finished(&mut self, core: &Arc<Core>, event: usize, slot: usize) {
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
            self.spawn(core, next, job, Next::Start);
        }
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
    let mut meta = job.meta.clone();
    loop {
        let result = match next {
            Next::Finish(pending) => pending.finish().await,
            Next::Start | Next::Retry(_) => {
                // A moved event has one attempt, already made: there is nothing to retry.
                let Some(payload) = &job.payload else {
                    break;
                };
                if let Next::Retry(wait) = next {
                    tokio::time::sleep(wait).await;
                    let attempt = meta.attempt + 1;
                    // A cancel that took the delivery over ends it.
                    if attempt_cell
                        .compare_exchange(attempt - 1, attempt, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                    {
                        return;
                    }
                    meta.attempt = attempt;
                }
                run_attempt(&core, listener, policy, payload, meta.attempt, None).await
            }
        };
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
