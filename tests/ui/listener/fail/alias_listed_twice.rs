//! The same alias twice.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated], aliases = ["shop::on_user", "shop::on_user"])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
