//! `events` lists event ids, as strings, instead of event types.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = ["user_created"])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
