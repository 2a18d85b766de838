//! `listeners!` names a plain function, which has no `#[listener]`.
use emitter::{listener, listeners, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str) {
    let _ = email;
}

fn audit(email: &str) {
    let _ = email;
}

fn main() {
    let _ = listeners![on_user, audit];
    audit("jane@example.com");
}
