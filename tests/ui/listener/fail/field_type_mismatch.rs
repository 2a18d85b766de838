//! The listener takes `id: &str`, but the event's `id` field is a `u64`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub id: u64,
}

#[listener(events = [UserCreated])]
async fn audit(id: &str) {
    let _ = id;
}

fn main() {}
