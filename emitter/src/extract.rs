//! What the macros check at compile time: the traits the code they write goes through.
//!
//! You do not implement or call these traits: the macros do. They are public so that their
//! documentation states the rules, and so that a compile error names a trait you can look up
//! here. Each one carries the message of the mistake it catches.

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize, Serializer};

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
