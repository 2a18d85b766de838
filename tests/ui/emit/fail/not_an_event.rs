//! `emit!` is given a struct that does not derive `Event`.
use emitter::{emit, Emitter};

pub struct Mail {
    pub email: String,
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, Mail, email = "jane@example.com");
}

fn main() {}
