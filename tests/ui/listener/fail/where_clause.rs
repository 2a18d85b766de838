//! The listener has a `where` clause.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str)
where
    String: Clone,
{
    let _ = email;
}

fn main() {}
