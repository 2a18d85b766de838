//! Routing emits by the store's subscriptions: the listeners that workers recorded
//! ([`Store::subscribe`](super::Store::subscribe)), cached by each emitting process and read
//! again once the cache is older than [`DurableConfig::subscription_refresh`](super::DurableConfig::subscription_refresh).
//!
//! Why a cache in the engine rather than a join inside each store's insert: every store, a
//! user's own included, gets the routing from three small methods, the inserts (and the Redis
//! store's transaction of plain appends) stay as they are, and the cost is one small read per
//! refresh interval per process, not one per emit. The price is a window: a worker's new
//! subscription reaches an emitter that is already running within one refresh interval (an
//! emitter that starts later sees it at its first insert).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::{NewEmit, Store, Subscription};
use crate::error::BackendError;

/// The subscriptions of the store as an emitting process last read them.
#[derive(Debug)]
pub(crate) struct Routes {
    refresh: Duration,
    /// Listener names that are aliases of this binary's listeners: a subscription under one is
    /// a leftover of the listener's old name, which its new name replaces.
    aliases: HashSet<&'static str>,
    cached: Mutex<Cached>,
    /// Whether a refresh started by [`refresh_soon`](Self::refresh_soon) runs.
    refreshing: AtomicBool,
}

#[derive(Debug, Default)]
struct Cached {
    loaded: Option<Instant>,
    by_event: HashMap<String, Vec<&'static str>>,
}

impl Routes {
    pub(crate) fn new(refresh: Duration, aliases: HashSet<&'static str>) -> Self {
        Self {
            refresh,
            aliases,
            cached: Mutex::default(),
            refreshing: AtomicBool::new(false),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the copy is older than the refresh interval (or was never loaded).
    pub(crate) fn is_stale(&self) -> bool {
        self.cached()
            .loaded
            .is_none_or(|loaded| loaded.elapsed() >= self.refresh)
    }

    /// Reads the subscriptions again if the copy is stale.
    pub(crate) async fn refresh<S: Store>(&self, store: &S) -> Result<(), BackendError> {
        if self.is_stale() {
            let subscriptions = store.subscriptions().await?;
            self.set(&subscriptions);
        }
        Ok(())
    }

    /// Reads the subscriptions again in the background if the copy is stale and no such read
    /// runs: for callers that cannot wait (an emit prepared for a caller's transaction).
    pub(crate) fn refresh_soon<S: Store>(self: &Arc<Self>, store: &Arc<S>) {
        if !self.is_stale() || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        let (routes, store) = (Arc::clone(self), Arc::clone(store));
        runtime.spawn(async move {
            if let Err(error) = routes.refresh(&*store).await {
                tracing::debug!("could not read the store's subscriptions: {error}");
            }
            routes.refreshing.store(false, Ordering::Release);
        });
    }

    /// Replaces the cache with `subscriptions`.
    pub(crate) fn set(&self, subscriptions: &[Subscription]) {
        let mut by_event: HashMap<String, Vec<&'static str>> = HashMap::new();
        for subscription in subscriptions {
            let listener = intern(&subscription.listener);
            if self.aliases.contains(listener) {
                continue;
            }
            by_event
                .entry(subscription.event_id.clone())
                .or_default()
                .push(listener);
        }
        *self.cached() = Cached {
            loaded: Some(Instant::now()),
            by_event,
        };
    }

    /// Adds to `emit` the listeners subscribed to its event that it does not name yet.
    pub(crate) fn route(&self, emit: &mut NewEmit) {
        let cached = self.cached();
        if let Some(listeners) = cached.by_event.get(&emit.event.event_id) {
            for listener in listeners {
                if !emit.listeners.contains(listener) {
                    emit.listeners.push(listener);
                }
            }
        }
    }
}

/// `name` with a `'static` lifetime, as [`NewEmit::listeners`] holds names. Each distinct name
/// is allocated once per process, and there are as many as there are listeners in the store.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}
