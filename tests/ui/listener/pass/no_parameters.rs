//! A listener can take nothing at all.
use emitter::{listener, Event};

#[derive(Event)]
pub struct Tick {}

#[listener(events = [Tick])]
async fn on_tick() {}

#[listener(events = [Tick])]
fn on_tick_sync() {}

fn main() {}
