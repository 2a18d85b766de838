//! The event's id is empty; the listeners and `emit!` calls that use the event add no errors of
//! their own.
use emitter::{emit, listener, Emitter, Event};

#[derive(Event)]
#[event(id = "")]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str) {
    let _ = email;
}

fn send(emitter: &Emitter) {
    let _ = emit!(emitter, UserCreated, email = "jane@example.com");
}

fn main() {}
