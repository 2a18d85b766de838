//! `attempts = 0`: a delivery is tried at least once, so `attempts` starts at 1.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], attempts = 0)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
