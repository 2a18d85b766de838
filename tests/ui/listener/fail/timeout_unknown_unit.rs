//! `timeout` uses a unit that is not `ms`, `s`, `m` or `h`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], timeout = "30sec")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
