//! One attempt of one delivery: the listener's arguments bound by its adapter, the future polled
//! once inline, in the adapter's reused allocation, then to its end under the listener's timeout,
//! in the attempt's span. Panics become failures.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tracing::Instrument;

use super::Core;
use crate::context::EventMeta;
use crate::error::Failure;
use crate::event::{Header, Payload};
use crate::listener::{
    run_now, AdapterSlot, BoxFuture, Delivery, DeliveryParts, Extras, Lazy, Started, Transaction,
};
use crate::policy::DeliveryPolicy;
use crate::table::ListenerEntry;
use crate::trace::delivery_span;

/// How the first poll of an attempt went.
pub(crate) enum Begun {
    /// The attempt finished at its first poll.
    Done(Result<(), Failure>),
    /// The attempt goes on.
    Pending(Pending),
}

/// An attempt that did not finish at its first poll.
pub(crate) struct Pending {
    future: BoxFuture,
    span: tracing::Span,
    /// When the attempt times out, and the listener's timeout.
    deadline: Option<(tokio::time::Instant, Duration)>,
}

impl Pending {
    /// Runs the attempt to its end, failing it at its deadline.
    pub(crate) async fn finish(self) -> Result<(), Failure> {
        let attempt = self.future.instrument(self.span);
        match self.deadline {
            Some((deadline, limit)) => tokio::time::timeout_at(deadline, attempt)
                .await
                .unwrap_or(Err(Failure::Timeout(limit))),
            None => attempt.await,
        }
    }
}

/// One attempt about to start: whose, by which policy, at which event.
pub(crate) struct Attempt<'a> {
    pub(crate) core: &'a Core,
    pub(crate) listener: &'a ListenerEntry,
    pub(crate) policy: &'a DeliveryPolicy,
    pub(crate) header: &'a Header,
    /// Which attempt, from 1.
    pub(crate) number: u32,
    /// The store transaction the listener runs in, when it takes one.
    pub(crate) transaction: Option<Transaction>,
}

impl Attempt<'_> {
    /// The attempt's metadata.
    pub(crate) fn meta(&self) -> EventMeta {
        EventMeta::of(self.header, self.listener.name, self.number)
    }

    /// The attempt's span, a child of the emit's trace context if it has one; none at all (and
    /// no work) when no subscriber records spans at its level.
    fn span(&self) -> tracing::Span {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return tracing::Span::none();
        }
        let header = self.header;
        delivery_span(
            header.trace.as_deref(),
            header.event_id,
            self.listener.name,
            header.emit_id,
            self.number,
        )
    }

    /// Runs the attempt of a listener whose adapter runs in place, borrowing `event`.
    pub(crate) fn run_now<E>(
        &self,
        call: for<'d> fn(Delivery<'d, E>) -> Result<(), Failure>,
        event: &E,
    ) -> Result<(), Failure> {
        let lazy;
        let extras = if self.listener.context {
            lazy = Lazy::default();
            Some(Extras {
                context: &self.core.context,
                lazy: &lazy,
            })
        } else {
            None
        };
        let delivery = Delivery {
            event,
            header: self.header,
            attempt: self.number,
            listener: self.listener.name,
            extras,
            transaction: None,
        };
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return run_now(call, delivery);
        }
        self.span().in_scope(|| run_now(call, delivery))
    }

    /// What a future-making adapter needs, taken before the event moves into it.
    pub(crate) fn prepare(&self) -> Prepared {
        Prepared {
            span: self.span(),
            parts: DeliveryParts {
                attempt: self.number,
                listener: self.listener.name,
                context: self
                    .listener
                    .context
                    .then(|| Arc::clone(&self.core.context)),
                transaction: self.transaction.clone(),
            },
            deadline: self
                .policy
                .attempt_timeout()
                .map(|limit| (tokio::time::Instant::now() + limit, limit)),
        }
    }

    /// Starts the attempt at a type-erased event.
    pub(crate) fn start_erased(
        &self,
        payload: &Payload,
        slot: &mut AdapterSlot,
        cx: &mut Context<'_>,
    ) -> Begun {
        self.prepare().start(slot, cx, |parts, slot, cx| {
            self.listener.call.call_erased(payload, parts, slot, cx)
        })
    }
}

/// An attempt ready to start: its span, the parts of its delivery, its deadline.
pub(crate) struct Prepared {
    span: tracing::Span,
    parts: DeliveryParts,
    deadline: Option<(tokio::time::Instant, Duration)>,
}

impl Prepared {
    /// Binds the arguments and polls the listener once, in `slot`, with `cx`: `call` calls the
    /// adapter with the parts of the delivery besides its event.
    pub(crate) fn start(
        self,
        slot: &mut AdapterSlot,
        cx: &mut Context<'_>,
        call: impl FnOnce(DeliveryParts, &mut AdapterSlot, &mut Context<'_>) -> Started,
    ) -> Begun {
        let Prepared {
            span,
            parts,
            deadline,
        } = self;
        match span.in_scope(|| call(parts, slot, cx)) {
            Started::Done(result) => Begun::Done(result),
            Started::Pending(future) => Begun::Pending(Pending {
                future,
                span,
                deadline,
            }),
        }
    }
}

/// Runs attempt `number` of `listener` at `payload` from its first poll to its end.
pub(crate) async fn run_attempt(
    core: &Core,
    listener: &ListenerEntry,
    policy: &DeliveryPolicy,
    payload: &Payload,
    number: u32,
    transaction: Option<Transaction>,
) -> Result<(), Failure> {
    let attempt = Attempt {
        core,
        listener,
        policy,
        header: &payload.header,
        number,
        transaction,
    };
    let mut slot = AdapterSlot::default();
    let begun = poll_fn(|cx| Poll::Ready(attempt.start_erased(payload, &mut slot, cx))).await;
    match begun {
        Begun::Done(result) => result,
        Begun::Pending(pending) => pending.finish().await,
    }
}
