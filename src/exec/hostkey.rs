//! Asking an SSH server for its host keys, so an administrator can pin
//! them: one handshake per key type, each offering only that type, as
//! `ssh-keyscan` does.

use super::ssh::{self, Target};
use crate::domain::HostKey;
use russh::keys::Algorithm;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why no host key could be read.
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

/// The key types to ask for, one algorithm each, of those the target
/// offers (its `host_key_algorithms`).
fn key_types(offered: &[Algorithm]) -> Vec<Algorithm> {
    let mut types: Vec<Algorithm> = Vec::new();
    for a in offered {
        let same = |b: &Algorithm| {
            b == a || (matches!(a, Algorithm::Rsa { .. }) && matches!(b, Algorithm::Rsa { .. }))
        };
        if !types.iter().any(same) {
            types.push(a.clone());
        }
    }
    types
}

/// Every host key a server at `address:port` offers, with the default
/// algorithms and no bastion between.
pub async fn scan_address(
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<HostKey>, ScanError> {
    let target = Target {
        address: address.to_string(),
        port,
        ..Target::local()
    };
    scan_host_keys(&target, timeout).await
}

/// Connects to the target (through its `via` devices, logged in there
/// with their credentials) and reads every host key it offers, without
/// authenticating to it. Keys come in the order of the target's
/// host key algorithms.
pub async fn scan_host_keys(target: &Target, timeout: Duration) -> Result<Vec<HostKey>, ScanError> {
    let error = |message: String| ScanError::Connect {
        address: target.address.clone(),
        port: target.port,
        message,
    };
    let via = match &target.via {
        Some(jump) => Some(
            ssh::connect(jump, timeout, timeout)
                .await
                .map_err(|e| error(format!("through device '{}': {e}", jump.device)))?,
        ),
        None => None,
    };
    let scans = key_types(&target.preferred.key)
        .into_iter()
        .map(|algorithm| {
            let via = via.as_ref();
            async move {
                let seen = Arc::new(Mutex::new(None));
                let config = Arc::new(russh::client::Config {
                    inactivity_timeout: Some(timeout),
                    preferred: russh::Preferred {
                        key: std::borrow::Cow::Owned(vec![algorithm]),
                        ..target.preferred.clone()
                    },
                    ..Default::default()
                });
                let handler = KeyCatcher { seen: seen.clone() };
                let attempt = tokio::time::timeout(timeout, async {
                    match via {
                        None => russh::client::connect(
                            config,
                            (ssh::host(&target.address), target.port),
                            handler,
                        )
                        .await
                        .map(|_| ()),
                        Some(jump) => {
                            let channel = jump
                                .handle
                                .channel_open_direct_tcpip(
                                    ssh::host(&target.address),
                                    target.port.into(),
                                    "127.0.0.1",
                                    0,
                                )
                                .await?;
                            russh::client::connect_stream(config, channel.into_stream(), handler)
                                .await
                                .map(|_| ())
                        }
                    }
                })
                .await;
                let found = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
                match (found, attempt) {
                    (Some(key), _) => Ok(key),
                    (None, Err(_)) => Err(ScanError::Timeout {
                        address: target.address.clone(),
                        port: target.port,
                        timeout,
                    }),
                    (None, Ok(Err(e))) => Err(error(e.to_string())),
                    (None, Ok(Ok(()))) => Err(error("the server offered no host key".into())),
                }
            }
        });
    let results = futures::future::join_all(scans).await;
    if let Some(via) = via {
        via.close().await;
    }
    let mut keys = Vec::new();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(k) if !keys.contains(&k) => keys.push(k),
            Ok(_) => {}
            // A key type the server does not have is no error.
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (keys.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(error("the server offered no host key".into())),
        (false, _) => Ok(keys),
    }
}
