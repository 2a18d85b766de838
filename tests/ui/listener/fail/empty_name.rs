//! `name = ""` gives the listener an empty name.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], name = "")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
