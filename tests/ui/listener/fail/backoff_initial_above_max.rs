//! The initial backoff is longer than the maximum: the bounds are swapped.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], backoff = "10s..1s")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
