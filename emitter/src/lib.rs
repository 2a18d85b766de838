#![doc = include_str!("../../README.md")]
//!
//! # Map of the crate
//!
//! - [`Event`] and `#[derive(Event)]`: what can be emitted.
//! - [`listener`](macro@listener): what runs when an event is emitted.
//! - [`emit!`] and [`Emitter::emit`]: emitting.
//! - [`Emitter`] and [`EmitterBuilder`]: the handle, its lifecycle and configuration.
//! - [`EventTable`]: which listeners run for which event, built at start.
//! - [`extract`]: the traits behind the macros' compile-time checks, with the rules they enforce.
//! - [`DeliveryPolicy`], [`Backoff`], [`Capacity`]: retries, timeouts, concurrency, and how
//!   many events the emitter holds; [`ShutdownReport`] and [`Metrics`] say what happened.
//! - [`EventEmitterBackend`]: where queued events live and who runs them;
//!   [`SimpleEventEmitter`] is the in-memory default.
//! - [`testing`]: capture what was emitted and delivered, in users' tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// The handle and its lifecycle: emit, build, start, shut down, cron schedules.
mod emitter;
// Backends: the trait, the in-memory default, and durable delivery over a store.
mod backend;
pub mod durable;
// The delivery core every backend runs deliveries with; it never calls up into the emitter.
mod delivery;
// What the core works on: the table, listeners, events and what travels with them.
mod context;
mod emit_id;
mod envelope;
mod event;
pub mod extract;
mod lifecycle;
mod listener;
mod policy;
mod table;
mod trace;
// What the emitter tells its users: errors, counters, the shutdown report, test helpers.
mod error;
mod report;
mod stats;
pub mod testing;
// The operator's board over a durable store (feature `board`).
#[cfg(feature = "board")]
pub mod board;

#[doc(hidden)]
pub mod __private;

pub use crate::backend::{memory::SimpleEventEmitter, DynEventEmitterBackend, EventEmitterBackend};
pub use crate::context::{EventMeta, State};
pub use crate::delivery::{Dispatcher, ErrorHook};
pub use crate::emit_id::EmitId;
pub use crate::emitter::{
    Emitter, EmitterBuilder, NoListenersPolicy, Schedule, ScheduleError, ShutdownError,
};
pub use crate::envelope::{EmitOptions, Envelope};
pub use crate::error::{
    BackendError, BackendErrorKind, BoxError, EmitError, Failure, ListenerError, RejectedEvent,
    StartError,
};
pub use crate::event::Event;
pub use crate::listener::Listener;
pub use crate::policy::{Backoff, Capacity, DeliveryPolicy};
pub use crate::report::{DeliveryReport, ShutdownReport, StuckDelivery, UnfinishedDelivery};
pub use crate::stats::Metrics;
pub use crate::table::EventTable;

/// Implements [`Event`](trait@Event) for a struct with named fields, and serde's `Serialize` and
/// `Deserialize` (the user's crate needs no serde dependency), and registers the type at link time.
///
/// ```
/// use emitter::Event;
///
/// #[derive(Event, Debug, Clone)]
/// pub struct UserCreated {
///     pub email: String,
///     #[serde(default)]
///     pub referrer: Option<String>,
/// }
///
/// #[derive(Event)]
/// #[event(id = "billing.invoice_paid")]
/// pub struct InvoicePaid {
///     pub invoice: u64,
/// }
///
/// assert_eq!(UserCreated::ID, "user_created");
/// assert_eq!(InvoicePaid::ID, "billing.invoice_paid");
/// ```
///
/// - The id is the snake_case type name unless `#[event(id = "...")]` gives one. Durable
///   backends store it, so keep it stable. Two types with one id make the emitter's start fail
///   with [`StartError::DuplicateEventId`], naming both.
/// - Fields own their data (`String`, not `&str`: an event is queued, stored and read back) and
///   their types implement serde's `Serialize` and `Deserialize`. A field whose type is written
///   `Option<...>` reads as `None` when a stored event lacks it.
/// - Fields may carry serde attributes (`#[serde(rename = "...")]`, `#[serde(default)]`, ...).
///   Do not also derive `Serialize` or `Deserialize`, nor give `#[serde(remote)]` or
///   `#[serde(crate)]`: the derive sets those itself.
/// - Listeners in other modules bind fields by name, so make the fields they use `pub`.
/// - `#[event(version = N)]` gives the event's version ([`Event::VERSION`], 1 by default), which
///   durable backends store with each emit. A stored event of an older version is brought up to
///   date by the event's upcasters, `upcast(from = K, with = path)`, one for each older version
///   `K`: a `fn(serde_json::Value) -> Result<serde_json::Value, E>` (`E: Display`) from the JSON
///   of version `K` to that of `K + 1`. A missing, duplicate or misplaced upcaster is a compile
///   error. See the README's "Changing events safely".
///
/// ```
/// use emitter::Event;
/// use serde_json::Value;
///
/// fn v1_to_v2(mut value: Value) -> Result<Value, String> {
///     let object = value.as_object_mut().ok_or("not an object")?;
///     let user = object.remove("user").ok_or("no `user`")?;
///     object.insert("login".to_owned(), user); // `user` was renamed `login`
///     Ok(value)
/// }
///
/// #[derive(Event)]
/// #[event(version = 2, upcast(from = 1, with = v1_to_v2))]
/// pub struct ProfileChanged {
///     pub login: String,
/// }
///
/// assert_eq!(ProfileChanged::VERSION, 2);
/// ```
///
/// Without the macro, the same event is:
///
/// ```
/// # use emitter::__private::serde;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// # #[serde(crate = "emitter::__private::serde")]
/// pub struct UserCreated {
///     pub email: String,
/// }
///
/// impl emitter::Event for UserCreated {
///     const ID: &'static str = "user_created";
///     const FIELDS: &'static [&'static str] = &["email"];
///     // const VERSION: u32 = 2; for `#[event(version = 2)]`
/// }
/// ```
///
/// minus the link-time registration, which lets [`EventTable`] list an event that nothing
/// listens to.
#[doc(inline)]
pub use emitter_macros::Event;

/// Registers a function as a listener of one or more events.
///
/// ```
/// use emitter::{listener, Emitter, EventMeta, Event, State};
///
/// #[derive(Event)]
/// pub struct UserCreated { pub email: String, pub name: String }
///
/// #[derive(Event)]
/// pub struct PasswordChanged { pub email: String }
///
/// #[derive(Clone)]
/// pub struct Mailer { pub from: &'static str }
///
/// /// Parameters bind to the event's fields by name: `email` is `UserCreated::email`.
/// #[listener(events = [UserCreated])]
/// async fn send_welcome_email(email: &str, name: &str) {
///     println!("welcome, {name} <{email}>");
/// }
///
/// /// Listens to two events: `email` must exist, with a compatible type, in both.
/// #[listener(events = [UserCreated, PasswordChanged], name = "mail.notify")]
/// async fn notify(email: &str, meta: EventMeta, mailer: State<Mailer>) -> Result<(), std::io::Error> {
///     println!("{} -> {email} ({})", mailer.from, meta.event_id());
///     Ok(())
/// }
///
/// /// A plain `fn` runs on tokio's blocking pool.
/// #[listener(events = [PasswordChanged])]
/// fn audit(event: &PasswordChanged) {
///     println!("audit: password of {} changed", event.email);
/// }
///
/// // The function stays an ordinary function.
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// send_welcome_email("jane@example.com", "Jane").await;
/// # }
/// ```
///
/// # Options
///
/// - `events = [A, B, ...]` (required): the event types. Each must derive [`Event`](trait@Event).
/// - `name = "..."`: a stable name; the default is `module::path::function`. Durable backends key
///   deliveries by it, so set one before moving a listener to another module.
/// - `aliases = ["old::path::name", ...]`: the names the listener had before it was renamed or
///   moved. On a durable backend it claims the deliveries (and replayed dead letters) stored
///   under them, and its workers replace the old names' subscriptions. An empty alias, the
///   listener's own name, an alias listed twice, or one that is another listener's name is an
///   error (the last at start); without `name`, an alias equal to the default name fails when
///   the crate compiles:
///
/// ```compile_fail
/// # use emitter::{listener, Event};
/// # #[derive(Event)] pub struct Ping { pub n: u32 }
/// // The doctest's crate is `rust_out`, so this listener's name is `rust_out::on_ping`.
/// #[listener(events = [Ping], aliases = ["rust_out::on_ping"])]
/// async fn on_ping(n: u32) { let _ = n; }
/// ```
///
/// The delivery-policy options override the emitter's [`DeliveryPolicy`] for this listener
/// only, e.g. `#[listener(events = [E], attempts = 5, backoff = "100ms..10s")]`. Each is
/// checked at compile time. A duration is an integer and a unit, `ms`, `s`, `m` or `h`:
/// `"250ms"`, `"30s"`, `"5m"`, `"1h"`.
///
/// - `attempts = N`: how many times a delivery is tried in all, the first included (`N >= 1`;
///   `1` means no retry).
/// - `backoff = "INITIAL..MAX"`, e.g. `"100ms..10s"`: the first retry waits `INITIAL`, each next
///   one twice as long, at most `MAX` (`0 < INITIAL <= MAX`), plus [`Backoff`]'s jitter.
/// - `timeout = "DURATION"`, e.g. `"30s"`: an attempt running longer fails (`> 0`).
/// - `concurrency = N`: how many deliveries of this listener run at once (`N >= 1`; `1` keeps
///   emit order).
///
/// # Parameters
///
/// | parameter | receives |
/// |---|---|
/// | `field: &T`, `field: T` | the event's field `field` by reference, or cloned; `&str` for a `String`, `&[T]` for a `Vec<T>`, `Option<&T>` for an `Option<T>` |
/// | `event: &E`, `event: E` | the whole event (listeners of one event only); `E` needs `Clone` |
/// | `meta: EventMeta`, `&EventMeta` | [`EventMeta`]: which event, emit id, emit time, attempt |
/// | `emitter: Emitter`, `&Emitter` | the [`Emitter`], to emit follow-up events |
/// | `state: State<T>`, `&State<T>` | a clone of the `T` given to [`EmitterBuilder::state`] |
///
/// Context is recognised by its type ([`extract`] has the rules): a renamed import or an alias of
/// `EventMeta`, `Emitter` or `State<T>` works, and a parameter written with one of those types is
/// context even if the event has a field of the same name. Every other parameter takes the field
/// it is named after: a listener that asks for a field one of its events lacks, or with a type
/// that does not fit, does not compile, and the error points at the parameter. So does a
/// parameter that is neither (`mailer: &Mailer` for shared state: take `State<Mailer>`).
///
/// A listener is a free function: on a method or associated function in an `impl` or `trait`
/// block the attribute is an error, since the emitter calls a listener by its path.
///
/// The function returns `()` or `Result<(), E>` where `E` converts into [`BoxError`]; an `Err` or a
/// panic is logged, handed to the error hook ([`EmitterBuilder::on_error`]) and affects nothing
/// else. An `async fn`'s future must be `Send`, and must not block: its code up to its first
/// real wait runs on the emitter's scheduler task, so blocking there delays other deliveries.
/// Blocking or CPU-heavy work belongs in a plain `fn` listener, which runs on tokio's blocking
/// pool.
///
/// # What it generates
///
/// The function is kept as written. Beside it, per listed event, an adapter that takes the event
/// out of the delivery, binds the arguments and calls the function; a hidden type with the
/// function's name implementing [`Listener`], so [`listeners!`] can name it; and a link-time
/// registration (`inventory`) that [`Emitter::builder`] collects. Written by hand, the adapter
/// for `send_welcome_email` is roughly:
///
/// ```ignore
/// fn adapter(held: Held<UserCreated>, slot: &mut AdapterSlot, cx: &mut Context) -> Started {
///     start(slot, cx, async move {
///         let delivery = held.delivery()?;
///         let event: &UserCreated = delivery.event();
///         send_welcome_email(&event.email, &event.name).await;
///         Ok(())
///     })
/// }
/// ```
///
/// The first poll happens in place; a delivery that finishes in it costs no task. A listener
/// whose body cannot suspend (no `.await`, only plain calls and the standard formatting and
/// logging macros) gets an adapter that is a plain function of a borrowed event, with no future
/// at all; it runs under the same panic guard and outcome rules. (A `timeout` cannot cut such a
/// body short either way: with no `.await` it never yields to the timer.)
///
/// # Listeners in another crate
///
/// The linker drops registrations of a library crate that the binary never uses. If your
/// listeners live in their own crate, name it once in the binary (`use my_listeners as _;`), and
/// consider [`EmitterBuilder::expect_listener`], which turns a dropped listener into a start error.
#[doc(inline)]
pub use emitter_macros::listener;

/// Builds an event, with every field checked at compile time, and emits it.
///
/// `emit!(emitter, Event, field = value, ...)` returns what [`Emitter::emit`] returns:
/// `Result<EmitId, EmitError>`. Each value is checked as in the struct literal
/// `Event { field: value }`, so `6 * 7`, `None`, `vec![]` and `x.into()` take the field's type;
/// the one convenience is that a `String` field also takes a `&str`, `&String`, `Cow<str>` or
/// `Box<str>` ([`EmitValue`](extract::EmitValue)). A field given alone,
/// `emit!(emitter, Event, email)`, is shorthand for `email = email`. A missing, unknown or
/// mistyped field is a compile error on your token. The emitter may be an `Emitter`, a `&Emitter`,
/// an `Arc<Emitter>` or anything else that is `AsRef<Emitter>`.
///
/// ```
/// use emitter::{emit, listener, Emitter, Event};
///
/// #[derive(Event)]
/// pub struct OrderPlaced { pub order: u64, pub customer: String }
///
/// #[listener(events = [OrderPlaced])]
/// async fn confirm(order: u64, customer: &str) {
///     println!("order {order} confirmed for {customer}");
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emitter = Emitter::builder().start().await?;
/// let customer = String::from("jane");
/// let emit_id = emit!(emitter, OrderPlaced, order = 42, customer)?;
/// emitter.shutdown().await?;
/// # let _ = emit_id;
/// # Ok(())
/// # }
/// ```
///
/// Without the macro: `emitter.emit(OrderPlaced { order: 42, customer })`.
#[doc(inline)]
pub use emitter_macros::emit;

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
///
/// `listeners![]` names none: an emitter that runs no listener of this binary, such as an
/// emit-only process whose workers run elsewhere (a durable backend routes its emits by the
/// workers' subscriptions).
#[macro_export]
macro_rules! listeners {
    () => {
        [] as [&'static $crate::__private::ListenerRegistration; 0]
    };
    ($($listener:path),* $(,)?) => {
        [$(<$listener as $crate::Listener>::REGISTRATION),*]
    };
}
