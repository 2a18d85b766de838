//! `name` is given twice.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], name = "a", name = "b")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
