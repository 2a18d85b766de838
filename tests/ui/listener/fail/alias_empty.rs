//! `aliases = [""]`: an alias that names nothing.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], aliases = [""])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
