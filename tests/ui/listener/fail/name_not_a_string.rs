//! `name` is given an identifier instead of a string literal.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], name = welcome)]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
