//! The writer: encodes what the emitter hands over and stores it in batches, retrying a store
//! that refuses until it takes them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use super::outage::Outage;
use super::{aborted, Mode, MAX_WAIT};
use crate::delivery::Dispatcher;
use crate::durable::routing::Routes;
use crate::durable::{Inserted, NewEmit, Store, StoredEvent};
use crate::envelope::Envelope;
use crate::error::{BackendError, BackendErrorKind, Failure};
use crate::report::UnfinishedDelivery;
use crate::table::EventTable;

/// An emit on its way to the store: encoded, the envelope that waits for it to be stored, and
/// when its time to be stored began (the `emit_async` call, or the hand-over of an `emit`).
pub(super) struct Pending {
    pub(super) emit: NewEmit,
    pub(super) envelope: Envelope,
    pub(super) since: std::time::Instant,
}

impl Pending {
    pub(super) fn new(emit: NewEmit, envelope: Envelope) -> Self {
        let since = envelope.since().unwrap_or_else(std::time::Instant::now);
        Self {
            emit,
            envelope,
            since,
        }
    }
}

/// How many emits one insert stores at most.
const BATCH: usize = 512;

/// Encodes an envelope for the store, refusing it if it is larger than `max_payload`.
pub(super) fn encode(
    table: &EventTable,
    envelope: &Envelope,
    max_payload: usize,
) -> Result<NewEmit, BackendError> {
    let entry = table
        .event(envelope.event)
        .ok_or_else(|| BackendError::new("the event is not in the emitter's table"))?;
    let codec = entry.codec.ok_or_else(|| {
        BackendError::new(format!(
            "event `{}` is not registered: it cannot be stored",
            entry.id
        ))
    })?;
    let payload = match (codec.encode)(&envelope.payload.event) {
        Some(Ok(bytes)) => bytes,
        Some(Err(error)) => {
            return Err(BackendError::with_source(
                format!("event `{}` could not be encoded as JSON", entry.id),
                error,
            ))
        }
        None => {
            return Err(BackendError::new(format!(
                "the emitted value is not a `{}`",
                entry.type_name
            )))
        }
    };
    if payload.len() > max_payload {
        return Err(BackendError::payload_too_large(payload.len(), max_payload));
    }
    let emit_id = envelope.emit_id();
    let trace = envelope
        .payload
        .header
        .trace
        .as_deref()
        .and_then(|trace| trace.to_store(emit_id, entry.listeners.len()));
    Ok(NewEmit::new(
        StoredEvent::new(entry.id, emit_id, envelope.emitted_at(), payload)
            .with_version(codec.version)
            .with_trace(trace),
        entry
            .listeners
            .iter()
            .map(|listener| listener.name)
            .collect(),
        envelope.run_at().unwrap_or_else(SystemTime::now),
        envelope.idempotency_key().map(str::to_owned),
    ))
}

/// Adds to each emit the listeners the store's subscriptions route its event to (reading them
/// again when the copy is old), then stores the emits.
async fn insert_routed<S: Store>(
    store: &S,
    routes: &Routes,
    emits: &mut [NewEmit],
) -> Result<Inserted, BackendError> {
    routes.refresh(store).await?;
    for emit in emits.iter_mut() {
        routes.route(emit);
    }
    store.insert(emits).await
}

/// Emits on their way to the store, taken from the channel together: the encoded emits (what
/// the store is handed) and, at the same index, what waits for each to be stored.
#[derive(Default)]
struct Batch {
    emits: Vec<NewEmit>,
    waiting: Vec<Waiting>,
}

/// An emit's envelope, its deadline, whether it was handed to the store, and whether a try to
/// store it may have stored it.
struct Waiting {
    envelope: Envelope,
    deadline: Instant,
    sent: bool,
    in_doubt: bool,
}

impl Batch {
    fn len(&self) -> usize {
        self.emits.len()
    }

    fn push(&mut self, pending: Pending, timeout: Duration) {
        self.emits.push(pending.emit);
        self.waiting.push(Waiting {
            envelope: pending.envelope,
            deadline: Instant::from_std(pending.since) + timeout,
            sent: false,
            in_doubt: false,
        });
    }

    /// The earliest deadline of the batch.
    fn deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|waiting| waiting.deadline).min()
    }

    /// Marks every emit of the batch as handed to the store.
    fn sent(&mut self) {
        for waiting in &mut self.waiting {
            waiting.sent = true;
        }
    }

    /// Marks every emit of the batch as possibly stored.
    fn doubt(&mut self) {
        for waiting in &mut self.waiting {
            waiting.in_doubt = true;
        }
    }

    /// Takes the emits whose deadline has passed out of the batch.
    fn expired(&mut self, now: Instant) -> Vec<(NewEmit, Waiting)> {
        let (live, expired): (Vec<_>, Vec<_>) = std::mem::take(&mut self.emits)
            .into_iter()
            .zip(std::mem::take(&mut self.waiting))
            .partition(|(_, waiting)| waiting.deadline > now);
        (self.emits, self.waiting) = live.into_iter().unzip();
        expired
    }

    fn drain(&mut self) -> impl Iterator<Item = (NewEmit, Waiting)> + '_ {
        self.emits.drain(..).zip(self.waiting.drain(..))
    }
}

/// The error of an emit that could not be stored within `timeout`; `last` is the store's last
/// word, if it had one.
fn not_stored(waiting: &Waiting, timeout: Duration, last: Option<&BackendError>) -> BackendError {
    let envelope = &waiting.envelope;
    let emit_id = envelope.emit_id();
    let key = envelope.idempotency_key();
    let why = match last {
        Some(error) => format!("the store failed: {error}"),
        None => "the store did not answer".to_owned(),
    };
    let kind = last.map_or(BackendErrorKind::TimedOut, BackendError::kind);
    let error = if !waiting.sent {
        // It waited for room in the emitter, or behind emits the store did not take.
        BackendError::of(
            BackendErrorKind::TimedOut,
            format!(
                "event `{}` (emit {emit_id}) was not stored: its emit timeout ({timeout:?}) \
                 passed before it could be handed to the store; emit it again",
                envelope.event_id()
            ),
        )
    } else if waiting.in_doubt {
        let retry = match key {
            Some(key) => format!(
                "emit it again with the same idempotency key ({key:?}): the store keeps one of \
                 the two"
            ),
            None => "it had no idempotency key: emitting it again may deliver it twice".to_owned(),
        };
        BackendError::of(
            kind,
            format!(
                "event `{}` (emit {emit_id}) was not confirmed stored within {timeout:?} (the \
                 emit timeout): a write was sent and no answer came, so it may or may not be \
                 stored; {retry}. {why}",
                envelope.event_id()
            ),
        )
        .in_doubt()
    } else {
        BackendError::of(
            kind,
            format!(
                "event `{}` (emit {emit_id}) was not stored: the store could not be reached \
                 within {timeout:?} (the emit timeout); emit it again. {why}",
                envelope.event_id()
            ),
        )
    };
    error.about_emit(emit_id, key)
}

/// Tells of an `emit` the writer gave up on, whose caller has long returned: each of its
/// deliveries failed for good without running (attempt 0), which the listener's failure count
/// and the error hook hear, and the log.
fn given_up(dispatcher: &Dispatcher, envelope: &Envelope, error: &BackendError) {
    let core = dispatcher.core();
    let Some(entry) = core.table.event(envelope.event) else {
        return;
    };
    for listener in &entry.listeners {
        core.outcomes.failed(
            listener,
            entry.id,
            envelope.emit_id(),
            0,
            Failure::Undeliverable(error.to_string()),
        );
    }
}

/// Stores emits in batches until told to stop. Each stored emit is let go (the emitter counted
/// it as pending until then, and `emit_async` waits for it); the worker is woken. An emit not
/// stored within `timeout` is let go with an error (see [`not_stored`]).
///
/// On [`Mode::Drain`] it stores what is left and stops; on [`Mode::Abort`] it stops at once and
/// names what it had not stored.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write<S: Store>(
    store: Arc<S>,
    routes: Arc<Routes>,
    dispatcher: Dispatcher,
    mut emits: mpsc::UnboundedReceiver<Pending>,
    timeout: Duration,
    wake: Arc<Notify>,
    progress: Arc<Notify>,
    mut mode: watch::Receiver<Mode>,
    report: oneshot::Sender<Vec<UnfinishedDelivery>>,
) {
    let mut batch = Batch::default();
    let mut received: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut outage = Outage::default();
    // Whether the emits in `batch` were being inserted when the abort came: whether those were
    // stored is unknown.
    let mut unknown = false;
    'batches: loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Abort => break,
            Mode::Drain => {
                while received.len() < BATCH {
                    match emits.try_recv() {
                        Ok(pending) => received.push(pending),
                        Err(_) => break,
                    }
                }
                if received.is_empty() {
                    break;
                }
            }
            Mode::Run => {
                tokio::select! {
                    count = emits.recv_many(&mut received, BATCH) => if count == 0 {
                        break;
                    },
                    _ = mode.changed() => continue,
                }
            }
        }
        for pending in received.drain(..) {
            batch.push(pending, timeout);
        }
        let mut wait = Duration::from_millis(10);
        let mut last_error = None;
        loop {
            let expired = batch.expired(Instant::now());
            if !expired.is_empty() {
                for (_, waiting) in expired {
                    let error = not_stored(&waiting, timeout, last_error.as_ref());
                    if !waiting.envelope.is_awaited() {
                        given_up(&dispatcher, &waiting.envelope, &error);
                    }
                    dispatcher.unqueue(&waiting.envelope);
                    waiting.envelope.stored(Err(error));
                }
                progress.notify_waiters();
            }
            let Some(deadline) = batch.deadline() else {
                continue 'batches;
            };
            batch.sent();
            let inserted = tokio::select! {
                biased;
                () = aborted(&mut mode) => {
                    unknown = true;
                    break 'batches;
                }
                inserted = tokio::time::timeout_at(
                    deadline,
                    insert_routed(&*store, &routes, &mut batch.emits),
                ) => inserted,
            };
            let error = match inserted {
                Ok(Ok(inserted)) => {
                    outage.over("storing emits");
                    if inserted.duplicates > 0 {
                        tracing::debug!(
                            duplicates = inserted.duplicates,
                            "emits with a known idempotency key were dropped"
                        );
                    }
                    break;
                }
                // The insert was abandoned at the first deadline of the batch, unanswered.
                Err(_) => {
                    batch.doubt();
                    last_error = None;
                    continue;
                }
                Ok(Err(error)) => error,
            };
            if error.is_in_doubt() {
                batch.doubt();
            }
            outage.failed(
                "cannot store emitted events (they are kept in memory and retried until their \
                 emit timeout)",
                &error,
            );
            last_error = Some(error);
            tokio::select! {
                biased;
                () = aborted(&mut mode) => break 'batches,
                () = tokio::time::sleep_until(deadline.min(Instant::now() + wait)) => {}
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
        for (_, waiting) in batch.drain() {
            dispatcher.unqueue(&waiting.envelope);
            waiting.envelope.stored(Ok(()));
        }
        wake.notify_one();
        progress.notify_waiters();
    }
    // Aborted: what was not stored is lost with this process; name it.
    let unknown = if unknown { batch.len() } else { 0 };
    for pending in received.drain(..) {
        batch.push(pending, timeout);
    }
    while let Ok(pending) = emits.try_recv() {
        batch.push(pending, timeout);
    }
    let mut unstored = Vec::new();
    for (number, (emit, waiting)) in batch.drain().enumerate() {
        let envelope = waiting.envelope;
        for listener in &emit.listeners {
            unstored.push(UnfinishedDelivery::queued(
                envelope.event_id(),
                listener,
                envelope.emit_id(),
            ));
        }
        dispatcher.unqueue(&envelope);
        let in_doubt = number < unknown || waiting.in_doubt;
        let error = if in_doubt {
            BackendError::new(
                "the emitter shut down at its deadline while the event was being stored: it may \
                 or may not be stored",
            )
            .in_doubt()
        } else {
            BackendError::new(
                "the emitter shut down at its deadline before the event could be stored",
            )
        };
        let error = error.about_emit(envelope.emit_id(), envelope.idempotency_key());
        envelope.stored(Err(error));
    }
    let _ = report.send(unstored);
}
