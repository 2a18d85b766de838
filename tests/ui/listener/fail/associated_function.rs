//! The listener is an associated function in an `impl` block (no `self`, but still not a free
//! function).
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

struct Mailer;

impl Mailer {
    #[listener(events = [UserCreated])]
    async fn on_user(email: &str) {
        let _ = email;
    }
}

fn main() {}
