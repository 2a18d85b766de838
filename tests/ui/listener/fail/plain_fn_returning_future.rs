//! A plain `fn` returns a future instead of being an `async fn`.
use std::future::Future;

use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
fn on_user(email: &str) -> impl Future<Output = ()> {
    let email = email.to_owned();
    async move {
        let _ = email;
    }
}

fn main() {}
