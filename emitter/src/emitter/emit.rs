//! Emitting: `emit` and its variants, which check the phase, route the event, count it in and
//! hand it to the backend.

use std::any::TypeId;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::{Emitter, NoListenersPolicy};
use crate::delivery::Queued;
use crate::emit_id::EmitId;
use crate::envelope::{EmitOptions, Envelope, Options};
use crate::error::{BackendError, EmitError, RejectedEvent};
use crate::event::{Emitted, Event, Header, Payload};
use crate::lifecycle::{EventToken, Phase, Refusal};
use crate::stats::export;
use crate::testing::Capture;
use crate::trace::Trace;

/// Where an accepted event goes: the entry of its type and how many listeners it has.
struct Route {
    event: usize,
    listeners: usize,
}

impl Emitter {
    /// Emits an event: queues it for every listener of its type and returns at once.
    ///
    /// Never blocks, and works from any thread, inside or outside a tokio runtime. When the
    /// emitter is full (see [`EmitterBuilder::capacity`](crate::EmitterBuilder::capacity)) the
    /// event is refused with [`EmitError::Full`], which hands it back;
    /// [`emit_async`](Self::emit_async) waits for room instead. The [`emit!`](crate::emit!)
    /// macro builds the event and calls this.
    ///
    /// On a durable backend the event is stored in the background a moment later (in a batch
    /// with others); [`emit_async`](Self::emit_async) returns only once it is stored.
    pub fn emit<E: Event>(&self, event: E) -> Result<EmitId, EmitError> {
        self.emit_inner(event, None)
    }

    /// Emits an event with options: a delay, an idempotency key.
    ///
    /// ```
    /// # use emitter::{EmitOptions, Emitter, Event};
    /// # use std::time::Duration;
    /// # #[derive(Event)] pub struct OrderPaid { pub order: u64 }
    /// # async fn run(emitter: Emitter) -> Result<(), emitter::EmitError> {
    /// emitter.emit_with(
    ///     OrderPaid { order: 42 },
    ///     EmitOptions::new()
    ///         .after(Duration::from_secs(60))
    ///         .idempotency_key("order-42-paid"),
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn emit_with<E: Event>(&self, event: E, options: EmitOptions) -> Result<EmitId, EmitError> {
        self.emit_inner(event, options.into_envelope_options())
    }

    /// Emits an event to be delivered `delay` from now.
    pub fn emit_after<E: Event>(&self, delay: Duration, event: E) -> Result<EmitId, EmitError> {
        self.emit_with(event, EmitOptions::new().after(delay))
    }

    /// Emits an event to be delivered at `when` (at once if `when` has passed).
    pub fn emit_at<E: Event>(&self, when: SystemTime, event: E) -> Result<EmitId, EmitError> {
        self.emit_with(event, EmitOptions::new().at(when))
    }

    fn emit_inner<E: Event>(
        &self,
        event: E,
        options: Option<Box<Options>>,
    ) -> Result<EmitId, EmitError> {
        let Some(route) = self.route::<E>()? else {
            return self.accept_without_listeners::<E>();
        };
        match self.shared.core.lifecycle.admit() {
            Ok(()) => self.enqueue(event, route, options),
            Err(Refusal::Full) => Err(self.reject(event)),
            Err(Refusal::Closed) => Err(self.closed()),
        }
    }

    /// Emits an event, waiting for room when the emitter is full, and, on a durable backend,
    /// until the event is stored: once it returns `Ok`, a crash of this process loses nothing.
    /// Otherwise like [`emit`](Self::emit).
    ///
    /// A durable backend waits for its store at most
    /// [`DurableConfig::emit_timeout`](crate::durable::DurableConfig::emit_timeout) (10 s by
    /// default) from the call, then fails with [`EmitError::Backend`]. Its error says whether the
    /// event is known not to be stored (emit it again) or may have been
    /// ([`BackendError::is_in_doubt`]: emit it again with the same idempotency key, which the
    /// error carries with the emit id, and the store keeps one).
    ///
    /// Through a listener's `Emitter` parameter it does not wait for room: a listener waiting
    /// for room holds its own event, and listeners waiting together could hold all the room
    /// there is. A full emitter refuses the event with [`EmitError::Full`] instead; return the
    /// error from the listener to retry it after the listener's backoff.
    pub async fn emit_async<E: Event>(&self, event: E) -> Result<EmitId, EmitError> {
        self.emit_async_with(event, EmitOptions::new()).await
    }

    /// [`emit_async`](Self::emit_async) with options, as [`emit_with`](Self::emit_with) takes.
    pub async fn emit_async_with<E: Event>(
        &self,
        event: E,
        options: EmitOptions,
    ) -> Result<EmitId, EmitError> {
        let Some(route) = self.route::<E>()? else {
            return self.accept_without_listeners::<E>();
        };
        let mut options = options.into_envelope_options();
        let stored = if self.shared.backend.is_durable_dyn() {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let options = options.get_or_insert_with(Box::default);
            options.stored = Some(sender);
            options.since = Some(std::time::Instant::now());
            Some(receiver)
        } else {
            None
        };
        let lifecycle = &self.shared.core.lifecycle;
        // Tried once before waiting: registering as a waiter for room costs a lock.
        let admitted = match lifecycle.admit() {
            Err(Refusal::Full) if !self.from_listener => loop {
                let room = lifecycle.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                match lifecycle.admit() {
                    Err(Refusal::Full) => room.await,
                    admitted => break admitted,
                }
            },
            admitted => admitted,
        };
        let emit_id = match admitted {
            Ok(()) => self.enqueue(event, route, options)?,
            Err(Refusal::Closed) => return Err(self.closed()),
            Err(Refusal::Full) => return Err(self.reject(event)),
        };
        match stored {
            None => Ok(emit_id),
            Some(receiver) => match receiver.await {
                Ok(Ok(())) => Ok(emit_id),
                Ok(Err(source)) => Err(EmitError::Backend {
                    event_id: E::ID,
                    source,
                }),
                Err(_) => Err(EmitError::Backend {
                    event_id: E::ID,
                    source: BackendError::new(
                        "the backend dropped the event before storing it (it was shut down)",
                    ),
                }),
            },
        }
    }

    /// Checks the phase and finds the event's listeners; `None` when it has none.
    fn route<E: Event>(&self) -> Result<Option<Route>, EmitError> {
        match self.shared.core.lifecycle.phase() {
            Phase::Running => {}
            Phase::Draining if self.from_listener => {}
            Phase::Built | Phase::Starting => return Err(EmitError::NotStarted),
            Phase::Draining | Phase::Closed => return Err(EmitError::ShutDown),
            Phase::Stopped => return Err(EmitError::Stopped),
        }
        // A durable backend routes by the store's subscriptions too: an event without a
        // listener in this process may have some in a worker elsewhere (asked only then).
        let shared = &self.shared;
        Ok(shared
            .core
            .table
            .index_of(TypeId::of::<E>())
            .filter(|&(_, listeners)| listeners > 0 || shared.backend.is_durable_dyn())
            .map(|(event, listeners)| Route { event, listeners }))
    }

    /// Why an event was refused when the emitter no longer counts events in.
    fn closed(&self) -> EmitError {
        match self.shared.core.lifecycle.phase() {
            Phase::Stopped => EmitError::Stopped,
            _ => EmitError::ShutDown,
        }
    }

    fn accept_without_listeners<E: Event>(&self) -> Result<EmitId, EmitError> {
        let emit_id = self.shared.core.ids.next();
        match self.shared.no_listeners {
            NoListenersPolicy::Ignore => {}
            NoListenersPolicy::Warn => {
                tracing::warn!(event_id = E::ID, %emit_id, "no listener listens to this event; it was dropped");
            }
            NoListenersPolicy::Error => return Err(EmitError::NoListeners { event_id: E::ID }),
        }
        self.count_emitted(E::ID);
        Ok(emit_id)
    }

    fn reject<E: Event>(&self, event: E) -> EmitError {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        export::counter("emitter_rejected_total", E::ID, None);
        EmitError::Full(RejectedEvent::new(E::ID, event))
    }

    fn count_emitted(&self, event_id: &'static str) {
        self.shared.emitted.fetch_add(1, Ordering::Relaxed);
        export::counter("emitter_emitted_total", event_id, None);
    }

    /// Hands an event [`admit`](crate::lifecycle::Lifecycle::admit) counted in to the
    /// scheduler (a plain emit on the in-memory backend) or to the backend, which finish it.
    fn enqueue<E: Event>(
        &self,
        event: E,
        route: Route,
        options: Option<Box<Options>>,
    ) -> Result<EmitId, EmitError> {
        let shared = &*self.shared;
        let core = &*shared.core;
        let emit_id = core.ids.next();
        let recorded = core
            .outcomes
            .capture
            .as_ref()
            .map(|capture| (capture, Capture::json(&event)));
        let trace = if core.propagate_span {
            Trace::current()
        } else {
            None
        };
        let emitted_at = SystemTime::now();
        let listeners = route.listeners as u64;
        match (options, shared.direct.get()) {
            (None, Some(dispatcher)) => {
                // The in-memory backend: straight to the scheduler, by value.
                let queued = Queued {
                    event,
                    emit: emit_id.count(),
                    emitted_at,
                    trace,
                };
                if dispatcher.push(route.event, listeners, queued).is_err() {
                    core.lifecycle.finish();
                    return Err(self.closed());
                }
                // Counted by the inbox.
                core.lifecycle.queue_in_inbox(listeners);
                export::counter("emitter_emitted_total", E::ID, None);
            }
            (options, _) => {
                let payload: Payload = Arc::new(Emitted {
                    header: Header {
                        event_id: E::ID,
                        emit_id,
                        emitted_at,
                        trace,
                        token: OnceLock::from(EventToken::adopt(&core.lifecycle)),
                    },
                    event,
                });
                let envelope = Envelope {
                    payload,
                    event: route.event,
                    options,
                };
                core.lifecycle.queue(listeners);
                if let Err(source) = shared.backend.enqueue_dyn(envelope) {
                    core.lifecycle.unqueue(listeners);
                    return Err(match source.too_large() {
                        Some((size, limit)) => EmitError::PayloadTooLarge {
                            event_id: E::ID,
                            size,
                            limit,
                        },
                        None => EmitError::Backend {
                            event_id: E::ID,
                            source,
                        },
                    });
                }
                self.count_emitted(E::ID);
            }
        }
        if let Some((capture, json)) = recorded {
            capture.record_emit(E::ID, emit_id, json);
        }
        Ok(emit_id)
    }
}
