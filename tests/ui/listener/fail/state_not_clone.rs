//! The shared state is not `Clone`, so the listener cannot take a copy of it.
use emitter::{listener, Event, State};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub struct Cache;

#[listener(events = [UserCreated])]
fn on_user(email: &str, cache: State<Cache>) {
    let _ = (email, cache);
}

fn main() {}
