//! `backoff` is given one duration instead of a range `"INITIAL..MAX"`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], backoff = "100ms")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
