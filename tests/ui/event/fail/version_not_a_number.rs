//! Versions are whole numbers from 1.
use emitter::Event;

#[derive(Event)]
#[event(version = 0)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Event)]
#[event(version = "2")]
pub struct UserDeleted {
    pub email: String,
}

fn main() {}
