//! Opening connections (plain or TLS) and listening for notifications.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::errors::{describe_failure, Failure};
use super::statements::quote;
use crate::durable::Secrets;
use crate::durable::Tls;
use crate::error::{BackendError, BackendErrorKind};

/// How long the notification listener waits before it connects again: short, so that workers
/// hear of new deliveries soon after the server is back (the wake-up on its return is theirs).
/// A server that refuses costs one refused connection per wait.
const LISTEN_RETRY: Duration = Duration::from_millis(100);

/// A rustls connector trusting the roots `tls` names: its CA file's, or the system's.
pub(super) fn rustls_connector(tls: &Tls) -> Result<MakeRustlsConnect, BackendError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    match tls.ca_pem("PostgreSQL")? {
        Some(pem) => {
            for certificate in CertificateDer::pem_slice_iter(&pem) {
                let added = certificate
                    .map_err(|error| error.to_string())
                    .and_then(|certificate| roots.add(certificate).map_err(|e| e.to_string()));
                if let Err(error) = added {
                    return Err(BackendError::of(
                        BackendErrorKind::Misconfigured,
                        format!(
                            "a certificate of the CA file for PostgreSQL's TLS is invalid: {error}"
                        ),
                    ));
                }
            }
        }
        None => {
            // Certificates the system has but rustls cannot use are skipped: the server's
            // chain is verified against the others.
            let native = rustls_native_certs::load_native_certs();
            for certificate in native.certs {
                let _ = roots.add(certificate);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| BackendError::new(format!("cannot set up TLS for PostgreSQL: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[derive(Clone)]
pub(super) enum Connector {
    Plain,
    Rustls(MakeRustlsConnect),
}

/// How to open a connection.
#[derive(Clone)]
pub(super) struct Connect {
    pub(super) config: tokio_postgres::Config,
    pub(super) connector: Connector,
    /// `host:port`, for errors.
    pub(super) address: Arc<str>,
    /// The password, scrubbed from errors.
    pub(super) secrets: Arc<Secrets>,
}

impl Connect {
    /// Opens a connection, driven by a task of its own that ends when the client is dropped or
    /// the connection breaks; notifications wake `work`.
    pub(super) async fn client(
        &self,
        work: Option<Arc<Notify>>,
    ) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
        Ok(match &self.connector {
            Connector::Plain => {
                let (client, connection) = self.config.connect(NoTls).await?;
                (client, tokio::spawn(drive(connection, work)))
            }
            Connector::Rustls(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                (client, tokio::spawn(drive(connection, work)))
            }
        })
    }
}

/// Drives a connection until it ends, passing notifications on to `work`.
pub(super) async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    work: Option<Arc<Notify>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(_))) => {
                if let Some(work) = &work {
                    wake(work);
                }
            }
            Some(Ok(AsyncMessage::Notice(notice))) => {
                tracing::debug!("PostgreSQL notice: {}", notice.message());
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::debug!("a PostgreSQL connection of the emitter store ended: {error}");
                return;
            }
            None => return,
        }
    }
}

/// Wakes every waiter, and the next one to come if none waits: a notification between a
/// worker's claim and its wait is not lost.
pub(super) fn wake(work: &Notify) {
    work.notify_waiters();
    work.notify_one();
}

/// Listens for notifications on `channel` until aborted, reconnecting when the connection drops;
/// `listening` says whether its `LISTEN` is in place.
pub(super) async fn listen(
    connect: Connect,
    channel: String,
    work: Arc<Notify>,
    listening: Arc<watch::Sender<bool>>,
) {
    let mut connected_before = false;
    loop {
        let attempt = async {
            let (client, driver) = connect.client(Some(Arc::clone(&work))).await?;
            client
                .batch_execute(&format!("LISTEN {}", quote(&channel)))
                .await?;
            Ok::<_, tokio_postgres::Error>((client, driver))
        };
        match attempt.await {
            Ok((client, driver)) => {
                listening.send_replace(true);
                if connected_before {
                    // Notifications sent while we were away are lost: look for work now.
                    wake(&work);
                }
                connected_before = true;
                // The driver ends when the connection does.
                let _ = driver.await;
                listening.send_replace(false);
                drop(client);
            }
            Err(error) => {
                let error = describe_failure(
                    "could not listen for new deliveries",
                    Some(&connect.address),
                    &connect.secrets,
                    &Failure::Db(error),
                );
                tracing::debug!("{error}; retrying in {LISTEN_RETRY:?}");
            }
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}
