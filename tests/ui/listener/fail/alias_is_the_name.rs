//! An alias equal to the listener's own `name`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], name = "mailer.welcome", aliases = ["mailer.welcome"])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
