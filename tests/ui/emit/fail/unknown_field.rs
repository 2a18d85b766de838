//! `emit!` gives a field, `reason`, that the event does not have.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserDeleted {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserDeleted, email = "jane@example.com", reason = "asked");
}

fn main() {}
