//! The event type is given alone, without `events = [...]`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(UserCreated)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
