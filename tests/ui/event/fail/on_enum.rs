//! `#[derive(Event)]` is put on an enum.
use emitter::Event;

#[derive(Event)]
pub enum UserEvent {
    Created { email: String },
    Deleted { email: String },
}

fn main() {}
