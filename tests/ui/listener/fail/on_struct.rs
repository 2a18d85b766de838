//! `#[listener]` is put on a struct, not on a function.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
struct Mailer {
    from: String,
}

fn main() {}
