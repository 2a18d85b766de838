//! A custom backend: an audit trail that records every event before any listener acts on it.
//!
//! Litestar leaves anything beyond its in-memory queue to "write your own backend"; here that is
//! an implementation of `EventEmitterBackend`: `start` is given a `Dispatcher`, `enqueue` takes
//! each emitted `Envelope` without blocking, `shutdown` stops the workers once the emitter has
//! drained. Unlike the default `SimpleEventEmitter`, `AuditTrail`:
//!
//! - hands envelopes to a dedicated thread, so its blocking writes never stall the async runtime;
//! - writes and flushes one line per event (`<emitted at, ms> <emit id> <event id>`) *before*
//!   dispatching it, so no listener acts on an event the trail does not have;
//! - stops delivering once the trail cannot be written: later emits are refused, and
//!   `Emitter::shutdown` returns the I/O error.
//!
//! `cargo run --example custom_backend`

use std::error::Error;
use std::io::{self, Write};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::UNIX_EPOCH;

use emitter::{
    emit, listener, listeners, BackendError, Dispatcher, EmitId, Emitter, Envelope, Event,
    EventEmitterBackend, EventMeta, State,
};

/// A backend that appends each event to an audit trail, then runs its listeners.
pub struct AuditTrail {
    writer: Mutex<Option<Box<dyn Write + Send>>>,
    queue: Mutex<Option<mpsc::Sender<Envelope>>>,
    worker: Mutex<Option<thread::JoinHandle<io::Result<()>>>>,
}

impl AuditTrail {
    /// A trail written to `writer`: a file in production, stdout in this example's `main`.
    pub fn new(writer: impl Write + Send + 'static) -> Self {
        AuditTrail {
            writer: Mutex::new(Some(Box::new(writer))),
            queue: Mutex::new(None),
            worker: Mutex::new(None),
        }
    }
}

impl EventEmitterBackend for AuditTrail {
    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        let mut writer = lock(&self.writer).take().ok_or_else(|| {
            BackendError::new("this audit trail was already started: create a new one")
        })?;
        let (sender, receiver) = mpsc::channel::<Envelope>();
        let worker = thread::Builder::new()
            .name("audit-trail".to_owned())
            .spawn(move || {
                // An error ends the loop: the envelope in hand and those queued behind it are
                // dropped undelivered, which releases them from the emitter's drain.
                for envelope in receiver {
                    record(&mut writer, &envelope)?;
                    dispatcher.dispatch(envelope);
                }
                Ok(())
            })
            .map_err(|error| {
                BackendError::with_source("could not start the audit trail's thread", error)
            })?;
        *lock(&self.queue) = Some(sender);
        *lock(&self.worker) = Some(worker);
        Ok(())
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let queue = lock(&self.queue);
        let sender = queue
            .as_ref()
            .ok_or_else(|| BackendError::new("the audit trail is not running"))?;
        sender.send(envelope).map_err(|_| {
            BackendError::new(
                "the audit trail stopped after a write error; `Emitter::shutdown` returns it",
            )
        })
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        // Closing the channel ends the thread's loop once it has handled everything queued.
        drop(lock(&self.queue).take());
        let worker = lock(&self.worker).take();
        let Some(worker) = worker else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || worker.join()).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(BackendError::with_source(
                "writing the audit trail failed",
                error,
            )),
            Ok(Err(_)) | Err(_) => Err(BackendError::new("the audit trail's thread panicked")),
        }
    }
}

fn record(writer: &mut dyn Write, envelope: &Envelope) -> io::Result<()> {
    let emitted_at = envelope
        .emitted_at()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    writeln!(
        writer,
        "{emitted_at} {} {}",
        envelope.emit_id(),
        envelope.event_id()
    )?;
    writer.flush()
}

/// The backend's state stays usable after a panic elsewhere: it holds no invariant a panic breaks.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Event)]
pub struct PaymentReceived {
    pub invoice: u64,
    pub cents: u64,
}

#[derive(Event)]
pub struct RefundIssued {
    pub invoice: u64,
    pub cents: u64,
}

/// One line of the ledger, with the emit it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub emit_id: EmitId,
    pub event_id: &'static str,
    pub invoice: u64,
    pub cents: u64,
}

#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<Entry>>>);

impl Ledger {
    fn post(&self, entry: Entry) {
        self.0.lock().unwrap().push(entry);
    }
}

#[listener(events = [PaymentReceived, RefundIssued])]
async fn post_to_ledger(invoice: u64, cents: u64, meta: EventMeta, ledger: State<Ledger>) {
    let entry = Entry {
        emit_id: meta.emit_id(),
        event_id: meta.event_id(),
        invoice,
        cents,
    };
    ledger.post(entry);
}

/// What happened: the emits in order, and the ledger sorted by emit.
#[derive(Debug)]
pub struct Summary {
    pub emitted: Vec<EmitId>,
    pub ledger: Vec<Entry>,
}

/// Runs a few payments and a refund through an emitter whose backend is an audit trail written
/// to `trail`.
pub async fn run(trail: impl Write + Send + 'static) -> Result<Summary, Box<dyn Error>> {
    let ledger = Ledger::default();
    let emitter = Emitter::builder()
        .backend(AuditTrail::new(trail))
        .listeners(listeners![post_to_ledger])
        .state(ledger.clone())
        .start()
        .await?;

    let emitted = vec![
        emit!(emitter, PaymentReceived, invoice = 1001, cents = 5000)?,
        emit!(emitter, PaymentReceived, invoice = 1002, cents = 1250)?,
        emit!(emitter, RefundIssued, invoice = 1001, cents = 500)?,
    ];
    emitter.shutdown().await?;

    let mut entries = ledger.0.lock().unwrap().clone();
    entries.sort_by_key(|entry| entry.emit_id);
    Ok(Summary {
        emitted,
        ledger: entries,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("audit trail:");
    let summary = run(io::stdout()).await?;
    println!("ledger:");
    for entry in &summary.ledger {
        println!(
            "  invoice {} {} {} cents",
            entry.invoice, entry.event_id, entry.cents
        );
    }
    Ok(())
}
