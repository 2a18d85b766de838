//! The event struct is generic.
use emitter::Event;

#[derive(Event)]
pub struct Created<T> {
    pub item: T,
}

fn main() {}
