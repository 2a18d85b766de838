//! The listener's error type does not implement `std::error::Error`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub struct MailError;

#[listener(events = [UserCreated])]
async fn on_user(email: &str) -> Result<(), MailError> {
    let _ = email;
    Err(MailError)
}

fn main() {}
