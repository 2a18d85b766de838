//! Why a command failed, and the exit code that tells a script.

use std::fmt;

use emitter::{BackendError, BackendErrorKind};

/// A failed command: its message (printed on stderr) and exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

/// The exit codes, stable for scripts (listed in `emitter --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// The store failed: unreachable, timed out, or refused the call.
    Store = 1,
    /// Bad usage or input.
    Usage = 2,
    /// What the command names does not exist.
    NotFound = 3,
    /// The command was refused: a running delivery or a dead letter to cancel, or a destructive
    /// command not confirmed.
    Refused = 4,
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Code::Usage, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self::new(Code::Refused, message)
    }
}

/// A store's errors never hold a connection URL's password: the stores scrub their messages.
/// A bad URL or cursor is the operator's input; anything else, the store's failure.
impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Self {
        let code = match error.kind() {
            BackendErrorKind::Misconfigured | BackendErrorKind::InvalidInput => Code::Usage,
            _ => Code::Store,
        };
        Self::new(code, error.to_string())
    }
}

/// Writing the answer failed. A reader that stopped reading (`emitter ... | head`) is no
/// failure to report: it exits quietly.
impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        let message = if error.kind() == std::io::ErrorKind::BrokenPipe {
            String::new()
        } else {
            format!("cannot write the answer: {error}")
        };
        Self::new(Code::Store, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
