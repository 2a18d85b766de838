//! The listener is a method: it takes `&self`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

struct Mailer;

impl Mailer {
    #[listener(events = [UserCreated])]
    async fn on_user(&self, email: &str) {
        let _ = email;
    }
}

fn main() {}
