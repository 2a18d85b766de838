//! A listener of one event can take the whole event, by reference or by value (a clone).
use emitter::{listener, Event};

#[derive(Event, Clone)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn by_reference(event: &UserCreated) {
    let _ = &event.email;
}

#[listener(events = [UserCreated])]
async fn by_value(event: UserCreated, email: &str) {
    let _ = (event.email, email);
}

#[listener(events = [UserCreated])]
fn sync_by_value(event: UserCreated) {
    let _ = event.email;
}

fn main() {}
