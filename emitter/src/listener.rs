//! Listener registrations (what `#[listener]` submits) and the contract of the adapters it generates.

use std::any::{Any, TypeId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::context::{EventMeta, ListenerContext, State};
use crate::error::Failure;
use crate::event::{Emitted, Header, Payload};

/// A function annotated with [`#[listener]`](macro@crate::listener).
///
/// The attribute implements this trait for a hidden type that shares the function's name, so that
/// the function's path names its listener in [`listeners!`](crate::listeners).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a listener",
    label = "not a listener",
    note = "annotate the function with `#[emitter::listener(events = [...])]`"
)]
pub trait Listener {
    /// The listener's registration.
    const REGISTRATION: &'static ListenerRegistration;
}

/// A listener as the attribute registered it: its name, where it is defined, and one adapter per
/// event it listens to.
#[derive(Debug)]
pub struct ListenerRegistration {
    #[doc(hidden)]
    pub name: &'static str,
    #[doc(hidden)]
    pub file: &'static str,
    #[doc(hidden)]
    pub line: u32,
    #[doc(hidden)]
    pub handlers: &'static [Handler],
    #[doc(hidden)]
    pub policy: crate::policy::PolicyOverrides,
    #[doc(hidden)]
    pub aliases: &'static [&'static str],
}

impl ListenerRegistration {
    /// The listener's stable name: `module::path::function` unless `name = "..."` said otherwise.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The listener's old names (`aliases = [...]`): it claims the deliveries stored under them.
    pub fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }

    /// Where the listener is defined, as `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// A delivery that did not finish at its first poll.
#[doc(hidden)]
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'static>>;

/// What an adapter returns: the attempt finished at its first poll, or goes on as a future.
#[doc(hidden)]
pub enum Started {
    Done(Result<(), Failure>),
    Pending(BoxFuture),
}

/// Where an adapter keeps the allocation of its future between deliveries, so that a delivery
/// that finishes at its first poll allocates nothing.
#[doc(hidden)]
#[derive(Default)]
pub struct AdapterSlot(Option<Box<dyn Any + Send>>);

/// Polls `future` once, in place in `slot`: the adapters' entry point.
///
/// The future lives in a `Pin<Box<Option<F>>>` kept in the slot and reused by the next delivery
/// of the same adapter. If it is still pending after its first poll, the box leaves the slot to
/// become the returned future, and the next delivery allocates a new one.
#[doc(hidden)]
pub fn start<F>(slot: &mut AdapterSlot, cx: &mut Context<'_>, future: F) -> Started
where
    F: Future<Output = Result<(), Failure>> + Send + 'static,
{
    if !slot
        .0
        .as_ref()
        .is_some_and(|cell| cell.is::<Pin<Box<Option<F>>>>())
    {
        slot.0 = Some(Box::new(Box::pin(None::<F>)));
    }
    let Some(cell) = slot
        .0
        .as_mut()
        .and_then(|cell| cell.downcast_mut::<Pin<Box<Option<F>>>>())
    else {
        // Not reached: the slot was just filled with this type.
        return Started::Pending(Box::pin(future));
    };
    cell.as_mut().set(Some(future));
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
        cell.as_mut().as_pin_mut().map(|future| future.poll(cx))
    }));
    match polled {
        Ok(Some(Poll::Ready(outcome))) => {
            cell.as_mut().set(None);
            Started::Done(outcome)
        }
        Ok(Some(Poll::Pending)) => match slot
            .0
            .take()
            .map(|cell| cell.downcast::<Pin<Box<Option<F>>>>())
        {
            Some(Ok(cell)) => Started::Pending(Box::pin(InPlace(*cell))),
            // Not reached: the slot holds this type.
            Some(Err(_)) | None => Started::Done(Err(Failure::Error(
                "emitter lost track of a listener's future (a bug in emitter)".into(),
            ))),
        },
        Ok(None) => Started::Done(Ok(())),
        Err(payload) => {
            cell.as_mut().set(None);
            Started::Done(Err(Failure::from_panic(payload)))
        }
    }
}

/// A future polled where it was first pinned, in its slot's box; panics while polling become
/// [`Failure::Panic`].
struct InPlace<F>(Pin<Box<Option<F>>>);

impl<F: Future<Output = Result<(), Failure>>> Future for InPlace<F> {
    type Output = Result<(), Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let cell = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| {
            cell.as_mut().as_pin_mut().map(|future| future.poll(cx))
        })) {
            Ok(Some(poll)) => {
                if poll.is_ready() {
                    cell.as_mut().set(None);
                }
                poll
            }
            Ok(None) => Poll::Ready(Ok(())),
            Err(payload) => {
                cell.as_mut().set(None);
                Poll::Ready(Err(Failure::from_panic(payload)))
            }
        }
    }
}

/// The generated adapter of one (listener, event) pair, typed by its event: what the scheduler
/// calls for an event it holds as an `E`.
#[doc(hidden)]
pub enum Adapter<E> {
    /// An `async fn` whose body has no `.await` (and no macro that could hide one): its future
    /// finishes at its first poll, so the adapter runs it in place, borrowing the event.
    Now(for<'a> fn(Delivery<'a, E>) -> Result<(), Failure>),
    /// Any other listener: a future that owns its event, polled first in place in the
    /// adapter's slot.
    Future(fn(Held<E>, &mut AdapterSlot, &mut Context<'_>) -> Started),
}

/// An adapter whatever its event type: what the table holds, and how an event that is only known
/// as a [`Payload`] (a stored one, or one emitted with options) reaches the typed adapter.
#[doc(hidden)]
pub trait AnyAdapter: Send + Sync + 'static {
    /// The adapter as `Any`, for the scheduler to find the typed one.
    fn as_any(&self) -> &(dyn Any + Send + Sync);

    /// Calls the adapter with a type-erased event; the adapter checks its type.
    fn call_erased(
        &self,
        payload: &Payload,
        parts: DeliveryParts,
        slot: &mut AdapterSlot,
        cx: &mut Context<'_>,
    ) -> Started;
}

// Bounded by what it needs, not by `Event`: a listener on a type that is not an event is
// reported once, on the type, by the macro's own check.
impl<E: Send + Sync + 'static> AnyAdapter for Adapter<E> {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn call_erased(
        &self,
        payload: &Payload,
        parts: DeliveryParts,
        slot: &mut AdapterSlot,
        cx: &mut Context<'_>,
    ) -> Started {
        match self {
            Adapter::Now(call) => {
                let Some(event) = payload.event.downcast_ref::<E>() else {
                    return Started::Done(Err(wrong_type::<E>(payload.header.event_id)));
                };
                let lazy = Lazy::default();
                let delivery = Delivery {
                    event,
                    header: &payload.header,
                    attempt: parts.attempt,
                    listener: parts.listener,
                    extras: parts.context.as_deref().map(|context| Extras {
                        context,
                        lazy: &lazy,
                    }),
                    transaction: parts.transaction.as_deref(),
                };
                Started::Done(run_now(*call, delivery))
            }
            Adapter::Future(call) => call(
                Held::new(EventRef::Erased(Arc::clone(payload)), parts),
                slot,
                cx,
            ),
        }
    }
}

/// Runs a [`Adapter::Now`] adapter; a panic becomes a [`Failure`].
pub(crate) fn run_now<E>(
    call: for<'a> fn(Delivery<'a, E>) -> Result<(), Failure>,
    delivery: Delivery<'_, E>,
) -> Result<(), Failure> {
    std::panic::catch_unwind(AssertUnwindSafe(|| call(delivery)))
        .unwrap_or_else(|payload| Err(Failure::from_panic(payload)))
}

/// Polls the future of a listener whose body has no `.await` once, and returns its output.
#[doc(hidden)]
pub fn now<F: Future>(future: F) -> Result<F::Output, Failure> {
    let future = std::pin::pin!(future);
    match future.poll(&mut Context::from_waker(std::task::Waker::noop())) {
        Poll::Ready(output) => Ok(output),
        // Not reached: `#[listener]` only runs a body this way when it has no `.await`.
        Poll::Pending => Err(Failure::Error(
            "a listener whose body has no `.await` did not finish at its first poll (a bug in \
             emitter)"
                .into(),
        )),
    }
}

fn wrong_type<E>(event_id: &str) -> Failure {
    Failure::Error(
        format!(
            "event `{event_id}` was delivered with a payload of another type than `{}`",
            std::any::type_name::<E>()
        )
        .into(),
    )
}

impl std::fmt::Debug for dyn AnyAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Adapter")
    }
}

/// One (listener, event) pair: the generated adapter and what it needs.
#[doc(hidden)]
#[derive(Debug)]
pub struct Handler {
    pub event_type: fn() -> TypeId,
    pub event_type_name: fn() -> &'static str,
    pub event_id: &'static str,
    pub call: &'static dyn AnyAdapter,
    pub states: &'static [StateKey],
    /// Whether a parameter takes something from the emitter's context (shared state, the
    /// emitter): only then does a delivery carry a reference to it.
    pub context: bool,
    /// The store transaction a parameter takes (`&PgTx`, `&SqliteTx`): then the listener runs
    /// in a transaction on the store's database, acknowledged in it.
    pub transaction: Option<crate::durable::TxKind>,
}

/// A `State<T>` a listener takes, checked at start.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct StateKey {
    pub type_id: fn() -> TypeId,
    pub type_name: fn() -> &'static str,
}

impl StateKey {
    /// The key of `State<T>`.
    pub const fn of<T: 'static>() -> Self {
        StateKey {
            type_id: TypeId::of::<T>,
            type_name: std::any::type_name::<T>,
        }
    }
}

#[doc(hidden)]
pub struct ListenerRef(pub &'static ListenerRegistration);

inventory::collect!(ListenerRef);

pub(crate) fn registered() -> impl Iterator<Item = &'static ListenerRegistration> {
    inventory::iter::<ListenerRef>.into_iter().map(|r| r.0)
}

/// The event of a delivery that owns it: alone (the event's only delivery), shared by the
/// deliveries of one emit, or type-erased (an event loaded from a store, or emitted with
/// options).
#[doc(hidden)]
pub enum EventRef<E> {
    Owned(Emitted<E>),
    Shared(Arc<Emitted<E>>),
    Erased(Payload),
}

impl<E: 'static> EventRef<E> {
    pub(crate) fn header(&self) -> &Header {
        match self {
            EventRef::Owned(emitted) => &emitted.header,
            EventRef::Shared(emitted) => &emitted.header,
            EventRef::Erased(payload) => &payload.header,
        }
    }

    fn get(&self) -> Option<&E> {
        match self {
            EventRef::Owned(emitted) => Some(&emitted.event),
            EventRef::Shared(emitted) => Some(&emitted.event),
            EventRef::Erased(payload) => payload.event.downcast_ref::<E>(),
        }
    }
}

/// What a delivery carries besides its event, made by the delivery core.
#[doc(hidden)]
pub struct DeliveryParts {
    pub(crate) attempt: u32,
    pub(crate) listener: &'static str,
    /// The emitter's context, for adapters whose listener takes state or the emitter.
    pub(crate) context: Option<Arc<ListenerContext>>,
    /// The store's transaction, for adapters whose listener takes one.
    pub(crate) transaction: Option<Transaction>,
}

/// A store transaction's handle, as the delivery carries it (the parameter's type downcasts it).
pub(crate) type Transaction = Arc<dyn Any + Send + Sync>;

/// What a delivery makes on demand, for the parameters that ask: its metadata by reference, and
/// the emitter's handle.
#[derive(Default)]
pub(crate) struct Lazy {
    pub(crate) meta: OnceLock<EventMeta>,
    /// Type-erased like the context's emitter (this module is below the emitter's).
    pub(crate) emitter: OnceLock<Box<dyn Any + Send + Sync>>,
}

/// A delivery that owns its event: what a listener's future holds, and takes its
/// [`Delivery`] from.
#[doc(hidden)]
pub struct Held<E> {
    event: EventRef<E>,
    attempt: u32,
    listener: &'static str,
    context: Option<Arc<ListenerContext>>,
    transaction: Option<Transaction>,
    lazy: Lazy,
}

impl<E: Send + Sync + 'static> Held<E> {
    pub(crate) fn new(event: EventRef<E>, parts: DeliveryParts) -> Self {
        Held {
            event,
            attempt: parts.attempt,
            listener: parts.listener,
            context: parts.context,
            transaction: parts.transaction,
            lazy: Lazy::default(),
        }
    }

    /// The delivery, borrowing the event; an error when a type-erased event is not an `E`.
    pub fn delivery(&self) -> Result<Delivery<'_, E>, Failure> {
        let header = self.event.header();
        let event = self
            .event
            .get()
            .ok_or_else(|| wrong_type::<E>(header.event_id))?;
        Ok(Delivery {
            event,
            header,
            attempt: self.attempt,
            listener: self.listener,
            extras: self.context.as_deref().map(|context| Extras {
                context,
                lazy: &self.lazy,
            }),
            transaction: self.transaction.as_deref(),
        })
    }
}

/// Everything an adapter turns into the listener's arguments: the event, borrowed, and what
/// comes with it.
#[doc(hidden)]
pub struct Delivery<'a, E> {
    pub(crate) event: &'a E,
    pub(crate) header: &'a Header,
    pub(crate) attempt: u32,
    pub(crate) listener: &'static str,
    /// `None` when the listener takes nothing but the event, its fields and its metadata by
    /// value (most do): then a delivery makes nothing more.
    pub(crate) extras: Option<Extras<'a>>,
    /// The store's transaction, when the listener takes one.
    pub(crate) transaction: Option<&'a (dyn Any + Send + Sync)>,
}

/// What a delivery needs for listeners that take shared state, the emitter or their metadata by
/// reference.
#[derive(Clone, Copy)]
pub(crate) struct Extras<'a> {
    pub(crate) context: &'a ListenerContext,
    pub(crate) lazy: &'a Lazy,
}

impl<E> Clone for Delivery<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Delivery<'_, E> {}

impl<'a, E> Delivery<'a, E> {
    pub fn event(&self) -> &'a E {
        self.event
    }

    /// The delivery's metadata.
    pub fn meta_value(&self) -> EventMeta {
        EventMeta::of(self.header, self.listener, self.attempt)
    }

    /// The delivery's metadata, made the first time it is asked for, for `&EventMeta`
    /// parameters.
    pub fn meta(&self) -> Result<&'a EventMeta, Failure> {
        Ok(self.extras()?.lazy.meta.get_or_init(|| self.meta_value()))
    }

    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Result<State<T>, Failure> {
        self.state_ref::<T>().cloned()
    }

    /// The shared state as the builder stored it, for `&State<T>` parameters: no clone.
    pub fn state_ref<T: 'static>(&self) -> Result<&'a State<T>, Failure> {
        self.context()?.state::<T>().ok_or_else(|| {
            Failure::Error(
                format!(
                    "state `{}` is missing (it was checked at start, so this is a bug in emitter)",
                    std::any::type_name::<T>()
                )
                .into(),
            )
        })
    }

    /// The store transaction of type `T` the listener runs in.
    pub fn transaction<T: 'static>(&self) -> Result<&'a T, Failure> {
        self.transaction
            .and_then(|transaction| transaction.downcast_ref::<T>())
            .ok_or_else(|| {
                Failure::Error(
                    format!(
                        "this delivery runs in no `{}`: the listener takes one, but its backend \
                         opened none (`start()` checks this, so this is a bug in emitter)",
                        std::any::type_name::<T>()
                    )
                    .into(),
                )
            })
    }

    /// The emitter's context, which the adapter said it needs.
    pub(crate) fn context(&self) -> Result<&'a ListenerContext, Failure> {
        Ok(self.extras()?.context)
    }

    /// What the adapter said it needs besides the event.
    pub(crate) fn extras(&self) -> Result<Extras<'a>, Failure> {
        self.extras.ok_or_else(|| {
            Failure::Error(
                "a listener's adapter took context it did not declare (a bug in emitter)".into(),
            )
        })
    }
}

/// Runs a synchronous listener on tokio's blocking pool; a panic there becomes a [`Failure`].
#[doc(hidden)]
pub async fn run_blocking<F>(call: F) -> Result<(), Failure>
where
    F: FnOnce() -> Result<(), Failure> + Send + 'static,
{
    match tokio::task::spawn_blocking(call).await {
        Ok(outcome) => outcome,
        Err(error) => match error.try_into_panic() {
            Ok(payload) => Err(Failure::from_panic(payload)),
            Err(error) => Err(Failure::Error(Box::new(error))),
        },
    }
}
