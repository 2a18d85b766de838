//! `#[listener]` is put on a method declaration in a trait.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub trait Handlers {
    #[listener(events = [UserCreated])]
    fn on_user(email: &str);
}

fn main() {}
