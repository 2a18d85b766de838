//! `emit!` goes straight from the emitter to the fields, without the event type.
use emitter::{emit, Emitter};

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, email = "jane@example.com");
}

fn main() {}
