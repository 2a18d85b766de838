//! What a failed call says: unreachable, timed out or refused, naming the server, never the
//! password.

use std::error::Error as StdError;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use crate::durable::Secrets;
use crate::error::{BackendError, BackendErrorKind};

/// Why a statement failed, before it is described for the caller.
pub(super) enum Failure {
    Db(tokio_postgres::Error),
    Timeout(Duration),
    Other(&'static str),
}

/// An error saying what `doing` failed and why: "unreachable" with the server's address for
/// connection problems, the server's message for statements it refused. Secrets never appear.
pub(super) fn describe_failure(
    doing: &str,
    address: Option<&str>,
    secrets: &Secrets,
    failure: &Failure,
) -> BackendError {
    let server = match address {
        Some(address) => format!("the PostgreSQL server at {address}"),
        None => "the PostgreSQL server".to_owned(),
    };
    let (kind, message) = match failure {
        Failure::Timeout(timeout) => (
            BackendErrorKind::TimedOut,
            format!(
            "{doing}: {server} did not answer within {timeout:?} (the operation timeout); it may \
             be unreachable or overloaded"
        ),
        ),
        Failure::Other(what) => (BackendErrorKind::Other, format!("{doing}: {what}")),
        Failure::Db(error) => {
            if error
                .to_string()
                .starts_with("error performing TLS handshake")
            {
                (
                    BackendErrorKind::Misconfigured,
                    format!(
                        "{doing}: the TLS handshake with {server} failed: {}; check the \
                         certificate authorities of `PostgresConfig::tls`",
                        chain(error)
                    ),
                )
            } else if is_unreachable(error) {
                (
                    BackendErrorKind::Unreachable,
                    format!("{doing}: {server} is unreachable: {}", chain(error)),
                )
            } else if let Some(db) = error.as_db_error() {
                let mut message = format!(
                    "{doing}: {server} answered {} {}: {}",
                    db.severity(),
                    db.code().code(),
                    db.message()
                );
                if let Some(detail) = db.detail() {
                    message.push_str(&format!(" (detail: {detail})"));
                }
                if let Some(hint) = db.hint() {
                    message.push_str(&format!(" (hint: {hint})"));
                }
                (BackendErrorKind::Other, message)
            } else {
                (
                    BackendErrorKind::Other,
                    format!("{doing}: talking to {server} failed: {}", chain(error)),
                )
            }
        }
    };
    BackendError::of(kind, secrets.scrub(&message))
}

/// Whether the error means the server could not be reached or the connection broke.
pub(super) fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
    }
    if error.is_closed() {
        return true;
    }
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    let text = error.to_string();
    text.starts_with("error connecting to server")
        || text.starts_with("timeout waiting for server")
        || text.starts_with("error communicating with the server")
}

/// An error and its causes, `: `-separated.
pub(super) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `host:port` of each host, `,`-separated.
pub(super) fn describe_address(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port = |index: usize| -> u16 {
        ports
            .get(index)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432)
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| match host {
            Host::Tcp(name) => format!("{name}:{}", port(index)),
            #[cfg(unix)]
            Host::Unix(path) => format!("{}/.s.PGSQL.{}", path.display(), port(index)),
        })
        .collect();
    if hosts.is_empty() {
        format!("localhost:{}", port(0))
    } else {
        hosts.join(",")
    }
}

/// `user@host:port/database`, for `Debug`.
pub(super) fn describe_target(config: &tokio_postgres::Config) -> String {
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or(""),
        describe_address(config),
        config.get_dbname().unwrap_or("")
    )
}
