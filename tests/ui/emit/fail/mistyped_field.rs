//! `emit!` gives a string to the `u64` field `id`.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub id: u64,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, id = "42");
}

fn main() {}
