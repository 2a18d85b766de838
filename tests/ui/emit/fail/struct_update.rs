//! `emit!` uses struct-update syntax, `..base`, which it does not have.
use emitter::{emit, Emitter, Event};

#[derive(Event, Clone)]
pub struct UserCreated {
    pub email: String,
    pub name: String,
}

fn send(emitter: &Emitter, base: UserCreated) {
    let _ = emit!(emitter, UserCreated, email = "jane@example.com", ..base);
}

fn main() {}
