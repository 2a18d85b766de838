//! W4: a listener that reports the instant it starts, to measure the latency from emit to
//! listener start.

use std::time::Instant;

use emitter::{listener, Event, State};
use tokio::sync::mpsc;

use crate::counter::Counter;

/// The event of W4.
#[derive(Event, Debug, Clone)]
pub struct Ping {
    pub seq: u64,
}

/// Where [`ping_started`] reports: which ping started, and when.
#[derive(Debug, Clone)]
pub struct Probe {
    started: mpsc::UnboundedSender<(u64, Instant)>,
    sum: Counter,
}

impl Probe {
    /// A probe and the receiver of its reports.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<(u64, Instant)>) {
        let (started, reports) = mpsc::unbounded_channel();
        let probe = Probe {
            started,
            sum: Counter::default(),
        };
        (probe, reports)
    }

    /// The sum of the `seq` of every ping handled so far.
    pub fn sum(&self) -> u64 {
        self.sum.get()
    }
}

/// W4's listener: takes the time first, then counts and reports.
#[listener(events = [Ping])]
pub async fn ping_started(seq: u64, probe: State<Probe>) {
    let at = Instant::now();
    probe.sum.add(seq);
    // The receiver outlives every run that measures; nobody is left to tell if it did not.
    let _ = probe.started.send((seq, at));
}
