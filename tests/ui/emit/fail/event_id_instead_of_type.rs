//! `emit!` is given the event's id, as Litestar's `emit("user_created", ...)` takes, instead of
//! its type.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, "user_created", email = "jane@example.com");
}

fn main() {}
