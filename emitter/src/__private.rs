//! What the macros' expansions name. Not a public API: anything here may change in any release.

pub use ::core::clone::Clone;
pub use ::core::result::Result;
pub use ::std::any::{type_name, TypeId};
pub use ::std::boxed::Box;
pub use ::std::task::Context;
pub use inventory;
pub use serde;

pub use crate::context::{EventMeta, State};
pub use crate::durable::TxKind;
pub use crate::emitter::Emitter;
pub use crate::error::{EmitError, Failure};
pub use crate::event::{
    decode_json, decode_json_value, encode_json, upcast_with, Emitted, Event, EventRegistration,
    Header, Payload, Upcaster,
};
pub use crate::extract::{
    collect_states, count_states, first_transaction, has_field, str_eq, AsEmitter, Dead, EmitValue,
    EventField, FromDelivery, FromDeliveryRef, FromField, IntoListenerResult, ListenerFuture,
    OwnedEvent, Pick, Select,
};
pub use crate::listener::{
    now, run_blocking, start, Adapter, AdapterSlot, AnyAdapter, BoxFuture, Delivery, DeliveryParts,
    EventRef, Handler, Held, Listener, ListenerRef, ListenerRegistration, Started, StateKey,
};
pub use crate::policy::PolicyOverrides;
pub use ::core::option::Option::{self, None, Some};
pub use ::core::time::Duration;
