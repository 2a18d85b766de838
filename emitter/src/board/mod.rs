//! The operator's board: an axum [`Router`] of server-rendered pages over a durable backend's
//! store ([`Admin`]), to mount in an application (feature `board`). The `emitter` command
//! serves the same pages (`emitter board --listen 127.0.0.1:8080`).
//!
//! - **Overview** (`/`): each listener's deliveries by state, whether it is paused or an
//!   orphan, the workers that run it, its deliveries per minute, and a sparkline of the last
//!   30 minutes (inline SVG); the workers and their heartbeats.
//! - **Deliveries** (`/deliveries`): by state, filtered by listener, event, emit and time, a
//!   page at a time.
//! - **A delivery** (`/deliveries/{id}`): its payload, pretty-printed, its attempts, last error
//!   and history.
//!
//! Reading needs no JavaScript. The board is read-only unless it is given a token
//! ([`Board::allow_writes`]); then cancelling, replaying, discarding, pausing, resuming and
//! rehoming are `POST`s that need the token: in an `Authorization: Bearer` header (scripts), or
//! a session opened by logging in with it, whose forms carry a CSRF token. Each write is logged
//! (target `emitter::board`, level `info`). Serve it over TLS beyond loopback: the token and
//! the session cookie travel with the requests.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use emitter::durable::{sqlite::SqliteStore, Durable};
//!
//! let backend = Durable::new(SqliteStore::open("events.db")?);
//! let emitter = emitter::Emitter::builder().backend(backend.clone()).start().await?;
//! let board = emitter::board::Board::new(backend)
//!     .allow_writes(std::env::var("BOARD_TOKEN")?)
//!     .router();
//! let app = axum::Router::new().nest("/admin/events", board);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

mod actions;
mod auth;
mod forms;
mod html;
mod pages;

use std::sync::Arc;

use axum::extract::{FromRequestParts, NestedPath};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::durable::{Admin, Durable};
pub use forms::parse_time;

/// The board over a durable backend, to turn into a [`Router`].
pub struct Board<S: Admin> {
    backend: Durable<S>,
    token: Option<String>,
}

impl<S: Admin> Board<S> {
    /// A read-only board over `backend`'s store.
    pub fn new(backend: Durable<S>) -> Self {
        Self {
            backend,
            token: None,
        }
    }

    /// Allows writes to whoever has `token` (see the [module documentation](self)). Take a
    /// long random one; an empty token leaves the board read-only.
    pub fn allow_writes(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// The board's pages, to serve or to [nest](Router::nest) in an application.
    pub fn router(self) -> Router {
        let shared = Arc::new(Shared {
            backend: self.backend,
            token: self.token,
            sessions: auth::Sessions::default(),
        });
        Router::new()
            .route("/", get(pages::overview::<S>))
            .route("/deliveries", get(pages::deliveries::<S>))
            .route("/deliveries/{id}", get(pages::delivery::<S>))
            .route("/deliveries/{id}/{action}", post(actions::on_delivery::<S>))
            .route("/dead/{action}", post(actions::on_dead_letters::<S>))
            .route(
                "/listeners/{name}/{action}",
                post(actions::on_listener::<S>),
            )
            .route("/login", get(pages::login::<S>).post(actions::login::<S>))
            .route("/logout", post(actions::logout::<S>))
            .route("/assets/board.css", get(stylesheet))
            .route("/assets/board.js", get(script))
            .layer(axum::middleware::map_response(secure))
            .with_state(shared)
    }
}

/// A read-only board over `backend`'s store: [`Board::new`]`(backend).router()`.
pub fn router<S: Admin>(backend: Durable<S>) -> Router {
    Board::new(backend).router()
}

/// What the handlers share.
struct Shared<S: Admin> {
    backend: Durable<S>,
    /// The token writes need; `None`: read-only.
    token: Option<String>,
    sessions: auth::Sessions,
}

type State<S> = axum::extract::State<Arc<Shared<S>>>;

/// Where the board is mounted: the path it is nested at, or `""`.
struct Base(String);

impl<T: Send + Sync> FromRequestParts<T> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &T) -> Result<Self, Self::Rejection> {
        let base = parts
            .extensions
            .get::<NestedPath>()
            .map(|nested| nested.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Base(base))
    }
}

/// Headers on every answer: pages that only load the board's own files, are never framed and
/// never cached.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/board.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/board.js"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(kind)),
            (CACHE_CONTROL, HeaderValue::from_static("max-age=300")),
        ],
        body,
    )
        .into_response()
}

/// A page with `status`.
fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response()
}
