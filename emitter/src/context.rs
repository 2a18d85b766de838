//! What a listener can ask for besides event fields: metadata, and shared state.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The unique id of one emit, shared by every delivery of that event.
///
/// Ids are unique within a process and, with overwhelming probability, across processes: the high
/// 64 bits identify the process (a hash of its id and start time), the low 64 bits count emits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmitId(u128);

impl EmitId {
    pub(crate) fn next() -> Self {
        static PROCESS: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(std::process::id());
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos());
            hasher.write_u128(nanos);
            hasher.finish()
        });
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        EmitId((u128::from(process) << 64) | u128::from(count))
    }

    /// The id as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// An id from a number previously given by [`EmitId::as_u128`].
    pub fn from_u128(id: u128) -> Self {
        EmitId(id)
    }
}

impl fmt::Display for EmitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EmitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmitId({self})")
    }
}

/// Metadata of the event a listener is handling.
///
/// Take it as a listener parameter (`meta: EventMeta` or `meta: &EventMeta`) to learn which event
/// fired (useful in a listener of several events), which emit it came from, when, and which
/// attempt this is.
#[derive(Debug, Clone)]
pub struct EventMeta {
    pub(crate) event_id: &'static str,
    pub(crate) emit_id: EmitId,
    pub(crate) emitted_at: SystemTime,
    pub(crate) attempt: u32,
    pub(crate) listener: &'static str,
}

impl EventMeta {
    /// The metadata of `listener`'s attempt number `attempt` at the event described by `header`.
    pub(crate) fn of(header: &crate::event::Header, listener: &'static str, attempt: u32) -> Self {
        EventMeta {
            event_id: header.event_id,
            emit_id: header.emit_id,
            emitted_at: header.emitted_at,
            attempt,
            listener,
        }
    }

    /// The id of the event that fired, for example `"user_created"`.
    pub fn event_id(&self) -> &'static str {
        self.event_id
    }

    /// The id of the emit this delivery comes from.
    pub fn emit_id(&self) -> EmitId {
        self.emit_id
    }

    /// Whether the event that fired is an `E`: in a listener of several events,
    /// `if meta.is::<UserCreated>() { ... }`.
    pub fn is<E: crate::Event>(&self) -> bool {
        self.event_id == E::ID
    }

    /// When the event was emitted.
    pub fn emitted_at(&self) -> SystemTime {
        self.emitted_at
    }

    /// Which attempt this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The name of the listener being run.
    pub fn listener(&self) -> &'static str {
        self.listener
    }
}

/// Shared state given to the emitter builder with [`EmitterBuilder::state`](crate::EmitterBuilder::state).
///
/// A listener parameter `State<T>` receives a clone of the `T` given to the builder (destructure
/// it as `State(mailer): State<Mailer>` to name the `T` directly; `&State<T>` borrows the
/// emitter's copy instead of cloning it); put an `Arc`
/// (or a handle type such as a connection pool) in it when the value is expensive to clone. A
/// listener that takes a `State<T>` no one provided makes [`EmitterBuilder::start`](crate::EmitterBuilder::start)
/// fail with [`StartError::MissingState`](crate::StartError::MissingState), naming the listener and `T`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
