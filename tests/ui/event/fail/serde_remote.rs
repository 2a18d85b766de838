//! `#[serde(remote = "...")]` conflicts with the derive, which implements serde for the event
//! itself.
use emitter::Event;

#[derive(Event)]
#[serde(remote = "Other")]
pub struct UserCreated {
    pub email: String,
}

fn main() {}
