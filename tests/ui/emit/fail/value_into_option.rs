//! `emit!` gives a `u64` to the `Option<u64>` field `referrer`: wrap it in `Some`.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub referrer: Option<u64>,
}

fn send(emitter: &Emitter, referrer: u64) {
    let _ = emit!(emitter, UserCreated, referrer);
}

fn main() {}
