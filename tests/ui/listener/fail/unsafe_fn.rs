//! The listener is an `unsafe fn`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
unsafe fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
