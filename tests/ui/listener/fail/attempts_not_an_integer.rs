//! `attempts` is given a string instead of an integer literal.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], attempts = "3")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
