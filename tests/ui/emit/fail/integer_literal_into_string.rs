//! `emit!` gives a number literal to the `String` field `name`: rustc's own message, as for a
//! struct literal.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub name: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, name = 42);
}

fn main() {}
