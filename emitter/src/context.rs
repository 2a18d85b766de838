//! What a listener can ask for besides event fields: metadata, shared state, the emitter.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Weak;
use std::time::SystemTime;

use crate::emit_id::EmitId;

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

/// A map keyed by [`TypeId`], hashed by the id itself: a `TypeId` is already a hash, and `emit`
/// looks its event's type up in one of these.
pub(crate) type TypeMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;

/// Passes a `TypeId`'s own bits through as its hash.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 ^= bits;
    }

    fn write(&mut self, bytes: &[u8]) {
        // `TypeId` hashes through `write_u64` today; should that change, fold the bytes (FNV-1a).
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What deliveries hand to listeners besides the event: the shared state given to the builder,
/// and the emitter.
#[doc(hidden)]
pub(crate) struct ListenerContext {
    pub(crate) states: TypeMap<Box<dyn Any + Send + Sync>>,
    /// The emitter's shared part, for listeners' `Emitter` parameters. Weak, so that what runs
    /// deliveries does not keep the emitter alive; type-erased, so that this module, below the
    /// emitter, does not depend on it (the emitter module turns it back into an `Emitter`).
    pub(crate) emitter: Weak<dyn Any + Send + Sync>,
}

impl ListenerContext {
    /// The state of type `T`, as the builder stored it.
    pub(crate) fn state<T: 'static>(&self) -> Option<&State<T>> {
        self.states
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<State<T>>())
    }
}

impl fmt::Debug for ListenerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerContext")
            .field("states", &self.states.len())
            .finish_non_exhaustive()
    }
}
