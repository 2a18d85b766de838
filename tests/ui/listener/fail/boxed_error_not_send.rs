//! The listener returns `Box<dyn Error>`, which cannot go to the error hook on another thread.
use std::error::Error;

use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str) -> Result<(), Box<dyn Error>> {
    let _ = email;
    Ok(())
}

fn main() {}
