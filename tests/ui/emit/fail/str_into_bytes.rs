//! `emit!` gives a `&str` to the `Vec<u8>` field `payload`: text is not bytes.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct JobQueued {
    pub payload: Vec<u8>,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, JobQueued, payload = "job-7");
}

fn main() {}
