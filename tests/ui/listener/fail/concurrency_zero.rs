//! `concurrency = 0`: at least one delivery must be able to run.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], concurrency = 0)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
