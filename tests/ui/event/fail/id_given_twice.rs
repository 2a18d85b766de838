//! `id` is given twice.
use emitter::Event;

#[derive(Event)]
#[event(id = "user.created", id = "user.new")]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
