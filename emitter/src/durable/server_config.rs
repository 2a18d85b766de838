//! The settings every network store's config has, with their setters written once.

/// Implements, on a config struct with the fields `tls: Option<Tls>`, `connect_timeout:
/// Option<Duration>`, `operation_timeout: Duration` and `key_retention: Duration`, the setters of
/// the same names, so that `PostgresConfig` and `RedisConfig` name and document them alike.
/// `$tls_default` says what the URL decides when `tls` is not set.
macro_rules! server_setters {
    ($config:ty, $tls_default:literal) => {
        impl $config {
            #[doc = concat!("How connections are secured (default: ", $tls_default, ").")]
            pub fn tls(mut self, tls: $crate::durable::Tls) -> Self {
                self.tls = Some(tls);
                self
            }

            /// How long connecting to the server may take (default 10 s, unless the URL sets
            /// a timeout of its own).
            pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.connect_timeout = Some(timeout);
                self
            }

            /// How long one call may wait for a connection and the server's answer (default
            /// 30 s); after that it fails as [`TimedOut`](crate::BackendErrorKind::TimedOut),
            /// so that a server that hangs (a network partition, say) fails calls instead of
            /// stalling the workers. A large batch runs as one statement or script: keep this
            /// well above its duration.
            pub fn operation_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.operation_timeout = timeout;
                self
            }

            /// How long idempotency keys are kept until
            /// [`Store::open`](crate::durable::Store::open) sets it from the engine's
            /// configuration (default 7 days). For a store used without the engine.
            pub fn key_retention(mut self, retention: std::time::Duration) -> Self {
                self.key_retention = retention;
                self
            }
        }
    };
}

pub(crate) use server_setters;

/// `Ok` if a name the config was given (a schema, a key prefix) is `valid`, else a
/// [`Misconfigured`](crate::BackendErrorKind::Misconfigured) error saying what is allowed.
pub(crate) fn check_name(
    valid: bool,
    what_is_allowed: impl FnOnce() -> String,
) -> Result<(), crate::BackendError> {
    if valid {
        Ok(())
    } else {
        Err(crate::BackendError::of(
            crate::BackendErrorKind::Misconfigured,
            what_is_allowed(),
        ))
    }
}
