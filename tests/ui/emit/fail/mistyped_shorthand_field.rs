//! `emit!` uses the shorthand `id` with a local `id` of the wrong type.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub id: u64,
}

fn send(emitter: &Emitter) {
    let id = "42";
    let _ = emit!(emitter, UserCreated, id);
}

fn main() {}
