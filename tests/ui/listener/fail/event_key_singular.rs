//! `event` instead of `events`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(event = [UserCreated])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
