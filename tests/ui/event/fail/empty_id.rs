//! `id = ""` gives the event an empty id.
use emitter::Event;

#[derive(Event)]
#[event(id = "")]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
