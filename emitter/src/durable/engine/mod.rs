//! [`Durable`]: the engine that turns any [`Store`] into a backend of the emitter.
//!
//! Per emitter: the [`writer`] stores emits in batches; the [`worker`] claims due deliveries and
//! runs each through the delivery core; the acker acknowledges finished deliveries in batches
//! and the keeper extends the leases of running ones ([`held`]); the [`presence`] task sends the
//! store heartbeats for the operator's console.

mod config;
mod held;
mod outage;
mod presence;
mod worker;
mod writer;

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

pub use config::DurableConfig;

use super::compatibility::{Compatibility, Registered};
use super::routing::Routes;
use super::{Counts, DeadLetter, NewEmit, Route, Setup, Store, StoredEvent, Subscription};
use crate::backend::EventEmitterBackend;
use crate::delivery::Dispatcher;
use crate::envelope::{EmitOptions, Envelope};
use crate::error::{BackendError, BackendErrorKind, EmitError};
use crate::event::Event;
use crate::report::UnfinishedDelivery;
use crate::trace::Trace;

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
    /// What the writer and the worker are to do.
    mode: watch::Sender<Mode>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// What the writer and the worker name when they stop: what they left unfinished.
    reports: Mutex<Vec<oneshot::Receiver<Vec<UnfinishedDelivery>>>>,
    /// Told whenever emits are stored or an outcome is, for `wait_idle` and `wait_settled`.
    progress: Arc<Notify>,
}

struct Running {
    dispatcher: Dispatcher,
    /// The store's subscriptions, by which emits are routed.
    routes: Arc<Routes>,
    writer: mpsc::UnboundedSender<writer::Pending>,
    wake: Arc<Notify>,
}

/// What the writer and the worker are to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Store emits; claim and run deliveries.
    Run,
    /// Shutting down: store what is left, claim nothing more, let running deliveries finish.
    Drain,
    /// The shutdown deadline passed: stop at once, cancel running deliveries, give their leases
    /// back, and name what was left.
    Abort,
}

/// Resolves once `mode` is [`Mode::Abort`] (or nobody can change it any more).
async fn aborted(mode: &mut watch::Receiver<Mode>) {
    let _ = mode.wait_for(|mode| *mode == Mode::Abort).await;
}

/// The longest wait between two tries of a store that fails: short, so that work resumes soon
/// after the store comes back.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// How long `abort` waits for the writer and the worker to name what they left.
const ABORT_WAIT: Duration = Duration::from_secs(1);

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
                mode: watch::Sender::new(Mode::Run),
                tasks: Mutex::new(Vec::new()),
                reports: Mutex::new(Vec::new()),
                progress: Arc::new(Notify::new()),
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

    /// Waits until the store holds no unfinished delivery at all (every delivery, of any
    /// emitter, was acknowledged or dead-lettered); delayed deliveries count as unfinished.
    /// Batch jobs use it; it returns the store's error if the store fails. To wait for what one
    /// emitter emitted, use [`Emitter::wait_idle`](crate::Emitter::wait_idle).
    ///
    /// It checks again whenever this process stores an outcome or emits, and every
    /// [`DurableConfig::poll_interval`] for what other processes do.
    pub async fn wait_settled(&self) -> Result<(), BackendError> {
        self.wait_until_none(
            |store| async move { Ok(store.counts().await?.unfinished()) },
            false,
        )
        .await
    }

    /// Waits until `count` says the store holds none of what it counts, checking again when
    /// this process makes progress and every poll interval.
    ///
    /// A store error ends the wait unless `through_errors`, which keeps checking (the worker
    /// reports the outage).
    async fn wait_until_none<F, Fut>(
        &self,
        count: F,
        through_errors: bool,
    ) -> Result<(), BackendError>
    where
        F: Fn(Arc<S>) -> Fut,
        Fut: std::future::Future<Output = Result<u64, BackendError>>,
    {
        loop {
            let progress = self.inner.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            match count(Arc::clone(&self.inner.store)).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(error) if through_errors => {
                    tracing::debug!("waiting for the store to be idle: {error}");
                }
                Err(error) => return Err(error),
            }
            tokio::select! {
                () = progress => {}
                () = tokio::time::sleep(self.inner.config.poll_interval) => {}
            }
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
        let listeners: Vec<&'static str> = entry
            .listeners
            .iter()
            .map(|listener| listener.name)
            .collect();
        let core = running.dispatcher.core();
        let emit_id = core.ids.next();
        let trace = core
            .propagate_span
            .then(Trace::current)
            .flatten()
            .and_then(|trace| trace.to_store(emit_id, listeners.len()));
        let mut emit = NewEmit::new(
            StoredEvent::new(E::ID, emit_id, SystemTime::now(), payload)
                .with_version(E::VERSION)
                .with_trace(trace),
            listeners,
            options.run_at.unwrap_or_else(SystemTime::now),
            options.key,
        );
        // By the subscriptions as last read; a stale copy is read again for the next emits.
        running.routes.route(&mut emit);
        running.routes.refresh_soon(&self.inner.store);
        Ok(emit)
    }

    /// The subscriptions the workers recorded in the store, by which emits are routed.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        self.inner.store.subscriptions().await
    }

    /// Deletes every subscription of `listener`, a listener no worker runs any more: emits
    /// stop being routed to it (its stored deliveries stay; the operator's `orphans discard`
    /// deletes them). Returns how many subscriptions there were.
    pub async fn unsubscribe(&self, listener: &str) -> Result<u64, BackendError> {
        self.inner.store.unsubscribe(listener).await
    }

    /// Compares what the store holds (listener names with unfinished deliveries, their events,
    /// the workers' subscriptions) with what this binary registers: see
    /// [`compatibility`](super::compatibility). A worker runs it at start. The emitter must have
    /// been started with this backend.
    pub async fn compatibility(&self) -> Result<Compatibility, BackendError> {
        let running = self
            .inner
            .running
            .get()
            .ok_or_else(|| BackendError::new("the durable backend is not started"))?;
        check(&*self.inner.store, running.dispatcher.table()).await
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

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    /// A receiver of what a task names when it stops.
    fn report(&self) -> oneshot::Sender<Vec<UnfinishedDelivery>> {
        let (sender, receiver) = oneshot::channel();
        self.inner
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(receiver);
        sender
    }
}

/// What this binary registers, as the compatibility check compares it.
fn registered(table: &crate::table::EventTable) -> Registered {
    let mut registered = Registered::default();
    for info in table.listener_infos() {
        let events = table.events().iter().filter_map(|entry| {
            entry
                .listeners
                .iter()
                .any(|listener| listener.name == info.name)
                .then_some(entry.id)
        });
        registered.listener(info.name, info.aliases, events);
    }
    for entry in table.events() {
        if let Some(codec) = entry.codec {
            registered.event(entry.id, codec.version);
        }
    }
    registered
}

async fn check<S: Store>(
    store: &S,
    table: &crate::table::EventTable,
) -> Result<Compatibility, BackendError> {
    let backlog = store.backlog().await?;
    let subscriptions = store.subscriptions().await?;
    Ok(Compatibility::assess(
        &registered(table),
        &backlog,
        &subscriptions,
    ))
}

/// This binary's subscriptions, and the names whose subscriptions they replace (its listeners'
/// names and aliases).
fn subscriptions(table: &crate::table::EventTable) -> (Vec<&'static str>, Vec<Subscription>) {
    let now = SystemTime::now();
    let mut replace = Vec::new();
    for info in table.listener_infos() {
        replace.push(info.name);
        replace.extend(info.aliases);
    }
    let mut subscriptions = Vec::new();
    for entry in table.events() {
        for listener in &entry.listeners {
            let limit = table
                .policy(listener)
                .concurrency_limit()
                .map(|limit| u32::try_from(limit.get()).unwrap_or(u32::MAX))
                .and_then(NonZeroU32::new);
            let version = entry.codec.map_or(1, |codec| codec.version);
            subscriptions.push(
                Subscription::new(entry.id, listener.name, now)
                    .concurrency(limit)
                    .with_version(version),
            );
        }
    }
    (replace, subscriptions)
}

impl<S: Store> EventEmitterBackend for Durable<S> {
    fn transaction(&self) -> Option<crate::durable::TxKind> {
        S::TRANSACTION
    }

    async fn start(&self, dispatcher: Dispatcher) -> Result<(), BackendError> {
        let core = Arc::clone(dispatcher.core());
        let table = &core.table;
        let routes: Vec<Route> = table
            .events()
            .iter()
            .map(|entry| Route {
                event_id: entry.id,
                listeners: entry
                    .listeners
                    .iter()
                    .flat_map(|listener| {
                        std::iter::once(listener.name).chain(listener.aliases.iter().copied())
                    })
                    .collect(),
            })
            .collect();
        let config = &self.inner.config;
        let mut setup = Setup::new(routes, config.key_retention);
        for info in table.listener_infos() {
            if let Some(limit) = info.policy.concurrency_limit() {
                let limit = u32::try_from(limit.get()).unwrap_or(u32::MAX);
                let limit = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
                for name in std::iter::once(info.name).chain(info.aliases.iter().copied()) {
                    setup = setup.concurrency(name, limit);
                }
            }
        }
        let store = &*self.inner.store;
        store.open(&setup).await?;
        if config.deliver {
            let found = check(store, table).await?;
            if !found.is_compatible() {
                if config.strict_compatibility {
                    return Err(BackendError::of(
                        BackendErrorKind::Conflict,
                        format!(
                            "the store holds deliveries or subscriptions this binary does not \
                             know (and `strict_compatibility` is on):\n{found}"
                        ),
                    ));
                }
                for finding in &found.findings {
                    tracing::warn!("the store and this binary disagree: {finding}");
                }
            }
            let (replace, subscriptions) = subscriptions(table);
            store.subscribe(&replace, &subscriptions).await?;
        }
        let aliases = table
            .listener_infos()
            .iter()
            .flat_map(|info| info.aliases.iter().copied())
            .collect();
        let routes = Arc::new(Routes::new(config.subscription_refresh, aliases));
        // Read once now: emits prepared for a caller's transaction route by this copy.
        routes.refresh(store).await?;
        let (writer, emits) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let running = Running {
            dispatcher: dispatcher.clone(),
            routes: Arc::clone(&routes),
            writer,
            wake: Arc::clone(&wake),
        };
        if self.inner.running.set(running).is_err() {
            return Err(BackendError::new(
                "this durable backend was already started",
            ));
        }
        // An emitter dropped without a shutdown takes its backend's tasks with it: running
        // deliveries are left to their leases.
        let dropped = core.dropped();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            dropped.await;
            inner.mode.send_replace(Mode::Abort);
            for task in
                std::mem::take(&mut *inner.tasks.lock().unwrap_or_else(PoisonError::into_inner))
            {
                task.abort();
            }
        });
        self.spawn(writer::write(
            Arc::clone(&self.inner.store),
            routes,
            dispatcher,
            emits,
            config.emit_timeout,
            Arc::clone(&wake),
            Arc::clone(&self.inner.progress),
            self.inner.mode.subscribe(),
            self.report(),
        ));
        if config.deliver {
            // Aliases too: the worker claims the deliveries stored under them, so the console
            // does not count them as orphans.
            let claimed: Vec<&'static str> = table
                .listener_infos()
                .iter()
                .flat_map(|info| std::iter::once(info.name).chain(info.aliases.iter().copied()))
                .collect();
            self.spawn(presence::beat(
                Arc::clone(&self.inner.store),
                Arc::clone(&core),
                config.worker_id.clone(),
                claimed.clone(),
                config.heartbeat,
                self.inner.mode.subscribe(),
            ));
            let worker = worker::Worker {
                store: Arc::clone(&self.inner.store),
                config: config.clone(),
                wake,
                progress: Arc::clone(&self.inner.progress),
                listeners: claimed,
                held: Arc::default(),
                core,
            };
            self.spawn(worker.run(self.inner.mode.subscribe(), self.report()));
        }
        Ok(())
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), BackendError> {
        let running = self
            .inner
            .running
            .get()
            .ok_or_else(|| BackendError::new("the durable backend is not started"))?;
        let emit = writer::encode(
            running.dispatcher.table(),
            &envelope,
            self.inner.config.max_payload,
        )?;
        running
            .writer
            .send(writer::Pending::new(emit, envelope))
            .map_err(|_| BackendError::new("the durable backend has stopped"))
    }

    fn is_durable(&self) -> bool {
        true
    }

    /// Stores what is left, stops claiming, and lets the running deliveries finish.
    async fn shutdown(&self) -> Result<(), BackendError> {
        self.inner.mode.send_if_modified(|mode| {
            let run = *mode == Mode::Run;
            if run {
                *mode = Mode::Drain;
            }
            run
        });
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            let _ = task.await;
        }
        Ok(())
    }

    /// Cancels the running deliveries, gives their leases back, and names them and the emits
    /// not yet stored.
    async fn abort(&self) -> Vec<UnfinishedDelivery> {
        self.inner.mode.send_replace(Mode::Abort);
        let reports = std::mem::take(
            &mut *self
                .inner
                .reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut unfinished = Vec::new();
        for report in reports {
            if let Ok(Ok(named)) = tokio::time::timeout(ABORT_WAIT, report).await {
                unfinished.extend(named);
            }
        }
        unfinished
    }

    /// Waits until the store holds no unfinished delivery of an emit made through this
    /// emitter, in this process or any other worker's.
    async fn wait_idle(&self) {
        let Some(emits) = self
            .inner
            .running
            .get()
            .and_then(|running| running.dispatcher.core().ids.given())
        else {
            return;
        };
        // Through errors: the store may be down for a while; the worker reports that.
        let _ = self
            .wait_until_none(
                |store| {
                    let emits = emits.clone();
                    async move { store.unfinished(emits).await }
                },
                true,
            )
            .await;
    }
}
