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

    /// The version of the event's shape (default 1, `#[event(version = 2)]`). Durable backends
    /// store it with each emit; a stored event of an older version is brought up to this one by
    /// the event's upcasters (`#[event(upcast(from = 1, with = ...))]`) before it is decoded, and
    /// one of a newer version is left in the store for a worker that knows it.
    const VERSION: u32 = 1;

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
    /// The event's version ([`Event::VERSION`]).
    pub version: u32,
    /// The upcasters, by the version they read: the first brings version 1 to 2, and so on up to
    /// `version`.
    pub upcasters: &'static [Upcaster],
    /// Decodes the event from its JSON value, once upcast.
    pub decode_value: fn(serde_json::Value, Header) -> serde_json::Result<Payload>,
}

/// One step of upcasting: the JSON of an event of one version to the next, or why not.
#[doc(hidden)]
pub type Upcaster = fn(serde_json::Value) -> Result<serde_json::Value, String>;

/// Why a stored event cannot be decoded by this binary.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// The event was stored by a newer build: a worker that knows its version should take it.
    Newer { stored: u32, known: u32 },
    /// Dead-lettered: the reason says why.
    Undecodable(String),
}

impl EventRegistration {
    /// Whether this build can read the event when it is stored at `version`: its own version, or
    /// an older one it has the upcasters for. A start-up check can ask it of every version a
    /// store holds.
    pub(crate) fn can_read(&self, version: u32) -> Result<(), DecodeError> {
        if version > self.version {
            return Err(DecodeError::Newer {
                stored: version,
                known: self.version,
            });
        }
        if version == 0 {
            return Err(DecodeError::Undecodable(format!(
                "the event is stored as version 0, which no build writes (versions start at 1): \
                 the delivery is damaged; `{}` knows versions 1 to {}",
                self.type_name, self.version
            )));
        }
        if let Some(missing) = (version..self.version)
            .find(|from| usize::try_from(*from).map_or(true, |from| from > self.upcasters.len()))
        {
            return Err(DecodeError::Undecodable(format!(
                "`{}` has no upcaster from version {missing} to {}",
                self.type_name,
                missing + 1
            )));
        }
        Ok(())
    }

    /// Decodes an event stored at `version`: as it is when it is this binary's version, through
    /// the upcasters from an older one.
    pub(crate) fn decode_stored(
        &self,
        bytes: &[u8],
        version: u32,
        header: Header,
    ) -> Result<Payload, DecodeError> {
        if version == self.version {
            return (self.decode)(bytes, header).map_err(|error| {
                DecodeError::Undecodable(format!(
                    "the payload cannot be decoded as `{}`: {error}",
                    self.type_name
                ))
            });
        }
        self.can_read(version)?;
        let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
            DecodeError::Undecodable(format!(
                "the payload of version {version} is not JSON, so it cannot be upcast to `{}` \
                 version {}: {error}",
                self.type_name, self.version
            ))
        })?;
        let steps = usize::try_from(version - 1)
            .ok()
            .and_then(|first| self.upcasters.get(first..))
            .unwrap_or_default();
        for (from, step) in (version..self.version).zip(steps) {
            value = step(value).map_err(|error| {
                DecodeError::Undecodable(format!(
                    "the upcaster of `{}` from version {from} to {} failed on a payload stored \
                     at version {version}: {error}",
                    self.type_name,
                    from + 1
                ))
            })?;
        }
        (self.decode_value)(value, header).map_err(|error| {
            DecodeError::Undecodable(format!(
                "the payload stored at version {version}, upcast to version {}, cannot be \
                 decoded as `{}`: {error}",
                self.version, self.type_name
            ))
        })
    }
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

/// Decodes an `E` from its JSON value, once upcast to the current version.
#[doc(hidden)]
pub fn decode_json_value<E: Event>(
    value: serde_json::Value,
    header: Header,
) -> serde_json::Result<Payload> {
    serde_json::from_value::<E>(value).map(|event| Arc::new(Emitted { header, event }) as Payload)
}

/// Runs a user's upcaster, turning its error into text: what the generated [`Upcaster`]s call.
#[doc(hidden)]
pub fn upcast_with<E: std::fmt::Display>(
    upcaster: fn(serde_json::Value) -> Result<serde_json::Value, E>,
    value: serde_json::Value,
) -> Result<serde_json::Value, String> {
    upcaster(value).map_err(|error| error.to_string())
}

pub(crate) fn registered() -> impl Iterator<Item = &'static EventRegistration> {
    inventory::iter::<EventRegistration>.into_iter()
}

#[cfg(test)]
mod tests {
    use super::{DecodeError, EventRegistration, Header, Payload};

    fn unused(_: &[u8], _: Header) -> serde_json::Result<Payload> {
        Err(serde::de::Error::custom("not decoded here"))
    }

    fn unused_value(_: serde_json::Value, _: Header) -> serde_json::Result<Payload> {
        Err(serde::de::Error::custom("not decoded here"))
    }

    fn same(value: serde_json::Value) -> Result<serde_json::Value, String> {
        Ok(value)
    }

    fn registration(version: u32, upcasters: &'static [super::Upcaster]) -> EventRegistration {
        EventRegistration {
            id: "profile",
            type_name: "app::Profile",
            type_id: std::any::TypeId::of::<()>,
            file: file!(),
            line: line!(),
            encode: |_| None,
            decode: unused,
            version,
            upcasters,
            decode_value: unused_value,
        }
    }

    /// What `can_read` says of each stored version, as text: `ok`, `newer than N`, or the reason.
    fn verdicts(registration: &EventRegistration, versions: std::ops::Range<u32>) -> Vec<String> {
        versions
            .map(|version| match registration.can_read(version) {
                Ok(()) => "ok".to_owned(),
                Err(DecodeError::Newer { known, .. }) => format!("newer than {known}"),
                Err(DecodeError::Undecodable(reason)) => reason,
            })
            .collect()
    }

    #[test]
    fn a_worker_reads_its_version_and_the_older_ones_it_can_upcast() {
        let versions = verdicts(&registration(3, &[same, same]), 0..5);
        assert!(
            versions[0].contains("version 0, which no build writes"),
            "{versions:?}"
        );
        assert_eq!(versions[1..], ["ok", "ok", "ok", "newer than 3"]);
        // Registered by hand without the upcaster from 1 (the derive refuses that).
        let versions = verdicts(&registration(3, &[same]), 1..4);
        assert_eq!(
            versions,
            [
                "`app::Profile` has no upcaster from version 2 to 3",
                "`app::Profile` has no upcaster from version 2 to 3",
                "ok"
            ]
        );
    }
}
