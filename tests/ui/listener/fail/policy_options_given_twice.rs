//! Each policy option is given twice; the second of each is reported, even when the first one
//! was itself invalid (`attempts = 0`).
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(
    events = [UserCreated],
    attempts = 0,
    attempts = 3,
    backoff = "100ms..10s",
    backoff = "1s..1m",
    timeout = "30s",
    timeout = "1m",
    concurrency = 1,
    concurrency = 4
)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
