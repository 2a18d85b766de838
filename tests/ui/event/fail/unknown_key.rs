//! `name` is not an option of `#[event(...)]`.
use emitter::Event;

#[derive(Event)]
#[event(name = "user.created")]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
