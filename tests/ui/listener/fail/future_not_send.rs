//! The listener holds an `Rc` across an `.await`, so its future cannot move between threads.
use std::rc::Rc;

use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

async fn send(_to: &str) {}

#[listener(events = [UserCreated])]
async fn on_user(email: &str) {
    let shared = Rc::new(email.to_owned());
    send(&shared).await;
    let _ = shared;
}

fn main() {}
