//! `emit!` names an event type that does not exist (a typo).
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreatd, email = "jane@example.com");
}

fn main() {}
