//! A parameter's type is misspelt (`Strng`): the compiler reports it once, at the signature.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &Strng) {
    let _ = email;
}

fn main() {}
