//! `UserCreated` is listed twice in `events`, under two paths: the listener would run twice per
//! emit.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated, crate::UserCreated])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
