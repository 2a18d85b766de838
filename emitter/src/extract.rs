//! What the macros check at compile time: the traits the code they write goes through.
//!
//! You do not implement or call these traits: the macros do. They are public so that their
//! documentation states the rules, and so that a compile error names a trait you can look up
//! here. Each one carries the message of the mistake it catches.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize, Serializer};

use crate::emitter::Emitter;

/// The type of an event's field: events are stored and sent as JSON, so every field is
/// serialized and deserialized with serde. `#[derive(Event)]` reads and writes each field through
/// this trait.
#[diagnostic::on_unimplemented(
    message = "an event field of type `{Self}` must implement serde's `Serialize` and `Deserialize`",
    label = "`{Self}` is not `Serialize + Deserialize`",
    note = "events are stored and sent as JSON: derive `serde::Serialize` and `serde::Deserialize` for `{Self}` (with `serde` as a dependency), or give the field a type that has them"
)]
pub trait EventField: Sized {
    #[doc(hidden)]
    fn serialize_field<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    #[doc(hidden)]
    fn deserialize_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

// Not recommended, so that a type without serde's traits is reported as one `EventField` error
// rather than one per missing trait.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> EventField for T {
    fn serialize_field<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize(serializer)
    }

    fn deserialize_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer)
    }
}

/// A value `emit!` accepts for a field of type `Self`: a value of the field's type, checked as in
/// a struct literal (so `6 * 7`, `None` and `vec![]` work), or, for a `String` field, a `&str`,
/// `&String`, `Cow<str>` or `Box<str>`. Nothing else converts: a `bool` or a `char` is not a
/// number, a `&str` is not bytes.
#[diagnostic::on_unimplemented(
    message = "`emit!` cannot put a `{V}` into a field of type `{Self}`",
    label = "this value is a `{V}`",
    note = "convert it as in a struct literal: `.into()` where nothing is lost, `.try_into()?` where something can be, `.to_string()` for text, `Some(value)` for an `Option`; only a `String` field also takes `&str`, `&String`, `Cow<str>` and `Box<str>` as they are"
)]
pub trait EmitValue<V>: Sized {
    #[doc(hidden)]
    fn from_value(value: V) -> Self;
}

impl<T> EmitValue<T> for T {
    fn from_value(value: T) -> Self {
        value
    }
}

#[diagnostic::do_not_recommend]
impl EmitValue<&str> for String {
    fn from_value(value: &str) -> Self {
        value.to_owned()
    }
}

#[diagnostic::do_not_recommend]
impl EmitValue<&String> for String {
    fn from_value(value: &String) -> Self {
        value.clone()
    }
}

#[diagnostic::do_not_recommend]
impl EmitValue<Cow<'_, str>> for String {
    fn from_value(value: Cow<'_, str>) -> Self {
        value.into_owned()
    }
}

#[diagnostic::do_not_recommend]
impl EmitValue<Box<str>> for String {
    fn from_value(value: Box<str>) -> Self {
        value.into_string()
    }
}

/// What `emit!` accepts as its emitter: an [`Emitter`], a `&Emitter`, an `Arc<Emitter>`, or
/// anything else that is `AsRef<Emitter>`.
#[diagnostic::on_unimplemented(
    message = "`emit!` needs an `Emitter`, not `{Self}`",
    label = "not an `Emitter`",
    note = "a started emitter comes from `Emitter::builder().start().await?`: `start` returns a future to `.await`, whose `Result` needs `?`; keep the `Emitter` it gives (a `&Emitter` or an `Arc<Emitter>` works too)"
)]
pub trait AsEmitter {
    #[doc(hidden)]
    fn as_emitter(&self) -> &Emitter;
}

#[diagnostic::do_not_recommend]
impl<T: AsRef<Emitter> + ?Sized> AsEmitter for T {
    fn as_emitter(&self) -> &Emitter {
        self.as_ref()
    }
}

impl AsRef<Emitter> for Emitter {
    fn as_ref(&self) -> &Emitter {
        self
    }
}
