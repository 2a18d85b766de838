//! An emitted event on its way to its listeners ([`Envelope`]), and how it was asked to be
//! delivered ([`EmitOptions`]).

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::emit_id::EmitId;
use crate::error::BackendError;
use crate::event::Payload;

/// How to emit an event besides now and once: a delay, an idempotency key. Give it to
/// [`Emitter::emit_with`](crate::Emitter::emit_with).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct EmitOptions {
    pub(crate) run_at: Option<SystemTime>,
    pub(crate) key: Option<String>,
}

impl EmitOptions {
    /// No delay, no key: a plain emit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers the event at `when` rather than now (at once if `when` has passed).
    pub fn at(mut self, when: SystemTime) -> Self {
        self.run_at = Some(when);
        self
    }

    /// Delivers the event `delay` from now.
    pub fn after(self, delay: Duration) -> Self {
        self.at(SystemTime::now() + delay)
    }

    /// Deduplicates the emit: a second emit with the same key, while the backend remembers the
    /// first, is dropped (it returns `Ok` and is never delivered). Use a key that names the fact,
    /// such as `"order-42-paid"`, so that a retried request does not notify twice. Durable
    /// backends remember keys for `DurableConfig::key_retention` (7 days by default); the
    /// in-memory backend for 24 hours (`SimpleEventEmitter::with_key_retention`).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The options an envelope carries: none for a plain emit.
    pub(crate) fn into_envelope_options(self) -> Option<Box<Options>> {
        (self.run_at.is_some() || self.key.is_some()).then(|| {
            Box::new(Options {
                run_at: self.run_at,
                key: self.key,
                stored: None,
                since: None,
            })
        })
    }
}

/// One emitted event on its way to its listeners.
pub struct Envelope {
    pub(crate) payload: Payload,
    /// The index of the event's entry in the emitter's table.
    pub(crate) event: usize,
    /// What [`EmitOptions`] asked for; boxed, so that a plain emit carries one null pointer.
    pub(crate) options: Option<Box<Options>>,
}

/// The options of an emit that has some.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) run_at: Option<SystemTime>,
    pub(crate) key: Option<String>,
    /// Told when a durable backend has stored the event (`emit_async` waits on it).
    pub(crate) stored: Option<oneshot::Sender<Result<(), BackendError>>>,
    /// When `emit_async` was called: a durable backend's deadline to store counts from then.
    pub(crate) since: Option<Instant>,
}

impl Envelope {
    /// The id of the event, for example `"user_created"`.
    pub fn event_id(&self) -> &'static str {
        self.payload.header.event_id
    }

    /// The id of this emit.
    pub fn emit_id(&self) -> EmitId {
        self.payload.header.emit_id
    }

    /// When the event was emitted.
    pub fn emitted_at(&self) -> SystemTime {
        self.payload.header.emitted_at
    }

    /// The event, if it is an `E`.
    pub fn event<E: crate::Event>(&self) -> Option<&E> {
        self.payload.event.downcast_ref::<E>()
    }

    /// When the event is due: `None` for now, a time for a delayed emit
    /// ([`Emitter::emit_after`](crate::Emitter::emit_after),
    /// [`Emitter::emit_at`](crate::Emitter::emit_at)).
    pub fn run_at(&self) -> Option<SystemTime> {
        self.options.as_ref().and_then(|options| options.run_at)
    }

    /// Whether a caller waits to hear that the envelope is stored (`emit_async`).
    pub(crate) fn is_awaited(&self) -> bool {
        self.options
            .as_ref()
            .is_some_and(|options| options.stored.is_some())
    }

    /// When `emit_async` was called for this envelope, if it was.
    pub(crate) fn since(&self) -> Option<Instant> {
        self.options.as_ref().and_then(|options| options.since)
    }

    /// The emit's idempotency key, if it has one: a backend drops an emit whose key it has seen.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.options
            .as_ref()
            .and_then(|options| options.key.as_deref())
    }

    /// Tells whoever waits on this emit (an [`Emitter::emit_async`](crate::Emitter::emit_async)
    /// call) that the event was stored, or why it could not be, and drops the envelope. Durable
    /// backends call it once the event is safely stored; dropping an envelope without calling it
    /// reports it as lost.
    pub fn stored(mut self, result: Result<(), BackendError>) {
        if let Some(waiter) = self
            .options
            .as_mut()
            .and_then(|options| options.stored.take())
        {
            let _ = waiter.send(result);
        }
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("event_id", &self.event_id())
            .field("emit_id", &self.emit_id())
            .field("emitted_at", &self.emitted_at())
            .finish_non_exhaustive()
    }
}
