//! Litestar's `@listener("user_created")`: the attribute is given an event id.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener("user_created")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
