//! `emit!` writes `field: value` (struct-literal style) instead of `field = value`.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, email: "jane@example.com");
}

fn main() {}
