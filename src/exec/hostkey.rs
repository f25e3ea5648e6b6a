//! Asking an SSH server for its host key, so an administrator can pin it.

use crate::domain::HostKey;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a host key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{address}:{port}: no answer within {timeout:?}")]
    Timeout {
        address: String,
        port: u16,
        timeout: Duration,
    },
    #[error("{address}:{port}: {message}")]
    Connect {
        address: String,
        port: u16,
        message: String,
    },
}

/// Records the key the server offers and refuses it, ending the handshake.
struct KeyCatcher {
    seen: Arc<Mutex<Option<HostKey>>>,
}

impl russh::client::Handler for KeyCatcher {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match offered {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone())
            }
        };
        if let Ok(blob) = key.to_bytes() {
            let algorithm = key.algorithm().as_str().to_string();
            *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(HostKey::PublicKey { algorithm, blob });
        }
        Ok(false)
    }
}

/// Connects to `address:port`, reads the host key the server offers and
/// disconnects without authenticating.
pub async fn scan_host_key(
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<HostKey, ScanError> {
    let seen = Arc::new(Mutex::new(None));
    let config = Arc::new(russh::client::Config {
        inactivity_timeout: Some(timeout),
        ..Default::default()
    });
    let handler = KeyCatcher { seen: seen.clone() };
    let attempt = tokio::time::timeout(
        timeout,
        russh::client::connect(config, (super::ssh::host(address), port), handler),
    )
    .await;
    let found = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (found, attempt) {
        (Some(key), _) => Ok(key),
        (None, Err(_)) => Err(ScanError::Timeout {
            address: address.to_string(),
            port,
            timeout,
        }),
        (None, Ok(Err(e))) => Err(ScanError::Connect {
            address: address.to_string(),
            port,
            message: e.to_string(),
        }),
        (None, Ok(Ok(_))) => Err(ScanError::Connect {
            address: address.to_string(),
            port,
            message: "the server offered no host key".into(),
        }),
    }
}
