//! The listener handles two events and asks for `message`, which only `UserCreated` has.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub message: String,
}

#[derive(Event)]
pub struct PasswordChanged {
    pub email: String,
}

#[listener(events = [UserCreated, PasswordChanged])]
async fn send_email(email: &str, message: &str) {
    let _ = (email, message);
}

fn main() {}
