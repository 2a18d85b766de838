//! `State` is taken without saying the type of the shared state.
use emitter::{listener, Event, State};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
async fn on_user(email: &str, state: State) {
    let _ = (email, state);
}

fn main() {}
