//! `#[derive(Event)]` is put on a tuple struct, whose fields have no names to bind to.
use emitter::Event;

#[derive(Event)]
pub struct UserCreated(pub String);

fn main() {}
