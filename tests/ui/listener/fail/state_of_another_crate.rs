//! A `State` type that is not emitter's (here a web framework's) is in scope.
use emitter::{listener, Event};

mod web {
    #[derive(Clone)]
    pub struct State<T>(pub T);
}

use web::State;

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Clone)]
pub struct Mailer;

#[listener(events = [UserCreated])]
async fn on_user(email: &str, mailer: State<Mailer>) {
    let _ = (email, mailer.0);
}

fn main() {}
