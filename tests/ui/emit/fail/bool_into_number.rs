//! `emit!` gives a `bool` to the `u64` field `score`: a `bool` is not a number.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct Scored {
    pub score: u64,
}

fn send(emitter: &Emitter, passed: bool) {
    let _ = emit!(emitter, Scored, score = passed);
}

fn main() {}
