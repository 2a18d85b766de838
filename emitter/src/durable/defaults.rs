//! The defaults every store and the engine share, in one place.

use std::time::Duration;

/// How long idempotency keys are remembered: [`DurableConfig::key_retention`]'s default, and
/// each store's until [`Store::open`] tells it the engine's.
///
/// [`DurableConfig::key_retention`]: super::DurableConfig::key_retention
/// [`Store::open`]: super::Store::open
pub(crate) const KEY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a claim lasts unless extended.
pub(crate) const LEASE: Duration = Duration::from_secs(30);

/// How often a worker nobody woke looks for due deliveries.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How often a store deletes expired idempotency keys, at most.
pub(crate) const KEY_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// How long connecting to a server may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one call of a network store may wait for its server.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an emit may take to be stored before it fails.
pub(crate) const EMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a worker sends its store a heartbeat.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(10);

/// How long a delivery of a newer event version than the worker's is left for a newer worker.
pub(crate) const NEWER_VERSION_DELAY: Duration = Duration::from_secs(30);
