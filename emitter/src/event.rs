//! The [`Event`] trait and the link-time registry of event types.

use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use crate::emit_id::EmitId;
use crate::error::EmitError;
use crate::lifecycle::EventToken;
use crate::trace::Trace;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// One emitted event with what the emitter knows of it: owned by its only delivery, or in one
/// allocation shared by every delivery of the emit. Dropping it finishes the event when it holds
/// its [`EventToken`].
#[doc(hidden)]
pub struct Emitted<T: ?Sized> {
    pub(crate) header: Header,
    pub(crate) event: T,
}

/// What the emitter knows of an emitted event besides the event itself.
#[doc(hidden)]
pub struct Header {
    pub(crate) event_id: &'static str,
    pub(crate) emit_id: EmitId,
    pub(crate) emitted_at: SystemTime,
    /// The emit's trace context. Boxed: only emitters that propagate spans pay for one, and
    /// the event stays small.
    pub(crate) trace: Option<Box<Trace>>,
    /// Counts the event in the emitter's pending events while the event lives, when it is the
    /// event that does (see the scheduler): empty for an event the scheduler finishes itself,
    /// and for a delivery a durable backend loaded from its store (the store, not the emitter,
    /// keeps it).
    pub(crate) token: OnceLock<EventToken>,
}

/// A type-erased emitted event.
#[doc(hidden)]
pub type Payload = Arc<Emitted<dyn Any + Send + Sync>>;

/// Something that can be emitted: a struct with named fields and a stable id.
///
/// Implement it with `#[derive(Event)]`, which also implements serde's `Serialize` and
/// `Deserialize` (the user's crate needs no serde dependency) and registers the type at link time:
///
/// ```
/// use emitter::Event;
///
/// #[derive(Event)]
/// pub struct UserCreated {
///     pub email: String,
/// }
///
/// #[derive(Event)]
/// #[event(id = "account.closed")]
/// pub struct AccountClosed {
///     pub account: u64,
/// }
///
/// assert_eq!(UserCreated::ID, "user_created");
/// assert_eq!(AccountClosed::ID, "account.closed");
/// ```
///
/// Field attributes of serde (`#[serde(rename = "...")]`, `#[serde(default)]`, ...) are accepted
/// on the fields. Do not also derive `Serialize`/`Deserialize`: the derive already provides them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "not an event",
    note = "add `#[derive(emitter::Event)]` to the definition of `{Self}`"
)]
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The event's stable id: snake_case of the type name unless `#[event(id = "...")]` says
    /// otherwise. Durable backends store it, so changing it orphans queued events.
    const ID: &'static str;

    /// The names of the event's fields, in declaration order. A listener parameter named like
    /// one of them takes that field; `#[derive(Event)]` lists them.
    const FIELDS: &'static [&'static str];

    /// Emits the event: what `emit!` expands to. A method of the event type, so that a type
    /// that is not an event is reported once, on that type.
    #[doc(hidden)]
    fn __emit(emitter: &impl Emits, event: Self) -> Result<EmitId, EmitError> {
        emitter.emit_event(event)
    }
}

/// What emits events: the emitter, which implements this where it is defined (this module is
/// below it).
#[doc(hidden)]
pub trait Emits {
    fn emit_event<E: Event>(&self, event: E) -> Result<EmitId, EmitError>;
}

/// What `#[derive(Event)]` submits to the link-time registry.
#[doc(hidden)]
#[derive(Debug)]
pub struct EventRegistration {
    pub id: &'static str,
    pub type_name: &'static str,
    pub type_id: fn() -> TypeId,
    pub file: &'static str,
    pub line: u32,
    pub encode: fn(&(dyn Any + Send + Sync)) -> Option<serde_json::Result<Vec<u8>>>,
    pub decode: fn(&[u8], Header) -> serde_json::Result<Payload>,
}

inventory::collect!(EventRegistration);

/// The registration's codec for `E`: JSON, the format durable backends store.
#[doc(hidden)]
pub fn encode_json<E: Event>(
    payload: &(dyn Any + Send + Sync),
) -> Option<serde_json::Result<Vec<u8>>> {
    payload.downcast_ref::<E>().map(serde_json::to_vec)
}

/// Decodes an `E` stored by a durable backend into an event ready for its listeners.
#[doc(hidden)]
pub fn decode_json<E: Event>(bytes: &[u8], header: Header) -> serde_json::Result<Payload> {
    serde_json::from_slice::<E>(bytes).map(|event| Arc::new(Emitted { header, event }) as Payload)
}

pub(crate) fn registered() -> impl Iterator<Item = &'static EventRegistration> {
    inventory::iter::<EventRegistration>.into_iter()
}
