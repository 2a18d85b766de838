//! The listener is a `const fn`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
const fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
