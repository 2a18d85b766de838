//! `#[event(id = "...")]` is put on a field instead of the struct.
use emitter::Event;

#[derive(Event)]
pub struct UserCreated {
    #[event(id = "user.created")]
    pub email: String,
}

fn main() {}
