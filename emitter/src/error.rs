//! Errors of emitting, of starting an emitter, and of running a listener.

use std::fmt;

use crate::emit_id::EmitId;

/// A boxed error, the error type a listener's `Result` is converted to.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why [`Emitter::emit`](crate::Emitter::emit) refused an event.
///
/// The event is not queued when an error is returned: nothing was delivered and nothing will be.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The emitter was built but not started: call [`Emitter::start`](crate::Emitter::start) first.
    #[error("the emitter is not started: call `Emitter::start` (or `EmitterBuilder::start`) before emitting")]
    NotStarted,
    /// The emitter has shut down and accepts no more events.
    #[error("the emitter has shut down and accepts no more events")]
    ShutDown,
    /// The tokio runtime the emitter was started on has shut down, without a shutdown of the
    /// emitter: nothing would run the event.
    #[error("the emitter stopped: the tokio runtime it was started on has shut down; start emitters on a runtime that outlives them, and call `Emitter::shutdown` before the runtime ends")]
    Stopped,
    /// No listener listens to this event and the policy is [`NoListenersPolicy::Error`](crate::NoListenersPolicy::Error).
    #[error(
        "no listener listens to event `{event_id}` (the emitter's no-listeners policy is `Error`)"
    )]
    NoListeners {
        /// The id of the event that was emitted.
        event_id: &'static str,
    },
    /// The emitter holds as many events as its capacity allows; the event is handed back.
    /// Retry later, shed load, or use [`Emitter::emit_async`](crate::Emitter::emit_async), which
    /// waits for room.
    #[error("the emitter is full and refused event `{}`: retry later, or use `emit_async` to wait for room", .0.event_id())]
    Full(RejectedEvent),
    /// The event, encoded for a durable backend, is larger than the backend accepts.
    #[error("event `{event_id}` is {size} bytes encoded, over the backend's limit of {limit} bytes: make the event smaller (store large data elsewhere and emit a reference to it), or raise the limit with `DurableConfig::max_payload`")]
    PayloadTooLarge {
        /// The id of the event that was emitted.
        event_id: &'static str,
        /// Its encoded size in bytes.
        size: usize,
        /// The backend's limit in bytes.
        limit: usize,
    },
    /// The backend could not take the event.
    #[error("the backend refused event `{event_id}`: {source}")]
    Backend {
        /// The id of the event that was emitted.
        event_id: &'static str,
        /// What the backend reported.
        #[source]
        source: BackendError,
    },
}

/// An event the emitter refused because it was full, handed back to the caller.
pub struct RejectedEvent {
    event_id: &'static str,
    event: Box<dyn std::any::Any + Send + Sync>,
}

impl RejectedEvent {
    pub(crate) fn new<E: crate::Event>(event_id: &'static str, event: E) -> Self {
        Self {
            event_id,
            event: Box::new(event),
        }
    }

    /// The id of the refused event.
    pub fn event_id(&self) -> &'static str {
        self.event_id
    }

    /// The refused event, if it is an `E` (it is the type that was emitted).
    pub fn into_event<E: crate::Event>(self) -> Option<E> {
        self.event.downcast::<E>().ok().map(|event| *event)
    }
}

impl fmt::Debug for RejectedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectedEvent")
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

/// Why an emitter could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Two event types registered the same id.
    #[error("event id `{id}` is used by two types, `{first}` and `{second}`: give one of them another id with `#[event(id = \"...\")]`")]
    DuplicateEventId {
        /// The id both types claim.
        id: &'static str,
        /// The first type's path.
        first: &'static str,
        /// The second type's path.
        second: &'static str,
    },
    /// Two listeners have the same name (as a name or an alias).
    #[error("listener name `{name}` is used twice ({first} and {second}): give one of them another name with `#[listener(name = \"...\")]`, or drop it from `aliases`")]
    DuplicateListenerName {
        /// The name both listeners claim.
        name: &'static str,
        /// Where the first one is defined (`file:line`).
        first: String,
        /// Where the second one is defined (`file:line`).
        second: String,
    },
    /// A listener takes `State<T>` but no value of type `T` was given to the builder.
    #[error("listener `{listener}` takes `State<{type_name}>` but no such state was provided: add `.state(value)` with a `{type_name}` to the emitter builder")]
    MissingState {
        /// The listener's name.
        listener: &'static str,
        /// The type of the missing state.
        type_name: &'static str,
    },
    /// A listener takes a store transaction (`&PgTx`, `&SqliteTx`) that the emitter's backend
    /// cannot open.
    #[error("listener `{listener}` takes {needs}, which the backend `{backend}` cannot open: run it on {}, or take no transaction (and make its effects idempotent)", store_for(*needs))]
    TransactionUnavailable {
        /// The listener's name.
        listener: &'static str,
        /// The transaction it takes.
        needs: crate::durable::TxKind,
        /// The backend's type.
        backend: &'static str,
    },
    /// A listener named in [`EmitterBuilder::expect_listener`](crate::EmitterBuilder::expect_listener) was not registered.
    #[error("expected listener `{name}` is not registered: if it lives in another crate, make sure the binary names that crate (for example `use that_crate as _;`), because the linker drops registrations of crates that are never used")]
    MissingListener {
        /// The name that was expected.
        name: String,
    },
    /// A listener retries or has a timeout, and the tokio runtime has no timer to wait with.
    #[error("listener `{listener}` retries or has a timeout, but this tokio runtime has no timer: build the runtime with `enable_time()` (or `enable_all()`; `#[tokio::main]` does)")]
    TimersDisabled {
        /// A listener whose policy needs the timer.
        listener: &'static str,
    },
    /// The emitter was started twice.
    #[error("the emitter is already started")]
    AlreadyStarted,
    /// The emitter was shut down and cannot be started again.
    #[error("the emitter has shut down and cannot be started again: build a new one")]
    ShutDown,
    /// The backend failed to start.
    #[error("the backend failed to start: {0}")]
    Backend(#[source] BackendError),
}

/// An error reported by a backend. [`BackendError::kind`] says what went wrong, for a caller
/// that acts on it (retry later, alert, fix the configuration); the message says it in words,
/// with what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    kind: BackendErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
    /// `(size, limit)` when an event was refused for its size.
    too_large: Option<(usize, usize)>,
    /// Whether the call may have taken effect all the same.
    in_doubt: bool,
    /// The emit the error is about, and its idempotency key (boxed: errors stay small).
    emit: Option<Box<(EmitId, Option<String>)>>,
}

/// What kind of failure a [`BackendError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The server could not be reached, or the connection to it broke: retry later.
    Unreachable,
    /// The server did not answer within the configured time: it may be overloaded, or a lock
    /// holds the call up.
    TimedOut,
    /// The storage belongs to another version of the store or to another program: a newer
    /// schema version, or tables or keys named like the store's that it did not create.
    Conflict,
    /// The store holds data it cannot read: damaged, or edited by hand.
    Corrupt,
    /// An encoded event is larger than the backend accepts ([`BackendError::too_large`] says by
    /// how much).
    TooLarge,
    /// The store's configuration is wrong: an invalid URL, schema name or key prefix, an
    /// unreadable certificate file.
    Misconfigured,
    /// An argument of the call the store cannot use: a listing's cursor that is not one of
    /// its cursors (edited, or from another store).
    InvalidInput,
    /// Anything else: the server refused a statement, the backend stopped, a bug.
    Other,
}

impl BackendError {
    /// A backend error with a message, of kind [`BackendErrorKind::Other`].
    pub fn new(message: impl Into<String>) -> Self {
        Self::of(BackendErrorKind::Other, message)
    }

    /// A backend error of `kind` with a message.
    pub fn of(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            too_large: None,
            in_doubt: false,
            emit: None,
        }
    }

    /// A backend error with a message and the error that caused it, of kind
    /// [`BackendErrorKind::Other`].
    pub fn with_source(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::new(message).caused_by(source)
    }

    /// This error, with the error that caused it.
    pub fn caused_by(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// An encoded event of `size` bytes is over the backend's `limit`: the emitter turns this
    /// into [`EmitError::PayloadTooLarge`].
    pub fn payload_too_large(size: usize, limit: usize) -> Self {
        Self {
            too_large: Some((size, limit)),
            ..Self::of(
                BackendErrorKind::TooLarge,
                format!("the encoded event is {size} bytes, over the limit of {limit}"),
            )
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// This error, marked as one after which the call may have taken effect all the same: the
    /// request was sent and no answer came (a timeout, a connection that broke during the call).
    /// Stores mark such errors; an error not marked says the call changed nothing.
    pub fn in_doubt(mut self) -> Self {
        self.in_doubt = true;
        self
    }

    /// Whether the call that failed may have taken effect all the same (see
    /// [`BackendError::in_doubt`]). An emit refused with such an error may have been stored:
    /// emit it again with the same idempotency key ([`BackendError::idempotency_key`]), and the
    /// store drops it if the first one was stored.
    pub fn is_in_doubt(&self) -> bool {
        self.in_doubt
    }

    /// This error, about the emit `emit_id` with the idempotency key `key`.
    pub(crate) fn about_emit(mut self, emit_id: EmitId, key: Option<&str>) -> Self {
        self.emit = Some(Box::new((emit_id, key.map(str::to_owned))));
        self
    }

    /// The id of the emit this error is about, when it is about one: an emit a durable backend
    /// could not store within its `DurableConfig::emit_timeout`.
    pub fn emit_id(&self) -> Option<EmitId> {
        self.emit.as_deref().map(|(emit_id, _)| *emit_id)
    }

    /// The idempotency key of the emit this error is about, if it had one.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.emit.as_deref().and_then(|(_, key)| key.as_deref())
    }

    /// `(size, limit)` if this error refused an event for its size.
    pub fn too_large(&self) -> Option<(usize, usize)> {
        self.too_large
    }
}

/// How one run of a listener failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The listener returned an error.
    Error(BoxError),
    /// The listener panicked; the panic message when it was a string.
    Panic(String),
    /// The attempt ran longer than the listener's timeout and was cancelled.
    Timeout(std::time::Duration),
    /// The delivery could not be run at all: its stored payload does not decode as the event,
    /// say, or its workers kept dying while running it. Durable backends dead-letter it.
    Undeliverable(String),
}

impl Failure {
    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(message) => (*message).to_owned(),
                Err(_) => "a panic with a non-string payload".to_owned(),
            },
        };
        Failure::Panic(message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(error) => write!(f, "returned an error: {error}"),
            Failure::Panic(message) => write!(f, "panicked: {message}"),
            Failure::Timeout(limit) => write!(f, "timed out after {limit:?}"),
            Failure::Undeliverable(reason) => write!(f, "could not be run: {reason}"),
        }
    }
}

/// A listener failed to handle an event: what the error hook receives.
#[derive(Debug)]
#[non_exhaustive]
pub struct ListenerError {
    /// The listener's name.
    pub listener: &'static str,
    /// The id of the event it was handling.
    pub event_id: &'static str,
    /// The emit the event came from.
    pub emit_id: EmitId,
    /// How many attempts were made; the last one failed with `failure`.
    pub attempt: u32,
    /// What went wrong.
    pub failure: Failure,
}

impl fmt::Display for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "listener `{}` {} while handling event `{}` (emit {}, attempt {})",
            self.listener, self.failure, self.event_id, self.emit_id, self.attempt
        )
    }
}

impl std::error::Error for ListenerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            Failure::Error(error) => Some(error.as_ref()),
            Failure::Panic(_) | Failure::Timeout(_) | Failure::Undeliverable(_) => None,
        }
    }
}

/// The backend that opens a transaction of this kind.
fn store_for(kind: crate::durable::TxKind) -> &'static str {
    match kind {
        crate::durable::TxKind::Postgres => "`Durable<PostgresStore>`",
        crate::durable::TxKind::Sqlite => "`Durable<SqliteStore>`",
    }
}
