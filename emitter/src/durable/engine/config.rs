//! [`DurableConfig`]: how a durable backend claims, leases and limits.

use std::time::Duration;

use crate::durable::defaults;
use crate::emit_id::EmitId;

/// How a [`Durable`](super::Durable) backend claims, leases and limits. The defaults suit most uses.
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
    /// How long an emit may take to be stored (default 10 s), counted from the call of
    /// [`emit_async`](crate::Emitter::emit_async), or from [`emit`](crate::Emitter::emit) for
    /// the storing it leaves to the background. While the store is unreachable, emits wait and
    /// are retried until then; after it, they fail with an error that says whether the event is
    /// known not to be stored or may have been (and then carries the emit id and idempotency
    /// key: see [`BackendError::is_in_doubt`](crate::BackendError::is_in_doubt)): `emit_async`
    /// returns it, and for an `emit` each delivery fails for good without running (attempt 0),
    /// with it as the reason, for the error hook and the shutdown report.
    pub emit_timeout: Duration,
    /// How many times a delivery may be claimed beyond its listener's attempts before it is
    /// dead-lettered as a crash loop (its workers keep dying while running it; default 5). Once
    /// a delivery's worker died while running it, it is claimed and run alone, so only the
    /// delivery that kills its workers gathers these claims.
    pub extra_claims: u32,
    /// Whether this process runs listeners (default `true`); `false` makes an emit-only process,
    /// such as a web server whose workers run elsewhere.
    pub deliver: bool,
    /// The name this worker claims under (default: host name, process id and a random suffix).
    pub worker_id: String,
    /// How often this worker tells the store that it runs, and what its listeners did (default
    /// 10 s; [`Store::heartbeat`](crate::durable::Store::heartbeat)). The operator's console
    /// counts a worker as running until three heartbeats are missed.
    pub heartbeat: Duration,
    /// How long a delivery whose event was stored by a newer build (a version of the event
    /// newer than this binary's [`Event::VERSION`](crate::Event::VERSION)) is left before this
    /// worker looks at it again (default 30 s). It is given back to the store without counting
    /// an attempt, for a worker of the newer build to take: during a rolling deploy, old
    /// workers leave new events to new ones.
    pub newer_version_delay: Duration,
    /// How old this process's copy of the store's subscriptions may grow before an insert
    /// reads them again (default 1 s): an emit reaches a listener that a worker subscribed
    /// within this long of the subscription (see the README's "Changing events safely").
    pub subscription_refresh: Duration,
    /// Whether a worker refuses to start when the [compatibility
    /// check](crate::durable::compatibility) finds anything (default `false`: each finding is
    /// logged as a warning and the worker starts).
    pub strict_compatibility: bool,
}

impl Default for DurableConfig {
    fn default() -> Self {
        Self {
            lease: defaults::LEASE,
            max_in_flight: 512,
            poll_interval: defaults::POLL_INTERVAL,
            max_payload: 256 * 1024,
            key_retention: defaults::KEY_RETENTION,
            emit_timeout: defaults::EMIT_TIMEOUT,
            extra_claims: 5,
            deliver: true,
            worker_id: default_worker_id(),
            heartbeat: defaults::HEARTBEAT,
            newer_version_delay: defaults::NEWER_VERSION_DELAY,
            subscription_refresh: Duration::from_secs(1),
            strict_compatibility: false,
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

    /// How long an emit may take to be stored.
    pub fn emit_timeout(mut self, timeout: Duration) -> Self {
        self.emit_timeout = timeout;
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

    /// How often this worker sends the store a heartbeat.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// How long a delivery of an event version newer than this binary's is left for a newer
    /// worker before this one looks at it again.
    pub fn newer_version_delay(mut self, delay: Duration) -> Self {
        self.newer_version_delay = delay.max(Duration::from_millis(1));
        self
    }

    /// How old the copy of the store's subscriptions may grow before an insert reads them
    /// again.
    pub fn subscription_refresh(mut self, every: Duration) -> Self {
        self.subscription_refresh = every;
        self
    }

    /// Whether any finding of the start-up compatibility check fails the start.
    pub fn strict_compatibility(mut self, strict: bool) -> Self {
        self.strict_compatibility = strict;
        self
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}-{}", std::process::id(), EmitId::unique())
}
