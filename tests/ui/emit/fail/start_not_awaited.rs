//! `emit!` is given the future that `start()` returns, not awaited.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

async fn run() {
    let emitter = Emitter::builder().start();
    let _ = emit!(emitter, UserCreated, email = "jane@example.com");
}

fn main() {
    let _ = run();
}
