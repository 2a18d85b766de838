//! `name = "..."` gives the listener a stable name; it may come before or after `events`.
use emitter::{listener, Event, Listener};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], name = "mailer.welcome")]
async fn send_welcome(email: &str) {
    let _ = email;
}

#[listener(name = "audit.user_created", events = [UserCreated])]
fn audit(email: &str) {
    let _ = email;
}

#[listener(events = [UserCreated])]
fn unnamed(email: &str) {
    let _ = email;
}

fn main() {
    assert_eq!(<send_welcome as Listener>::REGISTRATION.name(), "mailer.welcome");
    assert_eq!(<audit as Listener>::REGISTRATION.name(), "audit.user_created");
    assert!(<unnamed as Listener>::REGISTRATION.name().ends_with("::unnamed"));
}
