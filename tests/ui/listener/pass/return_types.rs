//! Every supported return type, for async and plain functions: `()` (written or not) and
//! `Result<(), E>` with `E` converting into `Box<dyn Error + Send + Sync>`.
use std::error::Error;
use std::fmt;

use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
}

#[derive(Debug)]
pub struct MailError;

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the mail server refused the message")
    }
}

impl Error for MailError {}

#[listener(events = [UserCreated])]
async fn async_unit(email: &str) {
    let _ = email;
}

#[listener(events = [UserCreated])]
async fn async_explicit_unit(email: &str) -> () {
    let _ = email;
}

#[listener(events = [UserCreated])]
async fn async_custom_error(email: &str) -> Result<(), MailError> {
    if email.is_empty() {
        return Err(MailError);
    }
    Ok(())
}

#[listener(events = [UserCreated])]
async fn async_io_error(email: &str) -> std::io::Result<()> {
    let _ = email;
    Ok(())
}

#[listener(events = [UserCreated])]
async fn async_boxed_error(email: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let _ = email;
    Ok(())
}

#[listener(events = [UserCreated])]
async fn async_string_error(email: &str) -> Result<(), String> {
    let _ = email;
    Ok(())
}

#[listener(events = [UserCreated])]
fn sync_unit(email: &str) {
    let _ = email;
}

#[listener(events = [UserCreated])]
fn sync_custom_error(email: &str) -> Result<(), MailError> {
    let _ = email;
    Ok(())
}

#[listener(events = [UserCreated])]
fn sync_str_error(email: &str) -> Result<(), &'static str> {
    let _ = email;
    Err("not today")
}

fn main() {}
