//! A web application that emits events, as in Litestar's events page: `POST /users` saves the
//! user, emits `UserCreated` and answers `201 Created` at once; a listener sends the welcome mail
//! in the background, so a slow mail server never slows the response down.
//!
//! ```text
//! cargo run --example web_app
//! curl -i localhost:3000/users -H 'content-type: application/json' \
//!      -d '{"email": "jane@example.com", "name": "Jane"}'
//! ```
//!
//! Ctrl-C stops the server, then `Emitter::shutdown` sends the mails still queued.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use emitter::{emit, listener, listeners, BoxError, Emitter, Event, StartError, State};
use serde::{Deserialize, Serialize};

#[derive(Event)]
pub struct UserCreated {
    pub id: u64,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
}

/// Sends mail: an SMTP or HTTP client in production, something that records in tests.
pub trait SendMail: Send + Sync + 'static {
    fn send(&self, mail: Mail) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + '_>>;
}

/// The mail client the listener is given, as `State<Mailer>`.
#[derive(Clone)]
pub struct Mailer(Arc<dyn SendMail>);

impl Mailer {
    pub fn new(client: impl SendMail) -> Self {
        Mailer(Arc::new(client))
    }

    pub async fn send(&self, mail: Mail) -> Result<(), BoxError> {
        self.0.send(mail).await
    }
}

#[listener(events = [UserCreated])]
async fn send_welcome_email(
    email: &str,
    name: &str,
    mailer: State<Mailer>,
) -> Result<(), BoxError> {
    let subject = format!("Welcome, {name}!");
    mailer
        .send(Mail {
            to: email.to_owned(),
            subject,
        })
        .await
}

/// The request body of `POST /users`.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub name: String,
}

/// The users saved so far, by id: a database in a real application.
#[derive(Clone, Default)]
pub struct Users(Arc<Mutex<BTreeMap<u64, User>>>);

impl Users {
    fn insert(&self, new_user: NewUser) -> User {
        let mut users = self.0.lock().unwrap();
        let id = users.keys().next_back().map_or(1, |last| last + 1);
        let user = User {
            id,
            email: new_user.email,
            name: new_user.name,
        };
        users.insert(id, user.clone());
        user
    }

    pub fn all(&self) -> Vec<User> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

#[derive(Clone)]
struct AppState {
    emitter: Emitter,
    users: Users,
}

async fn create_user(
    extract::State(app): extract::State<AppState>,
    Json(new_user): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), (StatusCode, String)> {
    let user = app.users.insert(new_user);
    // Queues the event and returns: the mail is sent after the response, not before.
    emit!(
        app.emitter,
        UserCreated,
        id = user.id,
        email = user.email.clone(),
        name = user.name.clone()
    )
    .map_err(|error| (StatusCode::SERVICE_UNAVAILABLE, error.to_string()))?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The application's routes. A body that is not a JSON `NewUser` is refused with a 4xx by
/// axum's `Json` extractor, before the handler runs.
pub fn app(emitter: Emitter, users: Users) -> Router {
    Router::new()
        .route("/users", post(create_user))
        .with_state(AppState { emitter, users })
}

/// Starts the emitter with the welcome-mail listener and the given mail client.
pub async fn start_emitter(mailer: Mailer) -> Result<Emitter, StartError> {
    Emitter::builder()
        .listeners(listeners![send_welcome_email])
        .state(mailer)
        .start()
        .await
}

/// Prints mails instead of sending them.
struct ConsoleMailer;

impl SendMail for ConsoleMailer {
    fn send(&self, mail: Mail) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + '_>> {
        Box::pin(async move {
            println!("mail to {}: {}", mail.to, mail.subject);
            Ok(())
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let emitter = start_emitter(Mailer::new(ConsoleMailer)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(emitter.clone(), Users::default()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    emitter.shutdown().await?;
    Ok(())
}
