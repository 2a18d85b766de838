//! A field borrows (`&'static str`): events are queued, stored and deserialized, so they own
//! their data.
use emitter::Event;

#[derive(Event)]
pub struct UserCreated {
    pub email: &'static str,
}

fn main() {}
