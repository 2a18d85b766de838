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
    /// Per event id, its subscribed listeners and the newest version of it each one's workers
    /// read.
    by_event: HashMap<String, Vec<(&'static str, u32)>>,
    /// The (event id, listener, version) whose workers were said to be older than an emit: said
    /// once each per process.
    warned: HashSet<(String, &'static str, u32)>,
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
        let mut by_event: HashMap<String, Vec<(&'static str, u32)>> = HashMap::new();
        for subscription in subscriptions {
            let listener = intern(&subscription.listener);
            if self.aliases.contains(listener) {
                continue;
            }
            by_event
                .entry(subscription.event_id.clone())
                .or_default()
                .push((listener, subscription.version));
        }
        let mut cached = self.cached();
        cached.loaded = Some(Instant::now());
        cached.by_event = by_event;
    }

    /// Adds to `emit` the listeners subscribed to its event that it does not name yet. Returns
    /// the subscribed listeners whose workers read only older versions of the event than the
    /// emit's (each listener and version once per process), after logging a warning for each:
    /// their deliveries of this emit wait for workers of a newer build.
    pub(crate) fn route(&self, emit: &mut NewEmit) -> Vec<(&'static str, u32)> {
        let mut cached = self.cached();
        let Cached {
            by_event, warned, ..
        } = &mut *cached;
        let Some(listeners) = by_event.get(&emit.event.event_id) else {
            return Vec::new();
        };
        let mut older = Vec::new();
        for &(listener, version) in listeners {
            if !emit.listeners.contains(&listener) {
                emit.listeners.push(listener);
            }
            if version < emit.event.version
                && warned.insert((emit.event.event_id.clone(), listener, version))
            {
                tracing::warn!(
                    event_id = emit.event.event_id,
                    listener,
                    "emitting version {} of event `{}`, but the workers of listener `{listener}` \
                     subscribed reading it up to version {version}: its deliveries wait for a \
                     worker of a newer build (deploy the workers before the emitters)",
                    emit.event.version,
                    emit.event.event_id,
                );
                older.push((listener, version));
            }
        }
        older
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::durable::StoredEvent;
    use crate::EmitId;

    fn emit(version: u32) -> NewEmit {
        let event = StoredEvent::new("routing.e", EmitId::from_u128(1), SystemTime::now(), vec![])
            .with_version(version);
        NewEmit::new(event, vec![], SystemTime::now(), None)
    }

    #[test]
    fn emits_are_routed_by_subscriptions_and_older_readers_are_named_once() {
        let routes = Routes::new(Duration::from_secs(1), HashSet::from(["routing.old_name"]));
        routes.set(&[
            Subscription::new("routing.e", "routing.current", SystemTime::now()).with_version(2),
            Subscription::new("routing.e", "routing.behind", SystemTime::now()).with_version(1),
            Subscription::new("routing.e", "routing.old_name", SystemTime::now()).with_version(1),
            Subscription::new("routing.other", "routing.current", SystemTime::now()),
        ]);
        let mut first = emit(2);
        assert_eq!(routes.route(&mut first), [("routing.behind", 1)]);
        let mut listeners = first.listeners.clone();
        listeners.sort_unstable();
        assert_eq!(
            listeners,
            ["routing.behind", "routing.current"],
            "an alias's subscription is replaced by its new name's"
        );
        let mut second = emit(2);
        assert!(routes.route(&mut second).is_empty(), "said once");
        assert_eq!(second.listeners.len(), 2);
        let mut old = emit(1);
        assert!(
            routes.route(&mut old).is_empty(),
            "version 1 is read by all"
        );
    }
}
