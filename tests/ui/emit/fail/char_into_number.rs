//! `emit!` gives a `char` to the `u64` field `id`: a `char` is not a number.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub id: u64,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, id = 'a');
}

fn main() {}
