//! Listener registrations (what `#[listener]` submits) and the contract of the adapters it generates.

use std::any::{Any, TypeId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::context::{EventMeta, ListenerContext, State};
use crate::error::Failure;
use crate::event::{Event, Payload};

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
}

impl ListenerRegistration {
    /// The listener's stable name: `module::path::function` unless `name = "..."` said otherwise.
    pub fn name(&self) -> &'static str {
        self.name
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

/// The generated adapter of one (listener, event) pair.
#[doc(hidden)]
pub type Adapter = fn(Delivery, &mut AdapterSlot, &mut Context<'_>) -> Started;

/// One (listener, event) pair: the generated adapter and what it needs.
#[doc(hidden)]
#[derive(Debug)]
pub struct Handler {
    pub event_type: fn() -> TypeId,
    pub event_type_name: fn() -> &'static str,
    pub event_id: &'static str,
    pub call: Adapter,
    pub states: &'static [StateKey],
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

/// Everything an adapter turns into the listener's arguments.
#[doc(hidden)]
pub struct Delivery {
    pub(crate) payload: Payload,
    pub(crate) meta: EventMeta,
    /// Shared by every delivery of one emitter.
    pub(crate) context: Arc<ListenerContext>,
    /// The emitter's handle, made the first time a parameter asks for it (see
    /// `Delivery::emitter`): most listeners never do. Type-erased like the context's.
    pub(crate) emitter: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

impl Delivery {
    pub fn event<E: Event>(&self) -> Result<&E, Failure> {
        self.payload.event.downcast_ref::<E>().ok_or_else(|| {
            Failure::Error(
                format!(
                    "event `{}` was delivered with a payload of another type than `{}`",
                    self.meta.event_id,
                    std::any::type_name::<E>()
                )
                .into(),
            )
        })
    }

    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }

    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Result<State<T>, Failure> {
        self.state_ref::<T>().cloned()
    }

    /// The shared state as the builder stored it, for `&State<T>` parameters: no clone.
    pub fn state_ref<T: 'static>(&self) -> Result<&State<T>, Failure> {
        self.context.state::<T>().ok_or_else(|| {
            Failure::Error(
                format!(
                    "state `{}` is missing (it was checked at start, so this is a bug in emitter)",
                    std::any::type_name::<T>()
                )
                .into(),
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
