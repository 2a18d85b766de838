//! The listener takes the whole event by value, but the event is not `Clone`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(event: UserCreated) {
    let _ = event;
}

fn main() {}
