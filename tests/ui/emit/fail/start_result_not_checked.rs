//! `emit!` is given the `Result` of `start().await`, without `?`.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

async fn run() {
    let emitter = Emitter::builder().start().await;
    let _ = emit!(emitter, UserCreated, email = "jane@example.com");
}

fn main() {
    let _ = run();
}
