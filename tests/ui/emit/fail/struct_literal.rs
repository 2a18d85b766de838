//! `emit!` is given a struct literal instead of `field = value` pairs.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated { email: "jane@example.com".into() });
}

fn main() {}
