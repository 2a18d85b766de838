//! `id` is given a number instead of a string literal.
use emitter::Event;

#[derive(Event)]
#[event(id = 42)]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
