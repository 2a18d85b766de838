//! Litestar's "listening to multiple events": one listener handles both `user_created` and
//! `password_changed`, and sends the event's message by email.
//!
//! Litestar's listener cannot tell which event fired; here it takes `EventMeta` and picks the
//! subject from `meta.event_id()`. `email` and `message` are bound by name, so both events must
//! have them with compatible types, or the listener does not compile.
//!
//! `cargo run --example multiple_events`

use std::error::Error;
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Emitter, Event, EventMeta, State};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub message: String,
}

#[derive(Event)]
pub struct PasswordChanged {
    pub email: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Stands in for a mail client: keeps what was sent.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Email>>>);

impl Outbox {
    fn send(&self, email: Email) {
        self.0.lock().unwrap().push(email);
    }
}

#[listener(events = [UserCreated, PasswordChanged])]
async fn send_email(email: &str, message: &str, meta: EventMeta, outbox: State<Outbox>) {
    let subject = match meta.event_id() {
        UserCreated::ID => "Welcome to Example.com",
        PasswordChanged::ID => "Your password was changed",
        other => unreachable!("`send_email` does not listen to `{other}`"),
    };
    outbox.send(Email {
        to: email.to_owned(),
        subject: subject.to_owned(),
        body: message.to_owned(),
    });
}

/// Emits one event of each kind for `email` and returns the emails sent, sorted by subject.
pub async fn run(email: &str) -> Result<Vec<Email>, Box<dyn Error>> {
    let outbox = Outbox::default();
    let emitter = Emitter::builder()
        .listeners(listeners![send_email])
        .state(outbox.clone())
        .start()
        .await?;

    emit!(emitter, UserCreated, email, message = "Welcome aboard!")?;
    emit!(
        emitter,
        PasswordChanged,
        email,
        message = "Your password was changed."
    )?;
    emitter.shutdown().await?;

    let mut sent = outbox.0.lock().unwrap().clone();
    sent.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(sent)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    for email in run("jane@example.com").await? {
        println!("to {} | {} | {}", email.to, email.subject, email.body);
    }
    Ok(())
}
