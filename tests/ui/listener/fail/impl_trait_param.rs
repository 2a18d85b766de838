//! A parameter is `impl Trait`, which makes the listener generic.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: impl AsRef<str>) {
    let _ = email.as_ref();
}

fn main() {}
