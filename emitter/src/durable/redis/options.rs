//! [`RedisOptions`]: the key prefix, timeouts and TLS authorities of a [`RedisStore`](super::RedisStore).

use std::fmt;
use std::time::Duration;

/// The key prefix unless [`RedisOptions::prefix`] says otherwise.
const DEFAULT_PREFIX: &str = "emitter";

/// Deliveries without an outcome before a claim dead-letters an entry (see the module docs).
const DEFAULT_MAX_DELIVERIES: u32 = 100;

/// Options of [`RedisStore::connect_with`](super::RedisStore::connect_with); [`RedisOptions::new`] (or `default`) gives the
/// defaults documented on each method.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    pub(super) prefix: String,
    pub(super) max_deliveries: u32,
    pub(super) connection_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) tls_root_certificates: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            connection_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            tls_root_certificates: None,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("prefix", &self.prefix)
            .field("max_deliveries", &self.max_deliveries)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field(
                "tls_root_certificates",
                &self
                    .tls_root_certificates
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .finish()
    }
}

impl RedisOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
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

    /// How long connecting to the server may take (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long the server may take to answer a command (default 10 s). A claim or an insert of
    /// a large batch runs as one script (or transaction), so keep this well above their
    /// duration.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The certificate authorities to trust for a `rediss://` server, in PEM, instead of the
    /// system's (default: the system's, as `rustls-native-certs` finds them). For a server whose
    /// certificate a private authority signed.
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificates = Some(pem.into());
        self
    }
}
