//! What the macros check at compile time: the traits that event fields, listener parameters,
//! listener return types, `emit!`'s emitter and `emit!`'s values go through.
//!
//! You do not implement or call these traits: [`#[derive(Event)]`](derive@crate::Event),
//! [`#[listener]`](macro@crate::listener) and [`emit!`](crate::emit) do. They are public so that
//! their documentation states the rules, and so that a compile error names a trait you can look
//! up here. Each one carries the message of the mistake it catches.
//!
//! # How a listener parameter is bound
//!
//! 1. A parameter whose type is written `EventMeta`, `Emitter` or `State<T>` (or a reference to
//!    one), or names one of the listener's events, is context: [`FromDelivery`] or
//!    [`FromDeliveryRef`] provides it ([`OwnedEvent`] the whole event by value).
//! 2. A parameter of a type only a field can have (a primitive, `str`, a slice, an array, a
//!    tuple, `String`, std's collections, `Option`, `Box`, `Cow`) takes the field it is named
//!    after, through [`FromField`]: `email: &str` takes `email`. A field that does not exist is
//!    rustc's "no field" error, which lists the event's fields.
//! 3. Any other parameter takes the field it is named after if the event has one
//!    ([`Event::FIELDS`]), and is context recognised by its type otherwise:
//!    an alias or a renamed import of a context type works, and anything else is a compile error
//!    on the parameter that says what a listener can take. The store's transaction
//!    (`tx: &PgTx`, `tx: &SqliteTx`) is context of this kind: its `TRANSACTION`
//!    tells the emitter to run the listener in it, and `start()` checks that the backend can.
//!
//! # What `emit!` accepts
//!
//! Each value is checked as in a struct literal, through [`EmitValue`]; the emitter through
//! [`AsEmitter`]. Event fields are (de)serialized through [`EventField`].

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize, Serializer};

use crate::context::{EventMeta, State};
use crate::durable::TxKind;
use crate::emitter::Emitter;
use crate::error::{BoxError, Failure};
use crate::event::Event;
use crate::listener::{Delivery, StateKey};

/// A context parameter a listener of `E` can take by value: [`EventMeta`], [`Emitter`],
/// [`State<T>`](State), or the event itself when it is `Clone`.
#[diagnostic::on_unimplemented(
    message = "a listener cannot take `{Self}`: it is not a field of `{E}`, nor something a listener receives",
    label = "no field of `{E}` has this parameter's name, and `{Self}` is not `EventMeta`, `Emitter` or `State<T>`",
    note = "a listener takes fields of `{E}` by their names (`email: &str`), `EventMeta`, `Emitter` (cheap to clone, so no `Arc` around it), `State<T>` (a clone of the `T` given to `EmitterBuilder::state`) or `&{E}` (the whole event)"
)]
pub trait FromDelivery<E>: Sized {
    /// The shared state this parameter needs, checked when the emitter starts.
    #[doc(hidden)]
    const STATE: Option<StateKey> = None;

    /// Whether this parameter takes something besides the event and what it carries (shared
    /// state, the emitter, the metadata by reference): only then does a delivery make it.
    #[doc(hidden)]
    const CONTEXT: bool = true;

    /// The store transaction this parameter needs (`&PgTx`, `&SqliteTx`), checked when the
    /// emitter starts.
    #[doc(hidden)]
    const TRANSACTION: Option<TxKind> = None;

    #[doc(hidden)]
    fn from_delivery(delivery: &Delivery<'_, E>, event: &E) -> Result<Self, Failure>;
}

#[diagnostic::do_not_recommend]
impl<E> FromDelivery<E> for EventMeta {
    const CONTEXT: bool = false;

    fn from_delivery(delivery: &Delivery<'_, E>, _: &E) -> Result<Self, Failure> {
        Ok(delivery.meta_value())
    }
}

#[diagnostic::do_not_recommend]
impl<E> FromDelivery<E> for Emitter {
    fn from_delivery(delivery: &Delivery<'_, E>, _: &E) -> Result<Self, Failure> {
        Ok(delivery.emitter()?.clone())
    }
}

impl<E, T: StateValue> FromDelivery<E> for State<T> {
    const STATE: Option<StateKey> = Some(StateKey::of::<T>());

    fn from_delivery(delivery: &Delivery<'_, E>, _: &E) -> Result<Self, Failure> {
        shared_state::<E, T>(delivery).cloned()
    }
}

#[diagnostic::do_not_recommend]
impl<E: Event + Clone> FromDelivery<E> for E {
    const CONTEXT: bool = false;

    fn from_delivery(_: &Delivery<'_, E>, event: &E) -> Result<Self, Failure> {
        Ok(event.clone())
    }
}

/// A context parameter a listener of `E` can take by reference: `&EventMeta`, `&Emitter`,
/// `&State<T>` (the emitter's copy, not a clone) or `&E`, the whole event.
#[diagnostic::on_unimplemented(
    message = "a listener cannot take `&{Self}`: it is not a field of `{E}`, nor something a listener receives",
    label = "no field of `{E}` has this parameter's name, and `&{Self}` is not `&EventMeta`, `&Emitter`, `&State<T>` or `&{E}`",
    note = "if `{Self}` is shared state given to `EmitterBuilder::state`, take `State<{Self}>` or `&State<{Self}>`",
    note = "a listener takes fields of `{E}` by their names (`email: &str`), `EventMeta`, `Emitter`, `State<T>` or `&{E}` (the whole event)"
)]
pub trait FromDeliveryRef<E> {
    /// The shared state this parameter needs, checked when the emitter starts.
    #[doc(hidden)]
    const STATE: Option<StateKey> = None;

    /// Whether this parameter takes something besides the event and what it carries (shared
    /// state, the emitter, the metadata by reference): only then does a delivery make it.
    #[doc(hidden)]
    const CONTEXT: bool = true;

    /// The store transaction this parameter needs (`&PgTx`, `&SqliteTx`), checked when the
    /// emitter starts.
    #[doc(hidden)]
    const TRANSACTION: Option<TxKind> = None;

    #[doc(hidden)]
    fn from_delivery_ref<'a>(delivery: &Delivery<'a, E>, event: &'a E)
        -> Result<&'a Self, Failure>;
}

#[diagnostic::do_not_recommend]
impl<E> FromDeliveryRef<E> for EventMeta {
    fn from_delivery_ref<'a>(delivery: &Delivery<'a, E>, _: &'a E) -> Result<&'a Self, Failure> {
        delivery.meta()
    }
}

#[diagnostic::do_not_recommend]
impl<E> FromDeliveryRef<E> for Emitter {
    fn from_delivery_ref<'a>(delivery: &Delivery<'a, E>, _: &'a E) -> Result<&'a Self, Failure> {
        delivery.emitter()
    }
}

impl<E, T: 'static> FromDeliveryRef<E> for State<T> {
    const STATE: Option<StateKey> = Some(StateKey::of::<T>());

    fn from_delivery_ref<'a>(delivery: &Delivery<'a, E>, _: &'a E) -> Result<&'a Self, Failure> {
        shared_state::<E, T>(delivery)
    }
}

#[diagnostic::do_not_recommend]
impl<E: Event> FromDeliveryRef<E> for E {
    const CONTEXT: bool = false;

    fn from_delivery_ref<'a>(_: &Delivery<'a, E>, event: &'a E) -> Result<&'a Self, Failure> {
        Ok(event)
    }
}

/// The emitter's copy of a `State<T>`. Only `T: 'static` is asked for here: a listener that holds
/// state across an `.await` makes its future require `Send`, which rustc explains on the
/// listener, and the builder only accepts state that is `Send + Sync`.
fn shared_state<'a, E, T: 'static>(delivery: &Delivery<'a, E>) -> Result<&'a State<T>, Failure> {
    delivery.state_ref::<T>()
}

/// What `State<T>` by value needs: each delivery clones the builder's value.
#[diagnostic::on_unimplemented(
    message = "a listener that takes `State<{Self}>` gets a clone of the state, so `{Self}` must be `Clone`",
    label = "`{Self}` is not `Clone`",
    note = "share it as `Arc<{Self}>`, which is cheap to clone (`Arc<Mutex<{Self}>>` if listeners change it), or borrow it: `&State<{Self}>`"
)]
pub trait StateValue: Clone + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + 'static> StateValue for T {}

/// The whole event taken by value: a clone of the event every listener shares.
#[diagnostic::on_unimplemented(
    message = "the listener takes the whole `{Self}` by value, so `{Self}` must be `Clone`",
    label = "`{Self}` is not `Clone`",
    note = "take it by reference (`&{Self}`), or add `#[derive(Clone)]` to `{Self}`"
)]
pub trait OwnedEvent: Sized {
    #[doc(hidden)]
    fn clone_event(&self) -> Self;
}

#[diagnostic::do_not_recommend]
impl<E: Clone> OwnedEvent for E {
    fn clone_event(&self) -> Self {
        self.clone()
    }
}

/// A parameter that takes the field of `E` it is named after, of type `F`: by reference, by
/// value (a clone), `&str` for a `String`, `&[T]` for a `Vec<T>`, `Option<&T>` for an
/// `Option<T>`.
#[diagnostic::on_unimplemented(
    message = "a listener parameter of type `{Self}` cannot take the field of `{E}` it is named after, which is a `{F}`",
    label = "this field of `{E}` is a `{F}`",
    note = "take it as `&{F}` (borrowed) or `{F}` (cloned); a `String` can also be taken as `&str`, a `Vec<T>` as `&[T]`, an `Option<T>` as `Option<&T>`"
)]
pub trait FromField<'a, F: ?Sized, E>: Sized {
    #[doc(hidden)]
    fn from_field(field: &'a F) -> Self;
}

#[diagnostic::do_not_recommend]
impl<'a, F: ?Sized, E> FromField<'a, F, E> for &'a F {
    fn from_field(field: &'a F) -> Self {
        field
    }
}

impl<F: Clone, E> FromField<'_, F, E> for F {
    fn from_field(field: &F) -> Self {
        field.clone()
    }
}

#[diagnostic::do_not_recommend]
impl<'a, E> FromField<'a, String, E> for &'a str {
    fn from_field(field: &'a String) -> Self {
        field
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T, E> FromField<'a, Vec<T>, E> for &'a [T] {
    fn from_field(field: &'a Vec<T>) -> Self {
        field
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T, E> FromField<'a, Option<T>, E> for Option<&'a T> {
    fn from_field(field: &'a Option<T>) -> Self {
        field.as_ref()
    }
}

#[diagnostic::do_not_recommend]
impl<'a, E> FromField<'a, Option<String>, E> for Option<&'a str> {
    fn from_field(field: &'a Option<String>) -> Self {
        field.as_deref()
    }
}

/// What a listener may return: `()`, or `Result<(), E>` where `E` converts into
/// [`BoxError`] (`Box<dyn Error + Send + Sync>`), since the error may be handed
/// to the error hook on another thread.
#[diagnostic::on_unimplemented(
    message = "a listener must return `()` or `Result<(), E>` with an error type that converts into `Box<dyn Error + Send + Sync>`, not `{Self}`",
    label = "this return type is not supported",
    note = "`E` may be any `std::error::Error + Send + Sync + 'static`, a `String` or a `&'static str`; a boxed error must be `Box<dyn Error + Send + Sync>`, since the error hook may run on another thread"
)]
pub trait IntoListenerResult {
    #[doc(hidden)]
    fn into_listener_result(self) -> Result<(), Failure>;
}

#[diagnostic::do_not_recommend]
impl IntoListenerResult for () {
    fn into_listener_result(self) -> Result<(), Failure> {
        Ok(())
    }
}

#[diagnostic::do_not_recommend]
impl<E: Into<BoxError>> IntoListenerResult for Result<(), E> {
    fn into_listener_result(self) -> Result<(), Failure> {
        self.map_err(|error| Failure::Error(error.into()))
    }
}

/// The future of an `async fn` listener: it must be `Send`, since deliveries run on any of the
/// runtime's threads.
#[diagnostic::on_unimplemented(
    message = "the future of an `async fn` listener must be `Send`",
    label = "this listener's future is not `Send`"
)]
pub trait ListenerFuture: Future + Sized {
    #[doc(hidden)]
    fn into_listener_future(self) -> Self;
}

impl<F: Future + Send> ListenerFuture for F {
    fn into_listener_future(self) -> Self {
        self
    }
}

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

// The parameters of a listener that are neither visibly context, visibly the whole event nor
// visibly a field are bound by name: a field if the event has a field of that name (known from
// `Event::FIELDS` when the adapter is compiled), context otherwise. Both bindings are written out;
// `Select` picks the one that runs and gives the other one types that satisfy every trait (a stub
// with the field, `Dead<T>`), so that only the binding that runs can fail to compile.

/// Chooses between the field and the context binding of a parameter: `Select<true>` binds a
/// field.
#[doc(hidden)]
pub struct Select<const FIELD: bool>;

/// The type a parameter `T` has in the binding that does not run; no value of it exists.
#[doc(hidden)]
pub struct Dead<T: ?Sized>(Never, PhantomData<T>);

/// A value that cannot exist.
#[doc(hidden)]
pub enum Never {}

/// The types each binding of a parameter `T` of a listener of `E` is checked against, and the
/// binding that runs.
#[doc(hidden)]
pub trait Pick<E, Stub, T: ?Sized> {
    /// What the field binding reads the field from: the event, or a stub that has the field.
    type Field;
    /// What the context binding extracts: `T`, or `Dead<T>`.
    type Context: ?Sized;

    fn bind<'a, P>(
        event: &'a E,
        field: impl FnOnce(&'a Self::Field) -> P,
        context: impl FnOnce(&'a E) -> Result<P, Failure>,
    ) -> Result<P, Failure>
    where
        Self::Field: 'a;

    fn context(value: Self::Context) -> T
    where
        T: Sized,
        Self::Context: Sized;

    fn context_ref(value: &Self::Context) -> &T;
}

impl<E, Stub, T: ?Sized> Pick<E, Stub, T> for Select<true> {
    type Field = E;
    type Context = Dead<T>;

    fn bind<'a, P>(
        event: &'a E,
        field: impl FnOnce(&'a E) -> P,
        _: impl FnOnce(&'a E) -> Result<P, Failure>,
    ) -> Result<P, Failure>
    where
        E: 'a,
    {
        Ok(field(event))
    }

    fn context(dead: Dead<T>) -> T
    where
        T: Sized,
    {
        match dead.0 {}
    }

    fn context_ref(dead: &Dead<T>) -> &T {
        match dead.0 {}
    }
}

impl<E, Stub, T: ?Sized> Pick<E, Stub, T> for Select<false> {
    type Field = Stub;
    type Context = T;

    fn bind<'a, P>(
        event: &'a E,
        _: impl FnOnce(&'a Stub) -> P,
        context: impl FnOnce(&'a E) -> Result<P, Failure>,
    ) -> Result<P, Failure>
    where
        Stub: 'a,
    {
        context(event)
    }

    fn context(value: T) -> T
    where
        T: Sized,
    {
        value
    }

    fn context_ref(value: &T) -> &T {
        value
    }
}

/// What a binding that never runs returns, should it run.
fn dead_binding() -> Failure {
    Failure::Error(
        "a listener parameter was bound both as a field and as context (a bug in emitter)".into(),
    )
}

#[diagnostic::do_not_recommend]
impl<T, E> FromDelivery<E> for Dead<T> {
    const CONTEXT: bool = false;

    fn from_delivery(_: &Delivery<'_, E>, _: &E) -> Result<Self, Failure> {
        Err(dead_binding())
    }
}

#[diagnostic::do_not_recommend]
impl<T: ?Sized, E> FromDeliveryRef<E> for Dead<T> {
    const CONTEXT: bool = false;

    fn from_delivery_ref<'a>(_: &Delivery<'a, E>, _: &'a E) -> Result<&'a Self, Failure> {
        Err(dead_binding())
    }
}

#[diagnostic::do_not_recommend]
impl<T, E> FromField<'_, Dead<T>, E> for T {
    fn from_field(dead: &Dead<T>) -> Self {
        match dead.0 {}
    }
}

#[diagnostic::do_not_recommend]
impl<'a, T: ?Sized, E> FromField<'a, Dead<T>, E> for &'a T {
    fn from_field(dead: &'a Dead<T>) -> Self {
        match dead.0 {}
    }
}

/// Whether `fields` holds `name`: `Event::FIELDS` read when an adapter is compiled.
#[doc(hidden)]
pub const fn has_field(fields: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < fields.len() {
        if str_eq(fields[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether two event ids are equal, for the check that no event is listed twice.
#[doc(hidden)]
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The store transaction a listener's parameters need: the first one that needs one.
#[doc(hidden)]
pub const fn first_transaction(needs: &[Option<TxKind>]) -> Option<TxKind> {
    let mut i = 0;
    while i < needs.len() {
        if needs[i].is_some() {
            return needs[i];
        }
        i += 1;
    }
    None
}

/// How many of a listener's parameters need shared state.
#[doc(hidden)]
pub const fn count_states(states: &[Option<StateKey>]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < states.len() {
        if states[i].is_some() {
            count += 1;
        }
        i += 1;
    }
    count
}

/// The shared states a listener's parameters need, in parameter order.
#[doc(hidden)]
pub const fn collect_states<const N: usize>(states: &[Option<StateKey>]) -> [StateKey; N] {
    let mut out = [StateKey::of::<()>(); N];
    let mut n = 0;
    let mut i = 0;
    while i < states.len() {
        if let Some(key) = states[i] {
            out[n] = key;
            n += 1;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{count_states, has_field, str_eq};
    use crate::listener::StateKey;

    #[test]
    fn has_field_compares_whole_names() {
        assert!(has_field(&["email", "name"], "name"));
        assert!(!has_field(&["email", "name"], "nam"));
        assert!(!has_field(&["email"], "emails"));
        assert!(!has_field(&[], "email"));
    }

    #[test]
    fn str_eq_compares_bytes() {
        assert!(str_eq("user_created", "user_created"));
        assert!(!str_eq("user_created", "user_deleted"));
        assert!(!str_eq("user", "user_created"));
    }

    #[test]
    fn states_are_collected_in_order() {
        const ALL: &[Option<StateKey>] = &[
            None,
            Some(StateKey::of::<u8>()),
            None,
            Some(StateKey::of::<String>()),
        ];
        const KEYS: [StateKey; count_states(ALL)] = super::collect_states(ALL);
        let names: Vec<&str> = KEYS.iter().map(|key| (key.type_name)()).collect();
        assert_eq!(names, ["u8", "alloc::string::String"]);
    }
}
