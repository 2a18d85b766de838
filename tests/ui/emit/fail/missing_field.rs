//! `emit!` leaves out the event's `message` field.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub message: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, email = "jane@example.com");
}

fn main() {}
