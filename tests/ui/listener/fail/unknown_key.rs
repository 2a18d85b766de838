//! `retries` is not an option of `#[listener]`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], retries = 3)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
