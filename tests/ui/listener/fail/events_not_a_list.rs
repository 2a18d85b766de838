//! `events` is given a single type instead of a bracketed list.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = UserCreated)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
