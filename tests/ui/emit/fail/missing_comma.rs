//! `emit!` forgets the comma between two fields.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub message: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, email = "jane@example.com" message = "hi");
}

fn main() {}
