//! The result of `emit!` is dropped, hiding a failed emit.
#![deny(unused_must_use)]
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &Emitter) {
    emit!(emitter, UserCreated, email = "jane@example.com");
}

fn main() {}
