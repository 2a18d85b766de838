//! An upcaster is a function from the JSON of one version to that of the next.
use emitter::Event;

fn v1_to_v2(email: String) -> String {
    email
}

#[derive(Event)]
#[event(version = 2, upcast(from = 1, with = v1_to_v2))]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
