//! Three mistakes at once (an unknown key, an event listed twice, a `&mut` parameter): each is
//! reported once, in one compilation.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(retries = 3, events = [UserCreated, UserCreated])]
async fn on_user(email: &mut String) {
    let _ = email;
}

fn main() {}
