//! `UserCreatd` (a typo) is listed in `events`; no such type exists.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreatd])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
