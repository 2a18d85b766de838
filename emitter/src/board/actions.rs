//! The writes: each a `POST` that needs the token (see [`auth`](super::auth)), logged, and
//! answered with a redirect back (browsers) or a line of text (requests with the token).

use std::time::{Duration, SystemTime};

use axum::extract::Path;
use axum::http::header::{AUTHORIZATION, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{self, Caller, COOKIE_NAME};
use super::forms::Fields;
use super::html::{escape, query};
use super::pages::{login_page, Context};
use super::{Base, Shared, State};
use crate::durable::admin::{Admin, Cancel};
use crate::BackendError;

/// How long a wrong token at the login form makes its sender wait: guessing stays slow.
const WRONG_TOKEN_DELAY: Duration = Duration::from_millis(250);

/// What a write came to: the status and a sentence, or the store's error.
type Outcome = Result<(StatusCode, String), BackendError>;

/// Checks that the request may write; answers it when it may not.
fn authorize<S: Admin>(
    board: &Shared<S>,
    context: &Context,
    headers: &HeaderMap,
    fields: &Fields,
) -> Result<Caller, Box<Response>> {
    board
        .sessions
        .authorize(board.token.as_deref(), headers, fields.get("csrf"))
        .map_err(|(status, problem)| {
            if headers.contains_key(AUTHORIZATION) {
                return Box::new((status, format!("{problem}\n")).into_response());
            }
            let login = if status == StatusCode::UNAUTHORIZED {
                format!(" <a href=\"{}/login\">Log in</a>.", escape(&context.base))
            } else {
                String::new()
            };
            Box::new(context.page(
                status,
                "Not allowed",
                &format!(
                    "<p class=\"error\" id=\"refused\">{}.{login}</p>",
                    escape(problem)
                ),
            ))
        })
}

/// A write that may go ahead: its form, the page it came from, and who sent it.
struct Write {
    headers: HeaderMap,
    fields: Fields,
    context: Context,
    caller: Caller,
}

impl Write {
    /// Reads the form of a write and checks that its sender may write; answers the request
    /// when it may not.
    fn begin<S: Admin>(
        board: &Shared<S>,
        base: String,
        headers: HeaderMap,
        body: &str,
    ) -> Result<Self, Box<Response>> {
        let fields = Fields::parse(body);
        let context = Context::of(board, base, &headers, &fields);
        let caller = authorize(board, &context, &headers, &fields)?;
        Ok(Write {
            headers,
            fields,
            context,
            caller,
        })
    }

    /// Answers the write: the sentence as text to a request with the token; to a browser, a
    /// redirect to the page the form came from (`back`), which shows it.
    fn answer(&self, outcome: Outcome) -> Response {
        let Write {
            headers,
            fields,
            context,
            caller,
        } = self;
        let (status, said) = match outcome {
            Ok(outcome) => outcome,
            Err(error) => return context.failed(&error),
        };
        tracing::info!(target: "emitter::board", status = status.as_u16(), "{caller}: {said}");
        if matches!(caller, Caller::Token) || headers.contains_key(AUTHORIZATION) {
            return (status, format!("{said}\n")).into_response();
        }
        if !status.is_success() {
            return context.page(
                status,
                "Not done",
                &format!("<p class=\"error\">{}</p>", escape(&said)),
            );
        }
        let back = fields
            .get("back")
            .filter(|back| back.starts_with('/') && !back.starts_with("//") && !back.contains('\\'))
            .unwrap_or("/");
        let joiner = if back.contains('?') { '&' } else { '?' };
        let location = format!(
            "{}{back}{joiner}{}",
            context.base,
            query([("done", said.as_str())])
        );
        redirect(&location, None)
    }
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, location);
    }
    if let Some(cookie) = cookie.and_then(|cookie| HeaderValue::from_str(&cookie).ok()) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

fn done(said: String) -> Outcome {
    Ok((StatusCode::OK, said))
}

fn not_done(status: StatusCode, said: String) -> Outcome {
    Ok((status, said))
}

pub(super) async fn on_delivery<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: String,
) -> Response {
    let write = match Write::begin(&board, base, headers, &body) {
        Ok(write) => write,
        Err(refused) => return *refused,
    };
    let outcome = match action.as_str() {
        "cancel" => match board.backend.store().cancel(&id).await {
            Ok(Cancel::Cancelled) => done(format!("cancelled delivery {id}")),
            Ok(Cancel::Running) => not_done(
                StatusCode::CONFLICT,
                format!("delivery {id} is running: a worker holds it, so it was not cancelled"),
            ),
            Ok(Cancel::Dead) => not_done(
                StatusCode::CONFLICT,
                format!("{id} is a dead letter: discard it instead"),
            ),
            Ok(Cancel::NotFound) => {
                not_done(StatusCode::NOT_FOUND, format!("no delivery {id} to cancel"))
            }
            Err(error) => Err(error),
        },
        "replay" => match board.backend.replay(&id).await {
            Ok(true) => done(format!("replayed dead letter {id}")),
            Ok(false) => not_done(
                StatusCode::NOT_FOUND,
                format!("no dead letter {id} to replay"),
            ),
            Err(error) => Err(error),
        },
        "discard" => match board.backend.discard(&id).await {
            Ok(true) => done(format!("discarded dead letter {id}")),
            Ok(false) => not_done(
                StatusCode::NOT_FOUND,
                format!("no dead letter {id} to discard"),
            ),
            Err(error) => Err(error),
        },
        _ => not_done(
            StatusCode::NOT_FOUND,
            format!("no action `{action}` on a delivery"),
        ),
    };
    write.answer(outcome)
}

pub(super) async fn on_dead_letters<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    Path(action): Path<String>,
    body: String,
) -> Response {
    let write = match Write::begin(&board, base, headers, &body) {
        Ok(write) => write,
        Err(refused) => return *refused,
    };
    let filter = match write.fields.filter(SystemTime::now()) {
        Ok(filter) => filter,
        Err(problem) => {
            let outcome = not_done(StatusCode::BAD_REQUEST, problem);
            return write.answer(outcome);
        }
    };
    let store = board.backend.store();
    let outcome = match action.as_str() {
        "replay" => store
            .replay_matching(&filter)
            .await
            .and_then(|count| done(format!("replayed {count} dead letters"))),
        "discard" => store
            .discard_matching(&filter)
            .await
            .and_then(|count| done(format!("discarded {count} dead letters"))),
        _ => not_done(
            StatusCode::NOT_FOUND,
            format!("no action `{action}` on dead letters"),
        ),
    };
    write.answer(outcome)
}

pub(super) async fn on_listener<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    body: String,
) -> Response {
    let write = match Write::begin(&board, base, headers, &body) {
        Ok(write) => write,
        Err(refused) => return *refused,
    };
    let store = board.backend.store();
    let outcome = match action.as_str() {
        "pause" => store.pause(&name).await.and_then(|paused| {
            done(if paused {
                format!("paused {name}")
            } else {
                format!("{name} was paused already")
            })
        }),
        "resume" => store.resume(&name).await.and_then(|resumed| {
            done(if resumed {
                format!("resumed {name}")
            } else {
                format!("{name} was not paused")
            })
        }),
        "discard" => store
            .discard_listener(&name)
            .await
            .and_then(|count| done(format!("discarded {count} deliveries of {name}"))),
        "rehome" => match write.fields.get("to") {
            Some(to) => store
                .rehome(&name, to)
                .await
                .and_then(|count| done(format!("gave {count} deliveries of {name} to {to}"))),
            None => not_done(
                StatusCode::BAD_REQUEST,
                "say which listener to give the deliveries to (`to`)".to_owned(),
            ),
        },
        _ => not_done(
            StatusCode::NOT_FOUND,
            format!("no action `{action}` on a listener"),
        ),
    };
    write.answer(outcome)
}

pub(super) async fn login<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = Fields::parse(&body);
    let context = Context::of(&board, base, &headers, &fields);
    let Some(token) = board.token.as_deref() else {
        return login_page(&context, StatusCode::FORBIDDEN, None);
    };
    if !auth::same(fields.get("token").unwrap_or(""), token) {
        tracing::warn!(target: "emitter::board", "a login with a wrong token was refused");
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        return login_page(
            &context,
            StatusCode::UNAUTHORIZED,
            Some("That is not the board's token."),
        );
    }
    let id = match board.sessions.open() {
        Ok(id) => id,
        Err(error) => {
            return context.page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "No session",
                &format!(
                    "<p class=\"error\">The system's random source failed: {}</p>",
                    escape(&error.to_string())
                ),
            )
        }
    };
    tracing::info!(target: "emitter::board", "session {}… opened", &id[..8]);
    let cookie = format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
    redirect(&format!("{}/", context.base), Some(cookie))
}

pub(super) async fn logout<S: Admin>(
    axum::extract::State(board): State<S>,
    Base(base): Base,
    headers: HeaderMap,
    body: String,
) -> Response {
    let write = match Write::begin(&board, base, headers, &body) {
        Ok(write) => write,
        Err(refused) => return *refused,
    };
    board.sessions.close(&write.headers);
    let cookie = format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    redirect(&format!("{}/", write.context.base), Some(cookie))
}
