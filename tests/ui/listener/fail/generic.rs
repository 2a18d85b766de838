//! The listener is generic over the type of its field.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user<T: std::fmt::Display>(email: T) {
    let _ = email.to_string();
}

fn main() {}
