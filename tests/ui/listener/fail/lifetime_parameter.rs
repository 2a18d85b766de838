//! The listener declares a lifetime for its borrowed field.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user<'a>(email: &'a str) {
    let _ = email;
}

fn main() {}
