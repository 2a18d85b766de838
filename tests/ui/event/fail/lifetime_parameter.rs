//! The event struct has a lifetime parameter, to borrow its fields.
use emitter::Event;

#[derive(Event)]
pub struct UserCreated<'a> {
    pub email: &'a str,
}

fn main() {}
