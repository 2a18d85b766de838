//! Who may write: a request with the board's token in an `Authorization: Bearer` header
//! (scripts), or a browser session opened by logging in with the token, whose forms carry the
//! session's CSRF token (and whose cookie is `SameSite=Strict` and `HttpOnly`).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, StatusCode};

/// The session cookie's name.
pub(super) const COOKIE_NAME: &str = "emitter_board";

/// How long a session lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);

/// The most sessions kept at once; the oldest go first.
const MOST_SESSIONS: usize = 1000;

/// 32 bytes from the system's random source, in hex.
pub(super) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let mut text = String::with_capacity(64);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    Ok(text)
}

/// Whether `given` is `expected`, comparing every byte whatever differs (the time taken says
/// nothing of where they differ).
pub(super) fn same(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// The browser sessions, by the id their cookie holds.
#[derive(Default)]
pub(super) struct Sessions(Mutex<HashMap<String, Session>>);

/// Who a write comes from, for the log.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    /// A request with the token in its header.
    Token,
    /// A browser session, named by the start of its id.
    Session(String),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Token => f.write_str("a request with the token"),
            Caller::Session(id) => write!(f, "session {id}…"),
        }
    }
}

/// Why a write is refused: the status, and what to do, for the person or the script.
pub(super) type Refusal = (StatusCode, &'static str);

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session: its id (for the cookie).
    pub(super) fn open(&self) -> Result<String, getrandom::Error> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, session| session.expires > now);
        if sessions.len() >= MOST_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.expires)
                .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                csrf,
                expires: now + SESSION,
            },
        );
        Ok(id)
    }

    /// The id and CSRF token of the session whose cookie `headers` carry, if it is open.
    pub(super) fn of(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let id = cookie(headers, COOKIE_NAME)?;
        let sessions = self.lock();
        let session = sessions.get(id)?;
        (session.expires > Instant::now()).then(|| (id.to_owned(), session.csrf.clone()))
    }

    /// Closes the session whose cookie `headers` carry.
    pub(super) fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE_NAME) {
            self.lock().remove(id);
        }
    }

    /// Whether a write may go ahead, and whose it is. `token` is the board's (none: read-only),
    /// `csrf` what the form sent.
    pub(super) fn authorize(
        &self,
        token: Option<&str>,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<Caller, Refusal> {
        let Some(token) = token else {
            return Err((
                StatusCode::FORBIDDEN,
                "this board is read-only: start it with writes allowed (a token) to act",
            ));
        };
        if let Some(header) = headers.get(AUTHORIZATION) {
            let given = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("");
            return if same(given.trim(), token) {
                Ok(Caller::Token)
            } else {
                Err((
                    StatusCode::UNAUTHORIZED,
                    "the token in the Authorization header is not the board's",
                ))
            };
        }
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|site| site != "same-origin" && site != "none");
        if cross_site {
            return Err((
                StatusCode::FORBIDDEN,
                "a form of another site cannot act on this board",
            ));
        }
        let Some((id, expected)) = self.of(headers) else {
            return Err((
                StatusCode::UNAUTHORIZED,
                "writes need the board's token: log in with it, or send it in an \
                 `Authorization: Bearer` header",
            ));
        };
        match csrf {
            Some(csrf) if same(csrf, &expected) => Ok(Caller::Session(id[..8].to_owned())),
            _ => Err((
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or stale: reload the page and try again",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_token_or_a_session_with_its_csrf_token_may_write() {
        let sessions = Sessions::default();
        let none = HeaderMap::new();
        assert_eq!(
            sessions.authorize(None, &none, None).unwrap_err().0,
            StatusCode::FORBIDDEN,
            "read-only"
        );
        assert!(sessions
            .authorize(Some("t0ken"), &with("authorization", "Bearer t0ken"), None)
            .is_ok());
        assert_eq!(
            sessions
                .authorize(Some("t0ken"), &with("authorization", "Bearer t0kem"), None)
                .unwrap_err()
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            sessions
                .authorize(Some("t0ken"), &none, None)
                .unwrap_err()
                .0,
            StatusCode::UNAUTHORIZED,
            "no session"
        );

        let id = sessions.open().unwrap();
        let cookie = with("cookie", &format!("other=1; {COOKIE_NAME}={id}"));
        let (_, csrf) = sessions.of(&cookie).unwrap();
        assert!(sessions
            .authorize(Some("t0ken"), &cookie, Some(&csrf))
            .is_ok());
        assert_eq!(
            sessions
                .authorize(Some("t0ken"), &cookie, Some("forged"))
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            sessions
                .authorize(Some("t0ken"), &cookie, None)
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        let mut cross = cookie.clone();
        cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(
            sessions
                .authorize(Some("t0ken"), &cross, Some(&csrf))
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        sessions.close(&cookie);
        assert!(sessions.of(&cookie).is_none(), "closed");
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..63]));
    }
}
