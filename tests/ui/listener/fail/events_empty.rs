//! `events = []` lists no event, so the listener would never run.
use emitter::listener;

#[listener(events = [])]
async fn on_nothing() {}

fn main() {}
