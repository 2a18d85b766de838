//! An `upcast` without its function, and one with an unknown option.
use emitter::Event;

#[derive(Event)]
#[event(version = 2, upcast(from = 1))]
pub struct UserCreated {
    pub email: String,
}

#[derive(Event)]
#[event(version = 2, upcast(from = 1, using = v1_to_v2))]
pub struct UserDeleted {
    pub email: String,
}

fn main() {}
