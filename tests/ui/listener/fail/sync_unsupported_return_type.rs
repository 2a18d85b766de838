//! A plain `fn` listener returns `Result<u32, E>`; the `Ok` value must be `()`.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[listener(events = [UserCreated])]
fn on_user(email: &str) -> Result<u32, std::io::Error> {
    Ok(email.len() as u32)
}

fn main() {}
