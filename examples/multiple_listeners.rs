//! Litestar's "using multiple listeners": deleting a user emits `user_deleted`, and two listeners
//! each do their own side effect: one sends a farewell email, the other opens a ticket with
//! customer support.
//!
//! Each listener runs as its own task and fails alone: an error in one does not stop the other.
//!
//! `cargo run --example multiple_listeners`

use std::error::Error;
use std::sync::{Arc, Mutex};

use emitter::{emit, listener, listeners, Emitter, Event, State};

#[derive(Event)]
pub struct UserDeleted {
    pub email: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub title: String,
    pub body: String,
}

/// Stands in for the mail client and the support desk's HTTP API: keeps what they were sent.
#[derive(Clone, Default)]
pub struct Services {
    farewells: Arc<Mutex<Vec<String>>>,
    tickets: Arc<Mutex<Vec<Ticket>>>,
}

#[listener(events = [UserDeleted])]
async fn send_farewell_email(email: &str, services: State<Services>) {
    services.farewells.lock().unwrap().push(email.to_owned());
}

#[listener(events = [UserDeleted])]
async fn notify_customer_support(email: &str, reason: &str, services: State<Services>) {
    let ticket = Ticket {
        title: format!("Account closed: {email}"),
        body: format!("Reason given: {reason}"),
    };
    services.tickets.lock().unwrap().push(ticket);
}

/// What happened: who got a farewell email, which tickets were opened, and which listeners the
/// emitter runs for `user_deleted`, in the order it starts them.
#[derive(Debug)]
pub struct Summary {
    pub farewells: Vec<String>,
    pub tickets: Vec<Ticket>,
    pub listeners: Vec<&'static str>,
}

/// Deletes each `(email, reason)` and waits until both listeners handled every deletion.
pub async fn run(deletions: &[(&str, &str)]) -> Result<Summary, Box<dyn Error>> {
    let services = Services::default();
    let emitter = Emitter::builder()
        .listeners(listeners![send_farewell_email, notify_customer_support])
        .state(services.clone())
        .start()
        .await?;

    for &(email, reason) in deletions {
        emit!(emitter, UserDeleted, email, reason)?;
    }
    emitter.shutdown().await?;

    let mut farewells = services.farewells.lock().unwrap().clone();
    farewells.sort();
    let mut tickets = services.tickets.lock().unwrap().clone();
    tickets.sort_by(|a, b| a.title.cmp(&b.title));
    Ok(Summary {
        farewells,
        tickets,
        listeners: emitter.table().listeners_of::<UserDeleted>().collect(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let summary = run(&[
        ("jane@example.com", "moving to a competitor"),
        ("john@example.com", "too many emails"),
    ])
    .await?;
    println!(
        "listeners of user_deleted: {}",
        summary.listeners.join(", ")
    );
    for email in &summary.farewells {
        println!("farewell email sent to {email}");
    }
    for ticket in &summary.tickets {
        println!("ticket opened: {} ({})", ticket.title, ticket.body);
    }
    Ok(())
}
