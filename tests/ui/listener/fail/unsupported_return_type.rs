//! The listener returns a `u32`; a listener returns `()` or `Result<(), E>`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str) -> u32 {
    email.len() as u32
}

fn main() {}
