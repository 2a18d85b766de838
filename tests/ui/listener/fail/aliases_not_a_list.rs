//! `aliases = "..."` instead of a list.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], aliases = "shop::on_user")]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
