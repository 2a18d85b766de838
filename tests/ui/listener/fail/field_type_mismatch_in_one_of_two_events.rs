//! `id` is a `u64` in `UserCreated` but a `String` in `UserDeleted`, so `id: u64` fits only one.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub id: u64,
}

#[derive(Event)]
pub struct UserDeleted {
    pub id: String,
}

#[listener(events = [UserCreated, UserDeleted])]
async fn audit(id: u64) {
    let _ = id;
}

fn main() {}
