//! [`Durable`]: the engine that turns any [`Store`] into a backend of the emitter.
//!
//! Four tasks per emitter: the writer stores emits in batches; the claimer claims due deliveries
//! and runs each as a task; the acker acknowledges finished deliveries in batches; the keeper
//! extends the leases of running deliveries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::{
    defaults, Claimed, Counts, DeadLetter, NewEmit, Receipt, Route, Setup, Store, StoredEvent,
};
use crate::backend::{Dispatcher, Envelope, EventEmitterBackend};
use crate::context::{EmitId, EventMeta};
use crate::delivery::run_attempt;
use crate::error::{BackendError, EmitError, ListenerError};
use crate::event::{Event, Header};
use crate::EmitOptions;

/// How a [`Durable`] backend claims, leases and limits. The defaults suit most uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DurableConfig {
    /// How long a claim lasts unless extended (default 30 s). A worker that dies loses its
    /// deliveries to another after this long.
    pub lease: Duration,
    /// The most deliveries this process holds at once, from their claim until their
    /// acknowledgement is stored (default 512): also the most that can run twice when it
    /// crashes. A claim takes at most half of it (and at most 256), so that one batch is
    /// acknowledged while the next runs.
    pub max_in_flight: usize,
    /// How often to look for due deliveries when nothing woke the worker: delayed events and
    /// retries are found this late at most (default 500 ms).
    pub poll_interval: Duration,
    /// The largest encoded event accepted at emit, in bytes (default 256 KiB).
    pub max_payload: usize,
    /// How long idempotency keys are remembered (default 7 days).
    pub key_retention: Duration,
    /// How many times a delivery may be claimed beyond its listener's attempts before it is
    /// dead-lettered as a crash loop (its workers keep dying while running it; default 5).
    pub extra_claims: u32,
    /// Whether this process runs listeners (default `true`); `false` makes an emit-only process,
    /// such as a web server whose workers run elsewhere.
    pub deliver: bool,
    /// The name this worker claims under (default: host name, process id and a random suffix).
    pub worker_id: String,
}

impl Default for DurableConfig {
    fn default() -> Self {
        Self {
            lease: defaults::LEASE,
            max_in_flight: 512,
            poll_interval: defaults::POLL_INTERVAL,
            max_payload: 256 * 1024,
            key_retention: defaults::KEY_RETENTION,
            extra_claims: 5,
            deliver: true,
            worker_id: default_worker_id(),
        }
    }
}

impl DurableConfig {
    /// The lease of a claim.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(10));
        self
    }

    /// The most deliveries run at once by this process.
    pub fn max_in_flight(mut self, deliveries: usize) -> Self {
        self.max_in_flight = deliveries.max(1);
        self
    }

    /// How often to look for due deliveries without a wake-up.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The largest encoded event accepted, in bytes.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How long idempotency keys are remembered.
    pub fn key_retention(mut self, retention: Duration) -> Self {
        self.key_retention = retention;
        self
    }

    /// How many claims beyond the listener's attempts before a crash loop is dead-lettered.
    pub fn extra_claims(mut self, claims: u32) -> Self {
        self.extra_claims = claims;
        self
    }

    /// Whether this process runs listeners.
    pub fn deliver(mut self, deliver: bool) -> Self {
        self.deliver = deliver;
        self
    }

    /// The name this worker claims under.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = id.into();
        self
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}-{}", std::process::id(), EmitId::next())
}

/// A durable backend: deliveries kept in a [`Store`], claimed under leases, acknowledged after
/// their listener succeeded, retried with the listener's backoff and dead-lettered after its last
/// attempt. See the [module documentation](super) for the model.
///
/// Cheap to clone: keep a clone to list and replay dead letters or to wait for the store to
/// settle while the emitter runs.
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use emitter::durable::{sqlite::SqliteStore, Durable};
/// use emitter::Emitter;
///
/// let backend = Durable::new(SqliteStore::open("events.db")?);
/// let emitter = Emitter::builder().backend(backend.clone()).start().await?;
/// // ...
/// for letter in backend.dead_letters(100).await? {
///     println!("{} failed on {}: {}", letter.listener, letter.event.event_id, letter.reason);
///     backend.replay(&letter.id).await?;
/// }
/// # emitter.shutdown().await?;
/// # Ok(())
/// # }
/// ```
pub struct Durable<S: Store> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> Clone for Durable<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Store + std::fmt::Debug> std::fmt::Debug for Durable<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    store: Arc<S>,
    config: DurableConfig,
    running: OnceLock<Running>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Running {
    dispatcher: Dispatcher,
    writer: mpsc::UnboundedSender<(NewEmit, Envelope)>,
    wake: Arc<Notify>,
}

impl<S: Store> Durable<S> {
    /// A durable backend over `store`, with the default [`DurableConfig`].
    pub fn new(store: S) -> Self {
        Self::with_config(store, DurableConfig::default())
    }

    /// A durable backend over `store` with `config`.
    pub fn with_config(store: S, config: DurableConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                config,
                running: OnceLock::new(),
                stop: watch::Sender::new(false),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &DurableConfig {
        &self.inner.config
    }

    /// The dead letters, oldest first, up to `limit`.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BackendError> {
        self.inner.store.dead_letters(limit).await
    }

    /// Sends a dead letter back to its listener, due now, with its attempts counted from zero.
    /// Returns `false` when there is no dead letter with this id.
    pub async fn replay(&self, id: &str) -> Result<bool, BackendError> {
        let replayed = self.inner.store.replay(id).await?;
        if let Some(running) = self.inner.running.get() {
            running.wake.notify_one();
        }
        Ok(replayed)
    }

    /// Deletes a dead letter for good. Returns `false` when there is no dead letter with this id.
    pub async fn discard(&self, id: &str) -> Result<bool, BackendError> {
        self.inner.store.discard(id).await
    }

    /// How many deliveries wait, run and lie dead in the store.
    pub async fn counts(&self) -> Result<Counts, BackendError> {
        self.inner.store.counts().await
    }

    /// Waits until the store holds no unfinished delivery (every delivery was acknowledged or
    /// dead-lettered), checking every 10 ms. Delayed deliveries count as unfinished. Tests and
    /// batch jobs use it; it returns the store's error if the store fails.
    pub async fn wait_settled(&self) -> Result<(), BackendError> {
        loop {
            if self.inner.store.counts().await?.unfinished() == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Encodes `event` as the emitter would store it, for stores that can insert it themselves,
    /// such as inside a database transaction of the caller's (see the PostgreSQL store's
    /// `insert_in`). The emitter must have been started with this backend.
    pub fn prepare<E: Event>(&self, event: &E, options: EmitOptions) -> Result<NewEmit, EmitError> {
        let running = self.inner.running.get().ok_or(EmitError::NotStarted)?;
        let table = running.dispatcher.table();
        let Some((_, entry)) = table.event_by_id(E::ID) else {
            return Err(EmitError::NoListeners { event_id: E::ID });
        };
        let payload = serde_json::to_vec(event).map_err(|error| EmitError::Backend {
            event_id: E::ID,
            source: BackendError::with_source("the event could not be encoded as JSON", error),
        })?;
        self.check_size(E::ID, payload.len())?;
        let listeners = entry
            .listeners
            .iter()
            .map(|listener| listener.name)
            .collect();
        Ok(NewEmit::new(
            StoredEvent {
                event_id: E::ID.to_owned(),
                emit_id: EmitId::next(),
                emitted_at: SystemTime::now(),
                payload,
            },
            listeners,
            options.run_at.unwrap_or_else(SystemTime::now),
            options.key,
        ))
    }

    fn check_size(&self, event_id: &'static str, size: usize) -> Result<(), EmitError> {
        let limit = self.inner.config.max_payload;
        if size > limit {
            return Err(EmitError::PayloadTooLarge {
                event_id,
                size,
                limit,
            });
        }
        Ok(())
    }

    /// Encodes an envelope for the store, refusing it if too large.
    fn encode(
        &self,
        dispatcher: &Dispatcher,
        envelope: &Envelope,
    ) -> Result<NewEmit, BackendError> {
        let table = dispatcher.table();
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
        let limit = self.inner.config.max_payload;
        if payload.len() > limit {
            return Err(BackendError::payload_too_large(payload.len(), limit));
        }
        Ok(NewEmit::new(
            StoredEvent {
                event_id: entry.id.to_owned(),
                emit_id: envelope.emit_id(),
                emitted_at: envelope.emitted_at(),
                payload,
            },
            entry
                .listeners
                .iter()
                .map(|listener| listener.name)
                .collect(),
            envelope.run_at().unwrap_or_else(SystemTime::now),
            envelope.idempotency_key().map(str::to_owned),
        ))
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }
}

impl<S: Store> EventEmitterBackend for Durable<S> {
    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        let table = dispatcher.table();
        let routes: Vec<Route> = table
            .events()
            .iter()
            .map(|entry| Route {
                event_id: entry.id,
                listeners: entry
                    .listeners
                    .iter()
                    .map(|listener| listener.name)
                    .collect(),
            })
            .collect();
        let config = &self.inner.config;
        self.inner
            .store
            .open(&Setup {
                routes,
                key_retention: config.key_retention,
            })
            .await?;
        let (writer, emits) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let running = Running {
            dispatcher: dispatcher.clone(),
            writer,
            wake: Arc::clone(&wake),
        };
        if self.inner.running.set(running).is_err() {
            return Err(BackendError::new(
                "this durable backend was already started",
            ));
        }
        self.spawn(write(
            Arc::clone(&self.inner.store),
            dispatcher.clone(),
            emits,
            Arc::clone(&wake),
        ));
        if config.deliver {
            let listeners: Vec<&'static str> = table
                .listener_infos()
                .iter()
                .map(|info| info.name)
                .collect();
            let worker = Worker {
                store: Arc::clone(&self.inner.store),
                dispatcher,
                config: config.clone(),
                wake,
                listeners,
                leases: Arc::new(Mutex::new(HashMap::new())),
            };
            self.spawn(worker.run(self.inner.stop.subscribe()));
        }
        Ok(())
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let running = self
            .inner
            .running
            .get()
            .ok_or_else(|| BackendError::new("the durable backend is not started"))?;
        let emit = self.encode(&running.dispatcher, &envelope)?;
        running
            .writer
            .send((emit, envelope))
            .map_err(|_| BackendError::new("the durable backend has stopped"))
    }

    fn is_durable(&self) -> bool {
        true
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        let _ = self.inner.stop.send(true);
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // The writer is idle: the emitter shut down only once every accepted emit was stored.
        let mut tasks = tasks.into_iter();
        if let Some(writer) = tasks.next() {
            writer.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        Ok(())
    }
}

/// Stores emits in batches; retries a batch the store refused until it takes it, then tells the
/// emitter (which counted the emits as pending until now) and wakes the worker.
async fn write<S: Store>(
    store: Arc<S>,
    dispatcher: Dispatcher,
    mut emits: mpsc::UnboundedReceiver<(NewEmit, Envelope)>,
    wake: Arc<Notify>,
) {
    const BATCH: usize = 512;
    let mut batch = Vec::with_capacity(BATCH);
    while emits.recv_many(&mut batch, BATCH).await > 0 {
        let (new, envelopes): (Vec<NewEmit>, Vec<Envelope>) = batch.drain(..).unzip();
        let mut wait = Duration::from_millis(10);
        let mut outage = Outage::default();
        loop {
            match store.insert(&new).await {
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
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
        for envelope in envelopes {
            dispatcher.unqueue(&envelope);
            envelope.stored(Ok(()));
        }
        wake.notify_one();
    }
}

/// The longest wait between two tries of a store that fails: short, so that work resumes soon
/// after the store comes back.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// How long the claimer and the acker wait to gather a batch when they have only a few.
const GATHER: Duration = Duration::from_millis(1);

/// How often a store that keeps failing is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// Reports a store that fails: an error when it starts, a warning every [`REPORT_EVERY`] while
/// it lasts, and when it is over.
#[derive(Default)]
struct Outage {
    since: Option<(std::time::Instant, std::time::Instant)>,
}

impl Outage {
    fn failed(&mut self, what: &str, error: &BackendError) {
        let now = std::time::Instant::now();
        match &mut self.since {
            None => {
                tracing::error!("{what}, retrying: {error}");
                self.since = Some((now, now));
            }
            Some((start, reported)) if now.duration_since(*reported) >= REPORT_EVERY => {
                tracing::warn!(
                    "{what} for {:?} now, retrying: {error}",
                    now.duration_since(*start)
                );
                *reported = now;
            }
            Some(_) => tracing::debug!("{what}, retrying: {error}"),
        }
    }

    fn over(&mut self, what: &str) {
        if let Some((start, _)) = self.since.take() {
            tracing::info!(
                "the store answers again after {:?}; {what} resumed",
                start.elapsed()
            );
        }
    }
}

/// The receipts this worker holds, by a number it gave each claimed delivery.
type Leases = Arc<Mutex<HashMap<u64, Receipt>>>;

/// A finished delivery waiting for its acknowledgement: its number, its receipt, and its room
/// among the deliveries in flight.
type Ack = (u64, Receipt, OwnedSemaphorePermit);

/// Claims deliveries and runs them.
struct Worker<S> {
    store: Arc<S>,
    dispatcher: Dispatcher,
    config: DurableConfig,
    wake: Arc<Notify>,
    listeners: Vec<&'static str>,
    /// The receipts of deliveries running or waiting for their acknowledgement, by a number
    /// this worker gives each claimed delivery.
    leases: Leases,
}

/// What a delivery's attempt came to, and what the store is told.
enum Ran {
    Done,
    Retry {
        at: SystemTime,
        error: String,
    },
    Dead {
        reason: String,
    },
    /// The emitter is gone: leave the delivery to its lease.
    Abandoned,
}

impl<S: Store> Worker<S> {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let (acks, ack_receiver) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(
            Arc::clone(&self.store),
            ack_receiver,
            Arc::clone(&self.leases),
        ));
        let keeper = tokio::spawn(keep_leases(
            Arc::clone(&self.store),
            Arc::clone(&self.leases),
            self.config.lease,
        ));
        let room = Arc::new(Semaphore::new(self.config.max_in_flight));
        let limits = self.listener_limits();
        let mut running = JoinSet::new();
        let mut outage = Outage::default();
        let mut wait = Duration::from_millis(50);
        let mut claimed_so_far = 0u64;
        loop {
            while running.try_join_next().is_some() {}
            if *stop.borrow() {
                break;
            }
            let first = tokio::select! {
                permit = Arc::clone(&room).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = stop.changed() => break,
            };
            // Claim in batches: when little room is free, wait a moment for more, so that one
            // round trip to the store serves many deliveries.
            let half = self.config.max_in_flight / 2;
            let free = room.available_permits();
            if free < half {
                let more = u32::try_from(half - free).unwrap_or(u32::MAX);
                tokio::select! {
                    // Taken and given back at once: only this loop takes room.
                    _ = tokio::time::timeout(GATHER, Arc::clone(&room).acquire_many_owned(more)) => {}
                    _ = stop.changed() => break,
                }
            }
            // At most half the room per claim, so that one batch is acknowledged while the next
            // one runs.
            let limit = (1 + room.available_permits()).min(half.clamp(1, 256));
            let claimed = self
                .store
                .claim(
                    &self.config.worker_id,
                    &self.listeners,
                    limit,
                    self.config.lease,
                )
                .await;
            let claimed = match claimed {
                Ok(claimed) => {
                    outage.over("claiming");
                    wait = Duration::from_millis(50);
                    claimed
                }
                Err(error) => {
                    outage.failed("cannot claim deliveries", &error);
                    drop(first);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => break,
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                    continue;
                }
            };
            if claimed.is_empty() {
                drop(first);
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = self.store.wait_for_work(self.config.poll_interval) => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            let mut first = Some(first);
            for claim in claimed {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match Arc::clone(&room).try_acquire_owned() {
                        Ok(permit) => permit,
                        // Not reached: only this loop takes permits. Should it happen, the
                        // delivery's lease runs out and it is claimed again.
                        Err(_) => continue,
                    },
                };
                claimed_so_far += 1;
                self.leases
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(claimed_so_far, claim.receipt.clone());
                let limit = limits.get(claim.listener.as_str()).cloned();
                running.spawn(deliver(
                    Arc::clone(&self.store),
                    self.dispatcher.clone(),
                    claimed_so_far,
                    claim,
                    self.config.extra_claims,
                    acks.clone(),
                    Arc::clone(&self.leases),
                    permit,
                    limit,
                ));
            }
        }
        // Stopping: let running deliveries finish within a lease, then leave the rest to expire.
        let _ = tokio::time::timeout(self.config.lease, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        running.abort_all();
        drop(acks);
        let _ = acker.await;
        keeper.abort();
    }

    /// A semaphore per listener that limits its concurrency.
    fn listener_limits(&self) -> HashMap<&'static str, Arc<Semaphore>> {
        self.dispatcher
            .table()
            .listener_infos()
            .iter()
            .filter_map(|info| {
                info.policy
                    .concurrency_limit()
                    .map(|limit| (info.name, Arc::new(Semaphore::new(limit.get()))))
            })
            .collect()
    }
}

/// Runs one claimed delivery and tells the store how it went.
#[allow(clippy::too_many_arguments)]
async fn deliver<S: Store>(
    store: Arc<S>,
    dispatcher: Dispatcher,
    number: u64,
    claim: Claimed,
    extra_claims: u32,
    acks: mpsc::UnboundedSender<Ack>,
    leases: Leases,
    room: OwnedSemaphorePermit,
    limit: Option<Arc<Semaphore>>,
) {
    let _turn = match limit {
        Some(limit) => limit.acquire_owned().await.ok(),
        None => None,
    };
    let ran = run_claimed(&dispatcher, &claim, extra_claims).await;
    let receipt = &claim.receipt;
    let told = match &ran {
        Ran::Done => {
            // Acknowledged in a batch. Until then the delivery keeps its lease and its room
            // among the deliveries in flight, so that a crash can make at most `max_in_flight`
            // deliveries run again.
            match acks.send((number, claim.receipt, room)) {
                Ok(()) => return,
                Err(mpsc::error::SendError((_, receipt, _))) => {
                    let acked = store.ack(std::slice::from_ref(&receipt)).await;
                    leases
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&number);
                    if let Err(error) = acked {
                        tracing::error!(
                            listener = claim.listener,
                            "could not acknowledge a delivery; it will run again when its lease expires: {error}"
                        );
                    }
                    return;
                }
            }
        }
        Ran::Retry { at, error } => store.retry(receipt, *at, error).await,
        Ran::Dead { reason } => store.dead_letter(receipt, reason).await,
        Ran::Abandoned => Ok(()),
    };
    if let Err(error) = told {
        tracing::error!(
            listener = claim.listener,
            event_id = claim.event.event_id,
            emit_id = %claim.event.emit_id,
            "could not record the outcome of a delivery; it will run again when its lease expires: {error}"
        );
    }
    leases
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&number);
}

/// Decodes a claimed delivery, runs one attempt of its listener, and decides what follows.
async fn run_claimed(dispatcher: &Dispatcher, claim: &Claimed, extra_claims: u32) -> Ran {
    let table = dispatcher.table();
    let stored = &claim.event;
    let Some((_, entry)) = table.event_by_id(&stored.event_id) else {
        return dead(
            claim,
            format!(
                "unknown event id `{}`: no event type of this binary has it",
                stored.event_id
            ),
        );
    };
    let Some(listener) = entry
        .listeners
        .iter()
        .find(|listener| listener.name == claim.listener)
    else {
        return dead(
            claim,
            format!(
                "listener `{}` does not listen to event `{}` in this binary",
                claim.listener, stored.event_id
            ),
        );
    };
    let Some(codec) = entry.codec else {
        return dead(
            claim,
            format!("event `{}` is not registered", stored.event_id),
        );
    };
    let policy = table.listener_infos()[listener.listener].policy;
    if claim.attempt > policy.max_attempts().saturating_add(extra_claims) {
        return dead(
            claim,
            format!(
                "claimed {} times without an outcome: the workers running it died or lost their \
             leases each time (a crash loop?)",
                claim.attempt
            ),
        );
    }
    let header = Header {
        event_id: entry.id,
        emit_id: stored.emit_id,
        emitted_at: stored.emitted_at,
        parent: None,
        _token: None,
    };
    let payload = match (codec.decode)(&stored.payload, header) {
        Ok(payload) => payload,
        Err(error) => {
            return dead(
                claim,
                format!(
                    "the payload cannot be decoded as `{}`: {error}",
                    entry.type_name
                ),
            )
        }
    };
    let Some(emitter) = dispatcher.emitter() else {
        return Ran::Abandoned;
    };
    let meta = EventMeta::of(&payload.header, listener.name, claim.attempt);
    listener.stats.running();
    let result = run_attempt(&emitter, listener, &payload, &meta, policy).await;
    listener.stats.stopped();
    emitter.observe_attempt(&meta, &result);
    match result {
        Ok(()) => {
            listener.stats.delivered(entry.id, listener.name);
            Ran::Done
        }
        Err(failure) if claim.attempt < policy.max_attempts() => {
            let wait = policy
                .backoff_policy()
                .schedule(policy.max_attempts())
                .nth(claim.attempt.saturating_sub(1) as usize)
                .unwrap_or_default();
            listener.stats.retried(entry.id, listener.name);
            tracing::warn!(
                listener = listener.name,
                event_id = entry.id,
                emit_id = %stored.emit_id,
                attempt = claim.attempt,
                "listener failed, retrying in {wait:?}: {failure}"
            );
            Ran::Retry {
                at: SystemTime::now() + wait,
                error: failure.to_string(),
            }
        }
        Err(failure) => {
            listener.stats.failed(entry.id, listener.name);
            let reason = format!(
                "attempt {} of {}: listener {failure}",
                claim.attempt,
                policy.max_attempts()
            );
            emitter.report(ListenerError {
                listener: listener.name,
                event_id: entry.id,
                emit_id: stored.emit_id,
                attempt: claim.attempt,
                failure,
            });
            Ran::Dead { reason }
        }
    }
}

fn dead(claim: &Claimed, reason: String) -> Ran {
    tracing::error!(
        listener = claim.listener,
        event_id = claim.event.event_id,
        emit_id = %claim.event.emit_id,
        "delivery dead-lettered: {reason}"
    );
    Ran::Dead { reason }
}

/// Acknowledges finished deliveries in batches.
async fn acknowledge<S: Store>(
    store: Arc<S>,
    mut acks: mpsc::UnboundedReceiver<Ack>,
    leases: Leases,
) {
    const BATCH: usize = 512;
    let mut received = Vec::with_capacity(BATCH);
    while acks.recv_many(&mut received, BATCH).await > 0 {
        // A few receipts: wait a moment for more, so that one round trip acknowledges many.
        if received.len() < BATCH / 8 {
            tokio::time::sleep(GATHER).await;
            while received.len() < BATCH {
                match acks.try_recv() {
                    Ok(ack) => received.push(ack),
                    Err(_) => break,
                }
            }
        }
        // The permits are released when this batch is done with, acknowledged or not.
        let mut numbers = Vec::with_capacity(received.len());
        let mut batch = Vec::with_capacity(received.len());
        let mut rooms = Vec::with_capacity(received.len());
        for (number, receipt, room) in received.drain(..) {
            numbers.push(number);
            batch.push(receipt);
            rooms.push(room);
        }
        let mut wait = Duration::from_millis(10);
        for _ in 0..5 {
            match store.ack(&batch).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(
                        deliveries = batch.len(),
                        "could not acknowledge deliveries, retrying in {wait:?}: {error}"
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
            }
        }
        let mut held = leases.lock().unwrap_or_else(PoisonError::into_inner);
        for number in &numbers {
            held.remove(number);
        }
        drop(held);
        drop(rooms);
    }
}

/// Extends the leases of running deliveries every third of a lease.
async fn keep_leases<S: Store>(store: Arc<S>, leases: Leases, lease: Duration) {
    let mut every = tokio::time::interval(lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let held: Vec<Receipt> = leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        if held.is_empty() {
            continue;
        }
        if let Err(error) = store.extend(&held, lease).await {
            tracing::warn!(
                deliveries = held.len(),
                "could not extend leases; deliveries may run twice: {error}"
            );
        }
    }
}
