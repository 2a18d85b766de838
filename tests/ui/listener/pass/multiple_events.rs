//! A listener of two events takes the fields both have, with `EventMeta` to tell them apart.
use emitter::{listener, Event, EventMeta};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub message: String,
    pub id: u64,
}

#[derive(Event)]
pub struct PasswordChanged {
    pub email: String,
    pub message: String,
}

#[listener(events = [UserCreated, PasswordChanged])]
async fn send_email(email: &str, message: &str, meta: EventMeta) {
    let _ = (email, message, meta.event_id());
}

#[listener(events = [UserCreated, PasswordChanged,])]
fn log_email(email: String) {
    let _ = email;
}

fn main() {}
