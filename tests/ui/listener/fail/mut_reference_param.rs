//! The listener takes a field as `&mut`, but every listener of an event shares the event.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &mut String) {
    email.push('!');
}

fn main() {}
