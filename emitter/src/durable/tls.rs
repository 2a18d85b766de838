//! [`Tls`]: how the network stores secure their connections, one model for both.

use std::path::{Path, PathBuf};

use crate::error::{BackendError, BackendErrorKind};

/// How a network store (PostgreSQL, Redis) secures its connections. Unless a config says
/// otherwise, the URL decides: PostgreSQL's `sslmode=require` and Redis's `rediss://` mean
/// [`Tls::Require`], anything else [`Tls::Disable`].
///
/// Certificates are always verified (there is no "encrypt but trust anyone" mode), through
/// rustls with the `ring` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// Plain TCP: for a server on the same host (loopback) or a private network.
    Disable,
    /// TLS, required, with the server's certificate verified against the system's root
    /// certificates (as `rustls-native-certs` finds them): for managed servers with public
    /// certificates.
    Require,
    /// TLS, required, with the server's certificate verified against the certificates of this
    /// PEM file only (a private authority, or the server's own self-signed certificate).
    CaFile(PathBuf),
}

impl Tls {
    /// Whether connections are encrypted.
    pub(crate) fn enabled(&self) -> bool {
        !matches!(self, Tls::Disable)
    }

    /// The PEM certificates of [`Tls::CaFile`], read and checked to hold at least one;
    /// `None` for the system's roots. `server` names the store in errors ("PostgreSQL").
    pub(crate) fn ca_pem(&self, server: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let Tls::CaFile(path) = self else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|error| unreadable(path, server, &error))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(unreadable(
                path,
                server,
                &"it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            ));
        }
        Ok(Some(pem))
    }
}

fn unreadable(path: &Path, server: &str, error: &dyn std::fmt::Display) -> BackendError {
    BackendError::of(
        BackendErrorKind::Misconfigured,
        format!(
            "cannot read the CA file {} for {server}'s TLS: {error}",
            path.display()
        ),
    )
}
