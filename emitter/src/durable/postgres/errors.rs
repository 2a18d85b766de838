//! What a failed call says: unreachable, timed out or refused, naming the server, never the
//! password.

use std::error::Error as StdError;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use crate::error::BackendError;

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
    secrets: &[String],
    failure: &Failure,
) -> BackendError {
    let server = match address {
        Some(address) => format!("the PostgreSQL server at {address}"),
        None => "the PostgreSQL server".to_owned(),
    };
    let message = match failure {
        Failure::Timeout(timeout) => format!(
            "{doing}: {server} did not answer within {timeout:?} (the operation timeout); it may \
             be unreachable or overloaded"
        ),
        Failure::Other(what) => format!("{doing}: {what}"),
        Failure::Db(error) => {
            if error
                .to_string()
                .starts_with("error performing TLS handshake")
            {
                format!(
                    "{doing}: the TLS handshake with {server} failed: {}",
                    chain(error)
                )
            } else if is_unreachable(error) {
                format!("{doing}: {server} is unreachable: {}", chain(error))
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
                message
            } else {
                format!("{doing}: talking to {server} failed: {}", chain(error))
            }
        }
    };
    BackendError::new(scrub(&message, secrets))
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

/// The password of a connection string, as written and percent-decoded, found without the
/// parser (which may be what failed): error messages are scrubbed of them.
pub(super) fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"));
    if let Some(rest) = rest {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password.to_owned());
                secrets.push(percent_decode(password));
            }
        }
        if let Some((_, query)) = rest.split_once('?') {
            for pair in query.split('&') {
                if let Some(password) = pair.strip_prefix("password=") {
                    secrets.push(password.to_owned());
                    secrets.push(percent_decode(password));
                }
            }
        }
    } else {
        let mut words = url.split_whitespace();
        while let Some(word) = words.next() {
            if let Some(value) = word.strip_prefix("password") {
                let value = value.trim_start_matches([' ', '=']);
                let value = if value.is_empty() {
                    words.next().unwrap_or("").trim_start_matches('=')
                } else {
                    value
                };
                secrets.push(value.trim_matches('\'').to_owned());
            }
        }
    }
    secrets.retain(|secret| secret.len() >= 4);
    secrets
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

pub(super) fn scrub(message: &str, secrets: &[String]) -> String {
    let mut message = message.to_owned();
    for secret in secrets {
        if !secret.is_empty() {
            message = message.replace(secret.as_str(), "<password>");
        }
    }
    message
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
