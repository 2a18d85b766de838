//! `timeout = "0s"`: a timeout must be longer than zero.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], timeout = "0s")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
