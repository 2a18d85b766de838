#![doc = include_str!("../../README.md")]
//!
//! # Map of the crate
//!
//! - [`Event`] and `#[derive(Event)]`: what can be emitted.
//! - [`listener`](macro@listener): what runs when an event is emitted.
//! - [`emit!`] and [`Emitter::emit`]: emitting.
//! - [`Emitter`] and [`EmitterBuilder`]: the handle, its lifecycle and configuration.
//! - [`EventTable`]: which listeners run for which event, built at start.
//! - [`EventEmitterBackend`]: where queued events live and who runs them;
//!   [`SimpleEventEmitter`] is the in-memory default.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backend;
mod context;
mod emitter;
mod error;
mod event;
mod listener;
mod table;

#[doc(hidden)]
pub mod __private;

pub use crate::backend::{
    memory::SimpleEventEmitter, Dispatcher, DynEventEmitterBackend, Envelope, EventEmitterBackend,
};
pub use crate::context::{EmitId, EventMeta, State};
pub use crate::emitter::{Emitter, EmitterBuilder, ErrorHook, NoListenersPolicy};
pub use crate::error::{BackendError, BoxError, EmitError, Failure, ListenerError, StartError};
pub use crate::event::Event;
pub use crate::listener::Listener;
pub use crate::table::EventTable;

#[doc(inline)]
pub use emitter_macros::{emit, listener, Event};

/// Names listeners for [`EmitterBuilder::listeners`], so that an emitter runs only those.
///
/// Each argument is the path of a function annotated with [`#[listener]`](macro@listener).
///
/// ```
/// use emitter::{listener, listeners, Emitter, Event};
///
/// #[derive(Event)]
/// pub struct Ping { pub n: u32 }
///
/// #[listener(events = [Ping])]
/// async fn on_ping(n: u32) { let _ = n; }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emitter = Emitter::builder().listeners(listeners![on_ping]).start().await?;
/// assert_eq!(emitter.table().listeners_of::<Ping>().count(), 1);
/// emitter.shutdown().await?;
/// # Ok(())
/// # }
/// ```
///
/// Without the macro: `[<on_ping as emitter::Listener>::REGISTRATION]`.
#[macro_export]
macro_rules! listeners {
    ($($listener:path),* $(,)?) => {
        [$(<$listener as $crate::Listener>::REGISTRATION),*]
    };
}
