//! `#[event]` is written without any option.
use emitter::Event;

#[derive(Event)]
#[event]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
