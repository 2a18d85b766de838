//! Connection settings, the key prefix, and what a failed command means.

use std::time::Duration;

use ::redis::aio::ConnectionManagerConfig;
use ::redis::{ErrorKind, RedisError, ServerErrorKind};

use super::RedisConfig;
use crate::durable::defaults;
use crate::durable::server_config::check_name;
use crate::error::{BackendError, BackendErrorKind};

pub(super) fn connection_config(config: &RedisConfig) -> ConnectionManagerConfig {
    // Few retries: while the server is away a call fails within about a second, saying so, and
    // the next call tries again; the engine retries with its own backoff.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(
            config.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT),
        ))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(1))
}

/// A Redis error as a [`BackendError`] naming the server (never the URL: it may hold a password),
/// [in doubt](BackendError::in_doubt) when the command may have run all the same.
pub(super) fn redis_error(address: &str, what: &str, error: RedisError) -> BackendError {
    let (kind, message) = if is_tls_failure(&error) {
        (
            BackendErrorKind::Misconfigured,
            format!(
                "the TLS handshake with the Redis server at {address} failed (could not {what}): \
             {error}; if a private authority signed its certificate, pass it with \
             `RedisConfig::tls(Tls::CaFile(..))`"
            ),
        )
    } else if error.is_timeout() {
        (
            BackendErrorKind::TimedOut,
            format!(
                "the Redis server at {address} did not answer in time (could not {what}): {error}"
            ),
        )
    } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped()
    {
        (
            BackendErrorKind::Unreachable,
            format!("the Redis server at {address} is unreachable (could not {what}): {error}"),
        )
    } else {
        (
            BackendErrorKind::Other,
            format!("the Redis server at {address} failed to {what}: {error}"),
        )
    };
    // Sent and unanswered: the command may have run. A refused connection sent nothing, and
    // an answer, even an error, says what happened.
    let in_doubt = error.is_timeout()
        || (!error.is_connection_refusal()
            && (error.is_io_error() || error.is_connection_dropped()));
    let error = BackendError::of(kind, message).caused_by(error);
    if in_doubt {
        error.in_doubt()
    } else {
        error
    }
}

/// Whether the server ran a transaction but refused some of its commands, so that the others
/// took effect; not when it refused the whole transaction (`EXECABORT`: nothing ran) or was not
/// reached or did not answer (as for a script, whether it ran is then unknown).
pub(super) fn ran_in_part(error: &RedisError) -> bool {
    error.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort)
        && error.clone().into_server_errors().is_some()
}

/// Whether rustls refused the connection (an untrusted certificate, say): the server answered,
/// so it is not "unreachable".
pub(super) fn is_tls_failure(error: &RedisError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        // redis-rs keeps the I/O error that rustls's error rides in as an `Arc<dyn Error>`.
        let io = current.downcast_ref::<std::io::Error>().or_else(|| {
            current
                .downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
                .and_then(|shared| shared.downcast_ref::<std::io::Error>())
        });
        let inner = io.and_then(std::io::Error::get_ref);
        if current.is::<::rustls::Error>()
            || inner.is_some_and(|inner| inner.is::<::rustls::Error>())
        {
            return true;
        }
        cause = current.source();
    }
    false
}

pub(super) fn validate_prefix(prefix: &str) -> Result<(), BackendError> {
    let valid = (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_:.-".contains(&byte));
    check_name(valid, || {
        format!(
            "invalid Redis key prefix {prefix:?}: use 1 to 64 characters among ASCII letters, \
             digits, `_`, `:`, `.` and `-`"
        )
    })
}
