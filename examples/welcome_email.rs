//! Litestar's first events story: creating a user emits `user_created`, and a listener sends the
//! welcome mail in the background, so the code that created the user does not wait for the mail.
//!
//! The mailer refuses one address to show what happens when a listener fails: the failure goes
//! to the error hook, and the other mails are sent all the same.
//!
//! `cargo run --example welcome_email`

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, EmitError, Emitter, Event, State};

#[derive(Event, Debug, Clone)]
pub struct UserCreated {
    pub email: String,
    pub first_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
}

/// Why a mail was not sent.
#[derive(Debug)]
pub struct Bounced(pub String);

impl fmt::Display for Bounced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the mail server refused `{}`", self.0)
    }
}

impl Error for Bounced {}

/// Stands in for an SMTP client: keeps what it sent, refuses the `.invalid` top-level domain.
#[derive(Clone, Default)]
pub struct Mailer {
    sent: Arc<Mutex<Vec<Mail>>>,
}

impl Mailer {
    pub async fn send(&self, mail: Mail) -> Result<(), Bounced> {
        if mail.to.ends_with(".invalid") {
            return Err(Bounced(mail.to));
        }
        self.sent.lock().unwrap().push(mail);
        Ok(())
    }

    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().unwrap().clone()
    }
}

#[listener(events = [UserCreated])]
async fn send_welcome_email(
    email: &str,
    first_name: &str,
    mailer: State<Mailer>,
) -> Result<(), Bounced> {
    let subject = format!("Welcome, {first_name}!");
    mailer
        .send(Mail {
            to: email.to_owned(),
            subject,
        })
        .await
}

/// The users saved so far: a database in a real application.
#[derive(Default)]
pub struct UserRepository {
    emails: Vec<String>,
}

/// What a sign-up handler does: save the user, then emit and return without waiting for the mail.
pub fn create_user(
    users: &mut UserRepository,
    emitter: &Emitter,
    email: &str,
    first_name: &str,
) -> Result<(), EmitError> {
    users.emails.push(email.to_owned());
    emit!(emitter, UserCreated, email, first_name)?;
    Ok(())
}

/// What happened: the users saved, the mails sent, and the failures the error hook saw.
#[derive(Debug)]
pub struct Summary {
    pub users: Vec<String>,
    pub sent: Vec<Mail>,
    pub failures: Vec<String>,
}

/// Signs up each `(email, first name)` and waits until every welcome mail was handled.
pub async fn run(signups: &[(&str, &str)]) -> Result<Summary, Box<dyn Error>> {
    let mailer = Mailer::default();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let hook_failures = Arc::clone(&failures);
    let emitter = Emitter::builder()
        .listeners(listeners![send_welcome_email])
        .state(mailer.clone())
        .on_error(move |error| hook_failures.lock().unwrap().push(error.to_string()))
        .start()
        .await?;

    let mut users = UserRepository::default();
    for (email, first_name) in signups {
        create_user(&mut users, &emitter, email, first_name)?;
    }
    emitter.shutdown().await?;

    let mut sent = mailer.sent();
    sent.sort_by(|a, b| a.to.cmp(&b.to));
    let failures = failures.lock().unwrap().clone();
    Ok(Summary {
        users: users.emails,
        sent,
        failures,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let summary = run(&[
        ("jane@example.com", "Jane"),
        ("john@example.com", "John"),
        ("nobody@example.invalid", "Nobody"),
    ])
    .await?;
    println!("users created: {}", summary.users.join(", "));
    for mail in &summary.sent {
        println!("sent to {}: {}", mail.to, mail.subject);
    }
    for failure in &summary.failures {
        println!("failed: {failure}");
    }
    Ok(())
}
