//! `emit!` gives a `char` to the `String` field `reason`: only string-likes convert to a `String`.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserDeleted {
    pub reason: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserDeleted, reason = 'A');
}

fn main() {}
