//! `UserCreated` is listed twice in `events`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated, UserCreated])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
