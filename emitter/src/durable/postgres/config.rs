//! [`PostgresConfig`]: where the server is and how the store lays out its tables.

use std::fmt;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::connection::{rustls_connector, Connect, Connector};
use super::errors::{chain, describe_address, describe_failure, describe_target};
use super::params::duration_ms;
use super::pool::Pool;
use super::statements::{channel_of, Statements};
use super::{Inner, PostgresStore};
use crate::durable::server_config::{check_name, server_setters};
use crate::durable::{defaults, Limits, Secrets, Tls};
use crate::error::{BackendError, BackendErrorKind};

/// The default schema.
const DEFAULT_SCHEMA: &str = "emitter";
/// The longest schema name: the notification channel `<schema>_deliveries` must fit in
/// PostgreSQL's 63-byte identifiers.
const MAX_SCHEMA_LEN: usize = 48;

/// How to reach PostgreSQL and lay out the store: a builder for [`PostgresStore`].
///
/// ```no_run
/// # async fn run() -> Result<(), emitter::BackendError> {
/// use std::time::Duration;
/// use emitter::durable::postgres::{PostgresConfig, Tls};
///
/// let store = PostgresConfig::new("postgres://app:secret@db.internal:5432/app")
///     .schema("billing_events")
///     .tls(Tls::CaFile("/etc/ssl/db-ca.pem".into()))
///     .pool_size(8)
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
pub struct PostgresConfig {
    url: String,
    /// The schema holding the store's tables (default `emitter`).
    schema: String,
    /// How connections are secured (default: from the URL's `sslmode`).
    tls: Option<Tls>,
    /// How many connections serve the methods (default 4).
    pool_size: usize,
    /// How long connecting may take (default: the URL's `connect_timeout`, else 10 s).
    connect_timeout: Option<Duration>,
    /// How long one method may wait for the server (default 30 s).
    operation_timeout: Duration,
    /// How long idempotency keys are kept until `open` says otherwise (default 7 days).
    key_retention: Duration,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.url.parse::<tokio_postgres::Config>() {
            Ok(config) => describe_target(&config),
            Err(_) => "<an invalid URL, not shown>".to_owned(),
        };
        f.debug_struct("PostgresConfig")
            .field("server", &target)
            .field("schema", &self.schema)
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("key_retention", &self.key_retention)
            .finish()
    }
}

server_setters!(
    PostgresConfig,
    "[`Tls::Require`] when the URL says `sslmode=require`, else [`Tls::Disable`]"
);

impl PostgresConfig {
    /// A configuration for the server at `url`, a libpq connection string: a URL such as
    /// `postgres://user:password@host:5432/database?sslmode=require`, or key-value pairs such as
    /// `host=localhost user=app dbname=app`. The URL is read by [`PostgresConfig::connect`].
    ///
    /// When the URL sets no `connect_timeout`, connecting gives up after 10 seconds.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            tls: None,
            pool_size: 4,
            connect_timeout: None,
            operation_timeout: defaults::OPERATION_TIMEOUT,
            key_retention: defaults::KEY_RETENTION,
        }
    }

    /// The schema that holds the store's tables (default `emitter`): lower-case ASCII letters,
    /// digits and `_`, not starting with a digit, at most 48 characters. Stores in different
    /// schemas of one database are independent.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// How many connections serve the store's methods (default 4, at least 1). Calls beyond that
    /// wait for a connection. [`Store::wait_for_work`](crate::durable::Store::wait_for_work) uses one more, of its own.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// Checks the configuration, connects to the server once to see that it answers, and
    /// returns the store. The schema is created or migrated by [`Store::open`](crate::durable::Store::open) (the engine calls
    /// it when the emitter starts) or [`PostgresStore::migrate`].
    ///
    /// # Errors
    ///
    /// When the URL cannot be read, the schema name is invalid, the CA file cannot be read, or
    /// the server cannot be reached or refuses the connection.
    pub async fn connect(self) -> Result<PostgresStore, BackendError> {
        let mut secrets = Secrets::of_url(&self.url);
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|error| {
            BackendError::of(
                BackendErrorKind::Misconfigured,
                secrets.scrub(&format!("invalid PostgreSQL URL: {}", chain(&error))),
            )
        })?;
        validate_schema(&self.schema)?;
        let tls = match self.tls.clone() {
            Some(tls) => tls,
            None if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require => {
                Tls::Require
            }
            None => Tls::Disable,
        };
        let connector = match &tls {
            Tls::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Connector::Plain
            }
            Tls::Require | Tls::CaFile(_) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Connector::Rustls(rustls_connector(&tls)?)
            }
        };
        match self.connect_timeout {
            Some(timeout) => {
                config.connect_timeout(timeout);
            }
            None if config.get_connect_timeout().is_none() => {
                config.connect_timeout(defaults::CONNECT_TIMEOUT);
            }
            None => {}
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 3600) {
            // libpq's default of two hours would leave the wake-up connection dead for that long
            // after a network partition.
            config.keepalives_idle(Duration::from_secs(60));
        }
        if let Some(password) = config.get_password() {
            secrets.add(&String::from_utf8_lossy(password));
        }
        let connect = Connect {
            address: describe_address(&config).into(),
            config,
            connector,
            secrets: Arc::new(secrets),
        };
        let schema = self.schema;
        let inner = Inner {
            sql: Statements::new(&schema),
            channel: channel_of(&schema),
            schema,
            pool: Pool::new(connect.clone(), self.pool_size).map_err(|failure| {
                describe_failure(
                    "could not set up the connection pool",
                    None,
                    &connect.secrets,
                    &failure,
                )
            })?,
            connect,
            timeout: self.operation_timeout,
            key_retention_ms: AtomicI64::new(duration_ms(self.key_retention)),
            next_key_purge: AtomicI64::new(0),
            work: Arc::new(Notify::new()),
            listening: Arc::new(watch::Sender::new(false)),
            listener: Mutex::new(None),
            concurrency: Limits::default(),
        };
        let store = PostgresStore {
            inner: Arc::new(inner),
        };
        // One connection now, so that a wrong address or password fails here, not at start.
        store
            .attempt("connect", async {
                let mut pooled = store.inner.pool.get().await?;
                pooled.done(&Ok(()), true);
                Ok(())
            })
            .await?;
        Ok(store)
    }
}

pub(super) fn validate_schema(name: &str) -> Result<(), BackendError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_SCHEMA_LEN
        && !name.starts_with("pg_");
    check_name(valid, || {
        format!(
            "invalid PostgreSQL schema name {name:?} for the emitter store: use lower-case ASCII \
             letters, digits and `_`, starting with a letter or `_` (not `pg_`), at most \
             {MAX_SCHEMA_LEN} characters"
        )
    })
}
