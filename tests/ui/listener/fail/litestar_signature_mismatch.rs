//! Litestar's `user_deleted` example: a second listener asks for `reason`, which the event does
//! not carry. Litestar raises `TypeError` at runtime (unless the listener adds `**kwargs`); here
//! it does not compile.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserDeleted {
    pub email: String,
}

#[listener(events = [UserDeleted])]
async fn send_farewell_email(email: &str) {
    let _ = email;
}

#[listener(events = [UserDeleted])]
async fn log_deletion_reason(reason: &str) {
    let _ = reason;
}

fn main() {}
