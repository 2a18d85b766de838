//! Litestar's "passing arguments to listeners": every listener of `user_deleted` takes only the
//! fields it needs.
//!
//! In Litestar, `emit("user_deleted", email=..., reason=...)` passes every keyword argument to
//! every listener, so each listener must accept `**kwargs` or fail at run time. Here a parameter
//! is bound to the event field of the same name, and a listener takes any subset of the fields,
//! in any order, borrowed or owned; or the whole event; or context such as `EventMeta`.
//!
//! A parameter that names no field of the event does not compile:
//!
//! ```text
//! #[listener(events = [UserDeleted])]
//! async fn send_text_message(phone: &str) {}
//! // error[E0609]: no field `phone` on type `&UserDeleted`  (pointing at `phone`)
//! //   = note: available fields are: `user_id`, `email`, `reason`, `feedback`
//! ```
//!
//! `cargo run --example passing_arguments`

use std::error::Error;
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Emitter, Event, EventMeta, State};

#[derive(Event, Debug)]
pub struct UserDeleted {
    pub user_id: u64,
    pub email: String,
    pub reason: String,
    pub feedback: Option<String>,
}

/// What each listener was given, one line per call.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn record(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

/// One field, borrowed: a `String` field can be taken as `&str`.
#[listener(events = [UserDeleted])]
async fn send_farewell_email(email: &str, seen: State<Seen>) {
    seen.record(format!("send_farewell_email: email={email}"));
}

/// Three fields in another order than the struct's; `Option<String>` taken as `Option<&str>`.
#[listener(events = [UserDeleted])]
async fn notify_customer_support(
    reason: &str,
    feedback: Option<&str>,
    user_id: u64,
    seen: State<Seen>,
) {
    let feedback = feedback.unwrap_or("none");
    seen.record(format!(
        "notify_customer_support: user_id={user_id} reason={reason} feedback={feedback}"
    ));
}

/// The whole event, for a listener that needs all of it.
#[listener(events = [UserDeleted])]
async fn archive_account(event: &UserDeleted, seen: State<Seen>) {
    seen.record(format!("archive_account: {event:?}"));
}

/// Owned fields (cloned from the event) and metadata. A plain `fn` runs on the blocking pool,
/// where blocking I/O is fine.
#[listener(events = [UserDeleted])]
fn export_to_warehouse(user_id: u64, reason: String, meta: &EventMeta, seen: State<Seen>) {
    let event_id = meta.event_id();
    seen.record(format!(
        "export_to_warehouse: event={event_id} user_id={user_id} reason={reason}"
    ));
}

/// Emits one `user_deleted` and returns what each listener was given, sorted by listener.
pub async fn run(
    user_id: u64,
    email: &str,
    reason: &str,
    feedback: Option<&str>,
) -> Result<Vec<String>, Box<dyn Error>> {
    let seen = Seen::default();
    let emitter = Emitter::builder()
        .listeners(listeners![
            send_farewell_email,
            notify_customer_support,
            archive_account,
            export_to_warehouse,
        ])
        .state(seen.clone())
        .start()
        .await?;

    let feedback = feedback.map(str::to_owned);
    emit!(emitter, UserDeleted, user_id, email, reason, feedback)?;
    emitter.shutdown().await?;

    let mut lines = seen.0.lock().unwrap().clone();
    lines.sort();
    Ok(lines)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let lines = run(
        42,
        "jane@example.com",
        "moving abroad",
        Some("great service"),
    )
    .await?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
