//! A device's pinned SSH host key.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Key types OpenSSH prints in `.pub` files and `ssh-keyscan` output.
const KEY_TYPES: [&str; 8] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// A pinned host key: the full public key, or only its SHA-256 fingerprint.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostKey {
    PublicKey { algorithm: String, blob: Vec<u8> },
    Fingerprint(String),
}

impl HostKey {
    /// Parses `ssh-ed25519 AAAA… [comment]`, an `ssh-keyscan` line
    /// (`host ssh-ed25519 AAAA…`) or `SHA256:…`.
    pub fn parse(text: &str) -> Result<HostKey, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("SHA256:") {
            let decoded = STANDARD_NO_PAD
                .decode(rest.trim_end_matches('='))
                .map_err(|_| "a SHA256 fingerprint must be base64 after 'SHA256:'".to_string())?;
            if decoded.len() != 32 {
                return Err(format!(
                    "a SHA256 fingerprint holds 32 bytes, this one {}",
                    decoded.len()
                ));
            }
            return Ok(HostKey::Fingerprint(format!(
                "SHA256:{}",
                STANDARD_NO_PAD.encode(decoded)
            )));
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| KEY_TYPES.contains(w))
            .ok_or_else(|| {
                "expected an OpenSSH public key ('ssh-ed25519 AAAA…') or a 'SHA256:…' fingerprint"
                    .to_string()
            })?;
        let algorithm = words[at].to_string();
        let encoded = words
            .get(at + 1)
            .ok_or_else(|| format!("the key data after '{algorithm}' is missing"))?;
        let blob = STANDARD
            .decode(encoded)
            .map_err(|_| format!("the key data after '{algorithm}' is not valid base64"))?;
        if blob_algorithm(&blob).as_deref() != Some(algorithm.as_str()) {
            return Err(format!("the key data does not hold a '{algorithm}' key"));
        }
        Ok(HostKey::PublicKey { algorithm, blob })
    }

    /// The key's fingerprint as OpenSSH prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        match self {
            HostKey::PublicKey { blob, .. } => fingerprint_of_blob(blob),
            HostKey::Fingerprint(f) => f.clone(),
        }
    }

    /// Whether a key a server offered, given by its fingerprint, is this one.
    pub fn matches_fingerprint(&self, offered: &str) -> bool {
        self.fingerprint() == offered
    }
}

/// The OpenSSH SHA-256 fingerprint of a public key in wire format.
pub fn fingerprint_of_blob(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// The algorithm name a public key blob starts with (a length-prefixed string).
fn blob_algorithm(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(0..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKey::PublicKey { algorithm, blob } => {
                write!(f, "{algorithm} {}", STANDARD.encode(blob))
            }
            HostKey::Fingerprint(fp) => f.write_str(fp),
        }
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 public key, made by ssh-keygen.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";

    #[test]
    fn parses_a_pub_file_line_and_a_keyscan_line_to_the_same_key() {
        let a = HostKey::parse(KEY).unwrap();
        let b = HostKey::parse(&format!("[10.0.0.1]:2222 {}", &KEY[..KEY.len() - 5])).unwrap();
        assert_eq!(a, b);
        assert!(a.fingerprint().starts_with("SHA256:"));
        assert_eq!(
            HostKey::parse(&a.fingerprint()).unwrap().fingerprint(),
            a.fingerprint()
        );
    }

    #[test]
    fn refuses_text_that_is_no_key() {
        assert!(HostKey::parse("hello").is_err());
        assert!(HostKey::parse("ssh-ed25519 !!!").is_err());
        assert!(HostKey::parse(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        )
        .is_err());
        assert!(HostKey::parse("SHA256:abc").is_err());
    }
}
