//! `Serialize` is derived next to `Event`, which already implements it.
use emitter::Event;
use serde::Serialize;

#[derive(Event, Serialize)]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
