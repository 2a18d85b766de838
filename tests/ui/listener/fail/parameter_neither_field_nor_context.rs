//! A parameter of a type of the user's is neither a field of the event nor context.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Clone)]
pub struct Address {
    pub city: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str, address: Address) {
    let _ = (email, address);
}

fn main() {}
