//! `#[derive(Event)]` is put on a unit struct.
use emitter::Event;

#[derive(Event)]
pub struct Tick;

fn main() {}
