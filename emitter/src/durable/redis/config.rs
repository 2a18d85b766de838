//! [`RedisConfig`]: where the server is, and the key prefix, TLS and timeouts of a [`RedisStore`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{Client, ConnectionAddr, TlsCertificates};
use tokio::sync::Notify;

use super::connection::{connection_config, redis_error, validate_prefix};
use super::entries::duration_millis;
use super::scripts::Scripts;
use super::RedisStore;
use crate::durable::server_config::server_setters;
use crate::durable::{defaults, Limits, Secrets, Tls};
use crate::error::{BackendError, BackendErrorKind};

/// The key prefix unless [`RedisConfig::prefix`] says otherwise.
const DEFAULT_PREFIX: &str = "emitter";

/// Deliveries without an outcome before a claim dead-letters an entry (see the module docs).
const DEFAULT_MAX_DELIVERIES: u32 = 100;

/// How to reach Redis and lay out the store: a builder for [`RedisStore`].
///
/// ```no_run
/// # async fn run() -> Result<(), emitter::BackendError> {
/// use std::time::Duration;
/// use emitter::durable::redis::RedisConfig;
/// use emitter::durable::Tls;
///
/// let store = RedisConfig::new("rediss://:secret@cache.internal:6380/0")
///     .prefix("shop")
///     .tls(Tls::CaFile("/etc/ssl/cache-ca.pem".into()))
///     .operation_timeout(Duration::from_secs(10))
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// Its `Debug` output shows where it connects, never the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    url: String,
    /// The prefix of every key (default `emitter`).
    pub(super) prefix: String,
    /// How connections are secured (default: from the URL's scheme).
    tls: Option<Tls>,
    /// Deliveries without an outcome before a claim dead-letters an entry (default 100).
    pub(super) max_deliveries: u32,
    /// How long connecting may take (default 10 s).
    pub(super) connect_timeout: Option<Duration>,
    /// How long one command or script may wait for the server (default 30 s).
    pub(super) operation_timeout: Duration,
    /// How long idempotency keys are kept until `open` says otherwise (default 7 days).
    key_retention: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &Secrets::of_url(&self.url).scrub(&self.url))
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .field("max_deliveries", &self.max_deliveries)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("key_retention", &self.key_retention)
            .finish()
    }
}

server_setters!(
    RedisConfig,
    "[`Tls::Require`] for a `rediss://` URL, else [`Tls::Disable`]; [`Tls::Require`] or \
     [`Tls::CaFile`] on a `redis://` URL connect with TLS all the same, [`Tls::Disable`] on a \
     `rediss://` URL is refused as a contradiction"
);

impl RedisConfig {
    /// A configuration for the server at `url`: `redis://[user][:password@]host[:port][/db]`,
    /// or `rediss://` for TLS. The URL is read by [`RedisConfig::connect`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            tls: None,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            connect_timeout: None,
            operation_timeout: defaults::OPERATION_TIMEOUT,
            key_retention: defaults::KEY_RETENTION,
        }
    }

    /// The prefix of every key the store uses (default `emitter`): 1 to 64 characters among
    /// ASCII letters, digits, `_`, `:`, `.` and `-`. Stores with different prefixes share a
    /// database without seeing each other's deliveries.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many times an entry may be delivered without an outcome (its workers died or lost
    /// their leases) before a claim dead-letters it (default 100; at least 1). Keep it above the
    /// largest listener attempts plus the engine's `extra_claims`, which normally catch a crash
    /// loop first.
    pub fn max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// Checks the configuration, connects to the server, and returns the store. The keys are
    /// set up by [`Store::open`](crate::durable::Store::open) (the engine calls it when the
    /// emitter starts).
    ///
    /// # Errors
    ///
    /// When the URL, the prefix or the TLS settings are invalid, or the server cannot be
    /// reached. The URL's password appears in no error, log line or `Debug` output.
    pub async fn connect(self) -> Result<RedisStore, BackendError> {
        validate_prefix(&self.prefix)?;
        let secrets = Secrets::of_url(&self.url);
        let misconfigured = |message: String| {
            BackendError::of(BackendErrorKind::Misconfigured, secrets.scrub(&message))
        };
        let tls_url = self.url.starts_with("rediss://");
        let tls = self
            .tls
            .clone()
            .unwrap_or(if tls_url { Tls::Require } else { Tls::Disable });
        let url = match (tls.enabled(), tls_url) {
            (true, false) => match self.url.strip_prefix("redis://") {
                Some(rest) => format!("rediss://{rest}"),
                None => {
                    return Err(misconfigured(format!(
                        "TLS ({tls:?}) needs a `redis://` or `rediss://` URL, not `{}`",
                        self.url
                    )))
                }
            },
            (false, true) => {
                return Err(misconfigured(
                    "the URL asks for TLS (`rediss://`) but the config says `Tls::Disable`: \
                     use a `redis://` URL, or another `Tls`"
                        .to_owned(),
                ))
            }
            _ => self.url.clone(),
        };
        let client = match tls.ca_pem("Redis")? {
            None => Client::open(url.as_str()),
            Some(pem) => Client::build_with_tls(
                url.as_str(),
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            ),
        }
        .map_err(|error| misconfigured(format!("invalid Redis URL or TLS settings: {error}")))?;
        let addr = client.get_connection_info().addr();
        let address = addr.to_string();
        if matches!(addr, ConnectionAddr::TcpTls { .. }) {
            // redis-rs builds its rustls configuration with the process-wide crypto provider;
            // ours is `ring`. An error means the application installed one already, as good.
            let _ = ::rustls::crypto::ring::default_provider().install_default();
        }
        let manager = connection_config(&self).set_response_timeout(Some(self.operation_timeout));
        let connection = ConnectionManager::new_with_config(client.clone(), manager)
            .await
            .map_err(|error| redis_error(&address, "connect", error))?;
        Ok(RedisStore {
            connection,
            client,
            waiter: tokio::sync::Mutex::new(None),
            work: Notify::new(),
            address,
            key_retention_ms: AtomicU64::new(duration_millis(self.key_retention)),
            config: self,
            watched: Mutex::new(Vec::new()),
            delivered: Mutex::new(HashMap::new()),
            ready: Mutex::new(HashSet::new()),
            concurrency: Limits::default(),
            scripts: Scripts::new(),
        })
    }
}
