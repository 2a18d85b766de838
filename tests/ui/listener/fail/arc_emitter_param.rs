//! The listener takes `Arc<Emitter>`; an `Emitter` is already cheap to clone.
use std::sync::Arc;

use emitter::{listener, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str, emitter: Arc<Emitter>) {
    let _ = (email, emitter);
}

fn main() {}
