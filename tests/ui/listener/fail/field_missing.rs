//! The listener asks for `name`, a field its only event does not have.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn greet(name: &str) {
    let _ = name;
}

fn main() {}
