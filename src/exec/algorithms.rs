//! The algorithms a connection offers, as russh takes them: the lists of
//! `domain::SshOptions` (OpenSSH's defaults, changed by the environment and
//! the device), with the pinned host keys' algorithms first; and the
//! message for a server with nothing in common, naming the setting to change.

use crate::domain::{AlgorithmList, HostKey, SshOptions};
use russh::keys::Algorithm;
use std::borrow::Cow;
use std::str::FromStr;

/// Extension markers russh puts in the key exchange list: not algorithms,
/// but needed for `ext-info` and strict key exchange (Terrapin).
const KEX_EXTENSIONS: [russh::kex::Name; 2] = [
    russh::kex::EXTENSION_SUPPORT_AS_CLIENT,
    russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// What a connection to a device offers. `pinned` puts the algorithms of
/// the pinned host keys first, as OpenSSH does with the keys it knows for a
/// host, so that a host with several keys shows one that is pinned.
pub fn preferred(
    device: &SshOptions,
    environment: &SshOptions,
    pinned: &[HostKey],
) -> Result<russh::Preferred, String> {
    let names = |list| {
        device
            .resolve(environment, list)
            .map_err(|e| format!("ssh_options.{list}: {e}"))
    };
    let mut kex = Vec::new();
    for name in names(AlgorithmList::Kex)? {
        kex.push(russh::kex::Name::try_from(name.as_str()).map_err(|_| unsupported("kex", &name))?);
    }
    kex.extend(KEX_EXTENSIONS);
    let mut cipher = Vec::new();
    for name in names(AlgorithmList::Ciphers)? {
        cipher.push(
            russh::cipher::Name::try_from(name.as_str())
                .map_err(|_| unsupported("ciphers", &name))?,
        );
    }
    let mut mac = Vec::new();
    for name in names(AlgorithmList::Macs)? {
        mac.push(
            russh::mac::Name::try_from(name.as_str()).map_err(|_| unsupported("macs", &name))?,
        );
    }
    let mut key = Vec::new();
    for name in names(AlgorithmList::HostKeyAlgorithms)? {
        key.push(
            Algorithm::from_str(&name).map_err(|_| unsupported("host_key_algorithms", &name))?,
        );
    }
    // Stable: the pinned keys' algorithms first, the rest in order.
    key.sort_by_key(|a| !pinned.iter().any(|p| pinned_family(p, a)));
    Ok(russh::Preferred {
        kex: Cow::Owned(kex),
        key: Cow::Owned(key),
        cipher: Cow::Owned(cipher),
        mac: Cow::Owned(mac),
        ..russh::Preferred::default()
    })
}

/// Whether a host key algorithm can show a pinned key: the key's own, or
/// for an RSA key any of the RSA signature algorithms.
fn pinned_family(pinned: &HostKey, algorithm: &Algorithm) -> bool {
    let HostKey::PublicKey {
        algorithm: kind, ..
    } = pinned
    else {
        return false;
    };
    if kind == "ssh-rsa" {
        matches!(algorithm, Algorithm::Rsa { .. })
    } else {
        algorithm.as_str() == kind
    }
}

fn unsupported(list: &str, name: &str) -> String {
    format!("ssh_options.{list}: '{name}' is not an algorithm this build of Gatehouse has")
}

/// The host key algorithms one per key type, to ask a server for each of
/// its keys in turn (`device trust`).
pub fn one_per_key_type() -> Vec<Algorithm> {
    [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-512",
    ]
    .iter()
    .filter_map(|n| Algorithm::from_str(n).ok())
    .collect()
}

/// The message for a server that shares no algorithm of one kind with
/// Gatehouse: both lists, and the setting that would allow one of the
/// server's (when Gatehouse has one).
pub fn no_common(kind: &russh::AlgorithmKind, ours: &[String], theirs: &[String]) -> String {
    use russh::AlgorithmKind as K;
    // The server's names are the server's words: screened before use.
    let theirs: Vec<String> = theirs
        .iter()
        .map(|t| crate::text::printable(&crate::text::clipped(t, 80)))
        .collect();
    let theirs = theirs.as_slice();
    let list = match kind {
        K::Kex => AlgorithmList::Kex,
        K::Cipher => AlgorithmList::Ciphers,
        K::Mac => AlgorithmList::Macs,
        K::Key => AlgorithmList::HostKeyAlgorithms,
        K::Compression => {
            return format!(
                "no compression method in common (Gatehouse offers {}; the server offers {})",
                ours.join(", "),
                theirs.join(", ")
            )
        }
    };
    let ours: Vec<&String> = ours
        .iter()
        .filter(|n| !n.starts_with("ext-info") && !n.starts_with("kex-strict"))
        .collect();
    let fix = theirs
        .iter()
        .find(|t| list.supported().contains(&t.as_str()))
        .map(|t| {
            format!(
                "; to allow it, set ssh_options.{} = \"+{t}\" on the device or its environment (OpenSSH: {} +{t})",
                list.key(),
                list.openssh_option()
            )
        })
        .unwrap_or_else(|| "; Gatehouse supports none of the server's".into());
    format!(
        "no {} in common: Gatehouse offers {}; the server offers {}{fix}",
        match list {
            AlgorithmList::Kex => "key exchange",
            AlgorithmList::Ciphers => "cipher",
            AlgorithmList::Macs => "MAC",
            AlgorithmList::HostKeyAlgorithms => "host key algorithm",
        },
        ours.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        theirs.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_name_is_one_russh_implements() {
        for list in AlgorithmList::ALL {
            let o = match list {
                AlgorithmList::Kex => SshOptions {
                    kex: list.supported().join(","),
                    ..Default::default()
                },
                AlgorithmList::Ciphers => SshOptions {
                    ciphers: list.supported().join(","),
                    ..Default::default()
                },
                AlgorithmList::Macs => SshOptions {
                    macs: list.supported().join(","),
                    ..Default::default()
                },
                AlgorithmList::HostKeyAlgorithms => SshOptions {
                    host_key_algorithms: list.supported().join(","),
                    ..Default::default()
                },
            };
            let p = preferred(&o, &SshOptions::default(), &[]).unwrap();
            let n = match list {
                AlgorithmList::Kex => p.kex.len() - KEX_EXTENSIONS.len(),
                AlgorithmList::Ciphers => p.cipher.len(),
                AlgorithmList::Macs => p.mac.len(),
                AlgorithmList::HostKeyAlgorithms => p.key.len(),
            };
            assert_eq!(n, list.supported().len(), "{list}");
        }
    }

    #[test]
    fn a_refusal_names_the_setting_that_allows_the_servers_algorithm() {
        let m = no_common(
            &russh::AlgorithmKind::Mac,
            &["hmac-sha2-256".into()],
            &["hmac-sha1".into()],
        );
        assert!(m.contains("ssh_options.macs = \"+hmac-sha1\""), "{m}");
        assert!(m.contains("Gatehouse offers hmac-sha2-256"), "{m}");
        assert!(m.contains("the server offers hmac-sha1"), "{m}");
        // A server's names are screened: no escape reaches a terminal.
        let m = no_common(
            &russh::AlgorithmKind::Mac,
            &["hmac-sha2-256".into()],
            &["\x1b[2Jwiped".into()],
        );
        assert!(!m.contains('\x1b'), "{m:?}");
        assert!(m.contains("wiped"), "{m}");
    }
}
