//! `emit!` is given only the emitter, no event type.
use emitter::{emit, Emitter};

fn send(emitter: &Emitter) {
    let _ = emit!(emitter);
}

fn main() {}
