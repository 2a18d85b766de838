//! `#[listener]` is put on a provided method of a trait.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub trait Handlers {
    #[listener(events = [UserCreated])]
    fn on_user(email: &str) {
        let _ = email;
    }
}

fn main() {}
