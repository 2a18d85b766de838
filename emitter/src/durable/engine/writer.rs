//! The writer: encodes what the emitter hands over and stores it in batches, retrying a store
//! that refuses until it takes them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::outage::Outage;
use super::{aborted, Mode, MAX_WAIT};
use crate::delivery::Dispatcher;
use crate::durable::{NewEmit, Store, StoredEvent};
use crate::envelope::Envelope;
use crate::error::BackendError;
use crate::report::UnfinishedDelivery;
use crate::table::EventTable;

/// An emit on its way to the store: encoded, and the envelope that waits for it to be stored.
pub(super) type Pending = (NewEmit, Envelope);

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
        StoredEvent::new(entry.id, emit_id, envelope.emitted_at(), payload).with_trace(trace),
        entry
            .listeners
            .iter()
            .map(|listener| listener.name)
            .collect(),
        envelope.run_at().unwrap_or_else(SystemTime::now),
        envelope.idempotency_key().map(str::to_owned),
    ))
}

/// Stores emits in batches until told to stop. Each stored emit is let go (the emitter counted
/// it as pending until then, and `emit_async` waits for it); the worker is woken.
///
/// On [`Mode::Drain`] it stores what is left and stops; on [`Mode::Abort`] it stops at once and
/// names what it had not stored.
pub(super) async fn write<S: Store>(
    store: Arc<S>,
    dispatcher: Dispatcher,
    mut emits: mpsc::UnboundedReceiver<Pending>,
    wake: Arc<Notify>,
    progress: Arc<Notify>,
    mut mode: watch::Receiver<Mode>,
    report: oneshot::Sender<Vec<UnfinishedDelivery>>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut outage = Outage::default();
    // How many emits at the head of `batch` were being inserted when the abort came: whether
    // those were stored is unknown.
    let mut unknown = 0;
    'batches: loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Abort => break,
            Mode::Drain => {
                while batch.len() < BATCH {
                    match emits.try_recv() {
                        Ok(pending) => batch.push(pending),
                        Err(_) => break,
                    }
                }
                if batch.is_empty() {
                    break;
                }
            }
            Mode::Run => {
                tokio::select! {
                    received = emits.recv_many(&mut batch, BATCH) => if received == 0 {
                        break;
                    },
                    _ = mode.changed() => continue,
                }
            }
        }
        let (new, envelopes): (Vec<NewEmit>, Vec<Envelope>) = batch.drain(..).unzip();
        let mut wait = Duration::from_millis(10);
        loop {
            let inserted = tokio::select! {
                biased;
                () = aborted(&mut mode) => {
                    unknown = new.len();
                    batch.extend(new.into_iter().zip(envelopes));
                    break 'batches;
                }
                inserted = store.insert(&new) => inserted,
            };
            match inserted {
                Ok(inserted) => {
                    outage.over("storing emits");
                    if inserted.duplicates > 0 {
                        tracing::debug!(
                            duplicates = inserted.duplicates,
                            "emits with a known idempotency key were dropped"
                        );
                    }
                    break;
                }
                Err(error) => {
                    outage.failed(
                        "cannot store emitted events (they are kept in memory and retried)",
                        &error,
                    );
                    tokio::select! {
                        biased;
                        () = aborted(&mut mode) => {
                            batch.extend(new.into_iter().zip(envelopes));
                            break 'batches;
                        }
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
        for envelope in envelopes {
            dispatcher.unqueue(&envelope);
            envelope.stored(Ok(()));
        }
        wake.notify_one();
        progress.notify_waiters();
    }
    // Aborted: what was not stored is lost with this process; name it.
    while let Ok(pending) = emits.try_recv() {
        batch.push(pending);
    }
    let mut unstored = Vec::new();
    for (number, (emit, envelope)) in batch.into_iter().enumerate() {
        for listener in &emit.listeners {
            unstored.push(UnfinishedDelivery::queued(
                envelope.event_id(),
                listener,
                envelope.emit_id(),
            ));
        }
        dispatcher.unqueue(&envelope);
        envelope.stored(Err(BackendError::new(if number < unknown {
            "the emitter shut down at its deadline while the event was being stored: it may or \
             may not be stored"
        } else {
            "the emitter shut down at its deadline before the event could be stored"
        })));
    }
    let _ = report.send(unstored);
}
