//! `aliases = [...]`: the listener's old names, with or without `name`.
use emitter::{listener, Event, Listener};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], aliases = ["shop::mail::on_user", "mail.welcome"])]
async fn on_user(email: &str) {
    let _ = email;
}

#[listener(events = [UserCreated], name = "mail.greet", aliases = ["greet"])]
async fn greet(email: &str) {
    let _ = email;
}

fn main() {
    assert_eq!(
        <on_user as Listener>::REGISTRATION.aliases(),
        ["shop::mail::on_user", "mail.welcome"]
    );
    assert_eq!(<greet as Listener>::REGISTRATION.aliases(), ["greet"]);
}
