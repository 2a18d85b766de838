//! The listener takes shared state as `&Mailer`, forgetting `State`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub struct Mailer;

#[listener(events = [UserCreated])]
async fn on_user(email: &str, mailer: &Mailer) {
    let _ = (email, mailer);
}

fn main() {}
