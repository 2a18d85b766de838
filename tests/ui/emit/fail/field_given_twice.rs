//! `emit!` gives the `email` field twice.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, email = "a@example.com", email = "b@example.com");
}

fn main() {}
