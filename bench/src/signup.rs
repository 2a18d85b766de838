//! W1 and W2: a sign-up event carrying an e-mail address and an id, and listeners that add the
//! id to a counter. Also the listeners the criterion and allocation benches need on that event.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use emitter::{listener, Event, State};
use tokio::sync::Notify;

use crate::counter::{Counter, Counters};

/// The e-mail address of sign-up `id`, as the peer benchmark builds it (`u` + the id in 7
/// digits + `@example.com`: 20 bytes below ten million), so every event formats and owns one
/// 20-byte heap string, inside the timed loop.
pub fn email(id: u64) -> String {
    format!("u{id:07}@example.com")
}

/// The event of W1 and W2.
#[derive(Event, Debug, Clone)]
pub struct Signup {
    pub email: String,
    pub id: u64,
}

impl Signup {
    /// A sign-up with id `id`; formats its e-mail string, as a real event would.
    pub fn new(id: u64) -> Self {
        Signup {
            email: email(id),
            id,
        }
    }
}

/// W1's listener.
#[listener(events = [Signup])]
pub async fn count_signup(id: u64, counter: State<Counter>) {
    counter.add(id);
}

/// W2's first listener: the three listeners of W2 each add to their own counter.
#[listener(events = [Signup])]
pub async fn fanout_a(id: u64, counters: State<Counters>) {
    counters.add(0, id);
}

/// W2's second listener.
#[listener(events = [Signup])]
pub async fn fanout_b(id: u64, counters: State<Counters>) {
    counters.add(1, id);
}

/// W2's third listener.
#[listener(events = [Signup])]
pub async fn fanout_c(id: u64, counters: State<Counters>) {
    counters.add(2, id);
}

/// A listener that does nothing, to measure what emitting costs by itself.
#[listener(events = [Signup])]
pub async fn ignore_signup(id: u64) {
    std::hint::black_box(id);
}

/// W1's listener behind a gate: it waits until the gate opens, then counts. Lets a benchmark
/// hold deliveries in the emitter to measure what they cost in memory.
#[listener(events = [Signup])]
pub async fn gated_count_signup(id: u64, gate: State<Gate>, counter: State<Counter>) {
    gate.pass().await;
    counter.add(id);
}

/// A gate listeners wait at; closed until [`Gate::open`].
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<GateInner>);

#[derive(Debug, Default)]
struct GateInner {
    open: AtomicBool,
    opened: Notify,
    arrived: AtomicU64,
}

impl Gate {
    /// A closed gate.
    pub fn closed() -> Self {
        Self::default()
    }

    /// Opens the gate: every listener waiting at it goes on, and later ones pass at once.
    pub fn open(&self) {
        self.0.open.store(true, Ordering::SeqCst);
        self.0.opened.notify_waiters();
    }

    /// Closes the gate for listeners that arrive from now on.
    pub fn close(&self) {
        self.0.open.store(false, Ordering::SeqCst);
    }

    /// How many listener calls reached the gate so far, open or not.
    pub fn arrived(&self) -> u64 {
        self.0.arrived.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        self.0.arrived.fetch_add(1, Ordering::SeqCst);
        loop {
            // Registered before the check, so an `open` between the check and the wait is seen.
            let opened = self.0.opened.notified();
            if self.0.open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}
