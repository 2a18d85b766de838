//! `emit!` gives `user.email` alone, as if it were shorthand for `email = user.email`.
use emitter::{emit, Emitter, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

pub struct User {
    pub email: String,
}

fn send(emitter: &Emitter, user: &User) {
    let _ = emit!(emitter, UserCreated, user.email);
}

fn main() {}
