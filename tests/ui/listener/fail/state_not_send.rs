//! The shared state is an `Rc`, which cannot be shared between threads.
use std::rc::Rc;

use emitter::{listener, Event, State};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub struct Cache;

#[listener(events = [UserCreated])]
async fn on_user(email: &str, cache: State<Rc<Cache>>) {
    let _ = (email, cache);
}

fn main() {}
