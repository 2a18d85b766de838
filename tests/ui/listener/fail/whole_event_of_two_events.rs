//! The listener handles two events but takes the whole `UserCreated`.
use emitter::{listener, Event};

#[derive(Event, Clone)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Event, Clone)]
pub struct PasswordChanged {
    pub email: String,
}

#[listener(events = [UserCreated, PasswordChanged])]
async fn on_user(event: &UserCreated) {
    let _ = event;
}

fn main() {}
