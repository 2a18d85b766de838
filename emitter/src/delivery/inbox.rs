//! The scheduler's inbox: what emits hand over, in emit order, under one short lock.
//!
//! A plain emit on the in-memory backend pushes its event by value onto the lane of its type (no
//! allocation besides the lane's amortized growth, no type erasure); an envelope (an emit with
//! options, or what a custom backend dispatches) goes in its own queue. One list of positions
//! keeps the order across both. The scheduler swaps the whole batch out at once, so that emits
//! and the scheduler contend for a lock held for a push or a swap, and wakes once per batch.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::time::SystemTime;

use crate::envelope::Envelope;
use crate::event::Event;
use crate::listener::Adapter;
use crate::trace::Trace;

/// A plain emit's event waiting in its lane, with the little the emitter knows of it: the
/// scheduler makes it an [`Emitted`](crate::event::Emitted) when it starts its deliveries.
pub(crate) struct Queued<E> {
    pub(crate) event: E,
    /// The emit id's count in the emitter's range (see `EmitIds`).
    pub(crate) emit: u64,
    pub(crate) emitted_at: SystemTime,
    pub(crate) trace: Option<Box<Trace>>,
}

/// What runs what the inbox holds: the scheduler. A trait, so that this module does not depend
/// on the scheduler's.
pub(crate) trait Sink {
    /// The typed adapters of the listeners of the event at `event` in the table, in order
    /// (`None` for one that is not of type `E`, which the table never lists).
    fn adapters<E: Event>(&self, event: usize) -> Adapters<E>;

    /// Starts the deliveries of the event at `event` in the table, which has `adapters`.
    fn deliver<E: Event>(
        &mut self,
        event: usize,
        queued: Queued<E>,
        adapters: &Adapters<E>,
        cx: &mut Context<'_>,
    );

    /// Starts the deliveries of an envelope (or holds it, if it is due later).
    fn deliver_envelope(&mut self, envelope: Envelope, cx: &mut Context<'_>);
}

/// The events of one type, in emit order.
trait Lane<S>: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// Hands the oldest event to `sink`.
    fn deliver_next(&mut self, sink: &mut S, cx: &mut Context<'_>);

    /// Takes the oldest event off without delivering it; says its emit's count.
    fn drop_next(&mut self) -> Option<u64>;

    /// Gives back the memory of a burst.
    fn shrink(&mut self);
}

/// The typed adapters of an event's listeners, in order.
pub(crate) type Adapters<E> = Box<[Option<&'static Adapter<E>>]>;

struct TypedLane<E: 'static> {
    /// The index of the lane's event in the table.
    event: usize,
    queued: Chunks<Queued<E>, 64>,
    /// Its listeners' adapters, found at the first delivery.
    adapters: Option<Adapters<E>>,
}

impl<S: Sink, E: Event> Lane<S> for TypedLane<E> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn deliver_next(&mut self, sink: &mut S, cx: &mut Context<'_>) {
        let event = self.event;
        let adapters = self
            .adapters
            .get_or_insert_with(|| sink.adapters::<E>(event));
        if let Some(queued) = self.queued.pop() {
            sink.deliver::<E>(event, queued, adapters, cx);
        }
    }

    fn drop_next(&mut self) -> Option<u64> {
        self.queued.pop().map(|queued| queued.emit)
    }

    fn shrink(&mut self) {
        self.queued.shrink();
    }
}

/// A FIFO in chunks of `N`: a push never moves what is queued (a doubling buffer copies it all
/// at each growth, and a burst's buffer comes and goes as fresh pages), and emptied chunks are
/// kept for the next ones.
struct Chunks<T, const N: usize> {
    chunks: VecDeque<VecDeque<T>>,
    spare: Vec<VecDeque<T>>,
}

/// How many emptied chunks a FIFO keeps beyond a burst.
const SPARE_KEPT: usize = 16;

impl<T, const N: usize> Default for Chunks<T, N> {
    fn default() -> Self {
        Chunks {
            chunks: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

impl<T, const N: usize> Chunks<T, N> {
    fn push(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(back) if back.len() < N => back.push_back(item),
            _ => {
                let mut chunk = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| VecDeque::with_capacity(N));
                chunk.push_back(item);
                self.chunks.push_back(chunk);
            }
        }
    }

    fn pop(&mut self) -> Option<T> {
        let front = self.chunks.front_mut()?;
        let item = front.pop_front();
        if front.is_empty() {
            if let Some(emptied) = self.chunks.pop_front() {
                self.spare.push(emptied);
            }
        }
        item
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Gives back the spare chunks of a burst.
    fn shrink(&mut self) {
        self.spare.truncate(SPARE_KEPT);
        if self.chunks.is_empty() {
            self.chunks.shrink_to(SPARE_KEPT);
        }
    }
}

/// Where the item at a position of [`Batch::order`] is.
const ENVELOPE: u32 = u32::MAX;

/// Items in emit order: the events of plain emits in their lanes, and envelopes.
pub(crate) struct Batch<S> {
    /// The lane of each item, or [`ENVELOPE`].
    order: Chunks<u32, 1024>,
    /// Per event of the table, its lane, made at its first event.
    lanes: Vec<Option<Box<dyn Lane<S>>>>,
    envelopes: VecDeque<Envelope>,
    /// Deliveries of the events in the lanes (an envelope's are counted when it is emitted).
    queued: u64,
}

impl<S> Default for Batch<S> {
    fn default() -> Self {
        Batch {
            order: Chunks::default(),
            lanes: Vec::new(),
            envelopes: VecDeque::new(),
            queued: 0,
        }
    }
}

/// What was dropped from a batch: per item, its event's index in the table (`None` for an
/// envelope) and its emit (the count of its id, or the envelope).
pub(crate) enum Dropped {
    Event { event: usize, emit: u64 },
    Envelope(Envelope),
}

impl<S: Sink> Batch<S> {
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Takes the count of deliveries of the events that came in lanes, for the queue depth.
    pub(crate) fn take_queued(&mut self) -> u64 {
        std::mem::take(&mut self.queued)
    }

    /// Hands up to `limit` items to `sink`, oldest first; returns how many.
    pub(crate) fn deliver(&mut self, sink: &mut S, limit: usize, cx: &mut Context<'_>) -> usize {
        for handed in 0..limit {
            let Some(position) = self.order.pop() else {
                return handed;
            };
            if position == ENVELOPE {
                if let Some(envelope) = self.envelopes.pop_front() {
                    sink.deliver_envelope(envelope, cx);
                }
            } else if let Some(Some(lane)) = self.lanes.get_mut(position as usize) {
                lane.deliver_next(sink, cx);
            }
        }
        limit
    }

    /// Takes every item off without delivering it, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<Dropped> {
        let mut dropped = Vec::new();
        while let Some(position) = self.order.pop() {
            if position == ENVELOPE {
                dropped.extend(self.envelopes.pop_front().map(Dropped::Envelope));
            } else if let Some(Some(lane)) = self.lanes.get_mut(position as usize) {
                dropped.extend(lane.drop_next().map(|emit| Dropped::Event {
                    event: position as usize,
                    emit,
                }));
            }
        }
        self.queued = 0;
        dropped
    }

    /// Gives back the memory of a burst, once the batch is empty.
    pub(crate) fn shrink(&mut self) {
        self.order.shrink();
        self.envelopes.shrink_to(SPARE_KEPT);
        for lane in self.lanes.iter_mut().flatten() {
            lane.shrink();
        }
    }
}

/// The inbox: the batch that emits fill, and the scheduler's waker.
pub(crate) struct Inbox<S> {
    shared: Mutex<Shared<S>>,
}

struct Shared<S> {
    batch: Batch<S>,
    /// The scheduler, when it found the inbox empty.
    waker: Option<Waker>,
    /// The scheduler is gone: nothing is taken any more.
    closed: bool,
    /// Events pushed into lanes so far, for the emitter's count of emitted events.
    pushed: u64,
}

impl<S> std::fmt::Debug for Inbox<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl<S: Sink + 'static> Inbox<S> {
    pub(crate) fn new() -> Self {
        Inbox {
            shared: Mutex::new(Shared {
                batch: Batch::default(),
                waker: None,
                closed: false,
                pushed: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<S>> {
        // Nothing panics while the lock is held but an allocation failure, which aborts.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the event of a plain emit, of the table's event `event`, which has `deliveries`
    /// listeners. Gives it back when the scheduler is gone.
    pub(crate) fn push<E: Event>(
        &self,
        event: usize,
        deliveries: u64,
        queued: Queued<E>,
    ) -> Result<(), Queued<E>> {
        let Ok(position) = u32::try_from(event) else {
            return Err(queued);
        };
        let waker = {
            let mut shared = self.lock();
            if shared.closed {
                return Err(queued);
            }
            let batch = &mut shared.batch;
            if batch.lanes.len() <= event {
                batch.lanes.resize_with(event + 1, || None);
            }
            let lane = batch.lanes[event].get_or_insert_with(|| {
                Box::new(TypedLane::<E> {
                    event,
                    queued: Chunks::default(),
                    adapters: None,
                })
            });
            let Some(lane) = lane.as_any_mut().downcast_mut::<TypedLane<E>>() else {
                // Not reached: a lane only ever holds its event's type.
                return Err(queued);
            };
            lane.queued.push(queued);
            batch.order.push(position);
            batch.queued += deliveries;
            shared.pushed += 1;
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues an envelope. Gives it back when the scheduler is gone.
    pub(crate) fn push_envelope(&self, envelope: Envelope) -> Result<(), Envelope> {
        let waker = {
            let mut shared = self.lock();
            if shared.closed {
                return Err(envelope);
            }
            shared.batch.envelopes.push_back(envelope);
            shared.batch.order.push(ENVELOPE);
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Swaps what came since the last call into `batch`, which must be empty; when nothing
    /// came, registers `waker` to be woken by the next push and returns false.
    pub(crate) fn take(&self, batch: &mut Batch<S>, waker: &Waker) -> bool {
        let mut shared = self.lock();
        if shared.batch.is_empty() {
            if !shared
                .waker
                .as_ref()
                .is_some_and(|old| old.will_wake(waker))
            {
                shared.waker = Some(waker.clone());
            }
            return false;
        }
        std::mem::swap(&mut shared.batch, batch);
        true
    }

    /// Deliveries of the events waiting in lanes (for the queue depth), and how many events
    /// were ever pushed into lanes.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let shared = self.lock();
        (shared.batch.queued, shared.pushed)
    }

    /// The scheduler is gone: refuses pushes from now on and gives back what waits.
    pub(crate) fn close(&self) -> Batch<S> {
        let mut shared = self.lock();
        shared.closed = true;
        shared.waker = None;
        std::mem::take(&mut shared.batch)
    }
}
