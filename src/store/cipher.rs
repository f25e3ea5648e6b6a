//! Sealing secrets at rest with XChaCha20-Poly1305 and a key file beside the store.

use super::{StoreError, StoreResult};
use crate::domain::Sealed;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// Binds every sealed value to its purpose, so a ciphertext can't be replayed
/// as a different kind of value.
const AAD: &[u8] = b"gatehouse secret v1";
const NONCE_LEN: usize = 24;

/// Seals and opens secrets. Holds the key; never printed.
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(..)")
    }
}

impl SecretCipher {
    /// Reads the key file, or creates it (mode 0600, 32 random bytes) when absent.
    pub fn load_or_create(path: &Path) -> StoreResult<SecretCipher> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let key: Zeroizing<Vec<u8>> = match std::fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new(vec![0u8; 32]);
                rand::rngs::OsRng.fill_bytes(&mut key);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                file.write_all(&key).map_err(io)?;
                file.sync_all().map_err(io)?;
                key
            }
            Err(e) => return Err(io(e)),
        };
        if key.len() != 32 {
            return Err(StoreError::BadKeyFile(path.to_path_buf()));
        }
        // An existing key file readable by others is tightened, not trusted as is.
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        let aead = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| StoreError::BadKeyFile(path.to_path_buf()))?;
        Ok(SecretCipher { aead })
    }

    /// Encrypts a secret under a fresh random nonce.
    pub fn seal(&self, plain: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: AAD,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend(ciphertext);
        Sealed(out)
    }

    /// Decrypts a sealed secret; the plain text is wiped when dropped.
    pub fn open(&self, sealed: &Sealed) -> StoreResult<Zeroizing<Vec<u8>>> {
        if sealed.0.len() < NONCE_LEN {
            return Err(StoreError::SecretOpen);
        }
        let (nonce, ciphertext) = sealed.0.split_at(NONCE_LEN);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: AAD,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| StoreError::SecretOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let cipher = SecretCipher::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = cipher.seal(b"hunter2");
        assert!(!sealed.0.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(&cipher.open(&sealed).unwrap()[..], b"hunter2");
        let again = SecretCipher::load_or_create(&path).unwrap();
        assert_eq!(&again.open(&sealed).unwrap()[..], b"hunter2");
        let mut bad = sealed.clone();
        let last = bad.0.len() - 1;
        bad.0[last] ^= 1;
        assert!(cipher.open(&bad).is_err());
    }
}
