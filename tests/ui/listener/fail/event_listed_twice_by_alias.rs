//! `UserCreated` is listed twice in `events`, once through a type alias.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub type Signup = UserCreated;

#[listener(events = [UserCreated, Signup])]
async fn on_user(email: &str) {
    let _ = email;
}

fn main() {}
