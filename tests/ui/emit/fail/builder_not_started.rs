//! `emit!` is given the emitter's builder, which was never started.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

fn main() {
    let emitter = Emitter::builder();
    let _ = emit!(emitter, UserCreated, email = "jane@example.com");
}
