//! `emit!` is given something that is not an `Emitter` as its first argument.
use emitter::{emit, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &str) {
    let _ = emit!(emitter, UserCreated, email = "jane@example.com");
}

fn main() {}
