//! Which SSH algorithms a connection offers: the defaults of OpenSSH's
//! client (as far as russh implements them), changed per environment and
//! per device in OpenSSH's own syntax, as a user would in `ssh_config`:
//!
//! - `a,b` replaces the list;
//! - `+a,b` appends to it (what old gear needs: `+diffie-hellman-group14-sha1`);
//! - `-a,b` removes from it (wildcards allowed: `-*-cbc`);
//! - `^a,b` puts them first.
//!
//! The tables are names; `exec::algorithms` turns them into russh's types
//! and a test there checks every name here is one russh knows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Per-device (or per-environment) algorithm choices. Blank keeps what the
/// level above chose (the environment's, then the defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SshOptions {
    pub kex: String,
    pub ciphers: String,
    pub macs: String,
    pub host_key_algorithms: String,
}

/// One of the four lists an [`SshOptions`] changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgorithmList {
    Kex,
    Ciphers,
    Macs,
    HostKeyAlgorithms,
}

impl AlgorithmList {
    pub const ALL: [AlgorithmList; 4] = [
        AlgorithmList::Kex,
        AlgorithmList::Ciphers,
        AlgorithmList::Macs,
        AlgorithmList::HostKeyAlgorithms,
    ];

    /// The key in the import format (and the OpenSSH option it mirrors).
    pub fn key(self) -> &'static str {
        match self {
            AlgorithmList::Kex => "kex",
            AlgorithmList::Ciphers => "ciphers",
            AlgorithmList::Macs => "macs",
            AlgorithmList::HostKeyAlgorithms => "host_key_algorithms",
        }
    }

    /// The `ssh_config` option of the same meaning, for messages.
    pub fn openssh_option(self) -> &'static str {
        match self {
            AlgorithmList::Kex => "KexAlgorithms",
            AlgorithmList::Ciphers => "Ciphers",
            AlgorithmList::Macs => "MACs",
            AlgorithmList::HostKeyAlgorithms => "HostKeyAlgorithms",
        }
    }

    /// Every name Gatehouse can use, in no particular order.
    pub fn supported(self) -> &'static [&'static str] {
        match self {
            AlgorithmList::Kex => &[
                "mlkem768x25519-sha256",
                "curve25519-sha256",
                "curve25519-sha256@libssh.org",
                "ecdh-sha2-nistp256",
                "ecdh-sha2-nistp384",
                "ecdh-sha2-nistp521",
                "diffie-hellman-group-exchange-sha256",
                "diffie-hellman-group16-sha512",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group14-sha256",
                "diffie-hellman-group15-sha512",
                "diffie-hellman-group17-sha512",
                "diffie-hellman-group-exchange-sha1",
                "diffie-hellman-group14-sha1",
                "diffie-hellman-group1-sha1",
            ],
            AlgorithmList::Ciphers => &[
                "chacha20-poly1305@openssh.com",
                "aes128-ctr",
                "aes192-ctr",
                "aes256-ctr",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com",
                "aes128-cbc",
                "aes192-cbc",
                "aes256-cbc",
                "3des-cbc",
            ],
            AlgorithmList::Macs => &[
                "hmac-sha2-256-etm@openssh.com",
                "hmac-sha2-512-etm@openssh.com",
                "hmac-sha1-etm@openssh.com",
                "hmac-sha2-256",
                "hmac-sha2-512",
                "hmac-sha1",
            ],
            AlgorithmList::HostKeyAlgorithms => &[
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa",
            ],
        }
    }

    /// What OpenSSH's client (9.x) offers by default, in its order, of
    /// the names in [`supported`](Self::supported): SHA-1 key exchanges,
    /// CBC ciphers and `ssh-rsa` signatures are off unless enabled, as there.
    pub fn defaults(self) -> &'static [&'static str] {
        match self {
            AlgorithmList::Kex => &[
                "mlkem768x25519-sha256",
                "curve25519-sha256",
                "curve25519-sha256@libssh.org",
                "ecdh-sha2-nistp256",
                "ecdh-sha2-nistp384",
                "ecdh-sha2-nistp521",
                "diffie-hellman-group-exchange-sha256",
                "diffie-hellman-group16-sha512",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group14-sha256",
            ],
            AlgorithmList::Ciphers => &[
                "chacha20-poly1305@openssh.com",
                "aes128-ctr",
                "aes192-ctr",
                "aes256-ctr",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com",
            ],
            AlgorithmList::Macs => &[
                "hmac-sha2-256-etm@openssh.com",
                "hmac-sha2-512-etm@openssh.com",
                "hmac-sha1-etm@openssh.com",
                "hmac-sha2-256",
                "hmac-sha2-512",
                "hmac-sha1",
            ],
            AlgorithmList::HostKeyAlgorithms => &[
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521",
                "rsa-sha2-512",
                "rsa-sha2-256",
            ],
        }
    }
}

impl fmt::Display for AlgorithmList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl SshOptions {
    /// The setting of one list.
    pub fn get(&self, list: AlgorithmList) -> &str {
        match list {
            AlgorithmList::Kex => &self.kex,
            AlgorithmList::Ciphers => &self.ciphers,
            AlgorithmList::Macs => &self.macs,
            AlgorithmList::HostKeyAlgorithms => &self.host_key_algorithms,
        }
    }

    pub fn is_empty(&self) -> bool {
        AlgorithmList::ALL
            .iter()
            .all(|l| self.get(*l).trim().is_empty())
    }

    /// Checks every list: the names must be ones Gatehouse supports (a
    /// `-` list may use wildcards). The error names the list.
    pub fn check(&self) -> Result<(), (AlgorithmList, String)> {
        for list in AlgorithmList::ALL {
            apply(list.defaults(), list, self.get(list)).map_err(|e| (list, e))?;
        }
        Ok(())
    }

    /// The names a connection offers for one list: the defaults, changed
    /// by `outer` (the environment's options), then by `self` (the device's).
    pub fn resolve(&self, outer: &SshOptions, list: AlgorithmList) -> Result<Vec<String>, String> {
        let base: Vec<String> = list.defaults().iter().map(|s| s.to_string()).collect();
        let base = apply_owned(base, list, outer.get(list))?;
        apply_owned(base, list, self.get(list))
    }
}

fn apply(base: &[&'static str], list: AlgorithmList, setting: &str) -> Result<Vec<String>, String> {
    apply_owned(base.iter().map(|s| s.to_string()).collect(), list, setting)
}

/// Applies one setting in OpenSSH's syntax to a list.
fn apply_owned(
    base: Vec<String>,
    list: AlgorithmList,
    setting: &str,
) -> Result<Vec<String>, String> {
    let setting = setting.trim();
    if setting.is_empty() {
        return Ok(base);
    }
    let (op, rest) = match setting.chars().next() {
        Some(c @ ('+' | '-' | '^')) => (Some(c), &setting[1..]),
        _ => (None, setting),
    };
    let names: Vec<&str> = rest
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(format!("'{setting}' names no algorithm"));
    }
    let supported = list.supported();
    let known = |name: &str| -> Result<String, String> {
        if supported.contains(&name) {
            Ok(name.to_string())
        } else {
            Err(format!(
                "unknown {} '{name}'; Gatehouse supports: {}",
                match list {
                    AlgorithmList::Kex => "key exchange",
                    AlgorithmList::Ciphers => "cipher",
                    AlgorithmList::Macs => "MAC",
                    AlgorithmList::HostKeyAlgorithms => "host key algorithm",
                },
                supported.join(", ")
            ))
        }
    };
    match op {
        Some('-') => {
            // Wildcards as OpenSSH allows them in a removal.
            for n in &names {
                if !n.contains(['*', '?']) {
                    known(n)?;
                }
            }
            Ok(base
                .into_iter()
                .filter(|b| !names.iter().any(|n| crate::text::glob_matches(n, b)))
                .collect())
        }
        Some(c) => {
            let added: Vec<String> = names.iter().map(|n| known(n)).collect::<Result<_, _>>()?;
            let rest = base.into_iter().filter(|b| !added.contains(b));
            Ok(if c == '+' {
                rest.chain(added.iter().cloned()).collect()
            } else {
                added.iter().cloned().chain(rest).collect()
            })
        }
        None => {
            let mut out: Vec<String> = Vec::new();
            for n in names {
                let n = known(n)?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(list: AlgorithmList, setting: &str) -> Result<Vec<String>, String> {
        let mut o = SshOptions::default();
        match list {
            AlgorithmList::Kex => o.kex = setting.into(),
            AlgorithmList::Ciphers => o.ciphers = setting.into(),
            AlgorithmList::Macs => o.macs = setting.into(),
            AlgorithmList::HostKeyAlgorithms => o.host_key_algorithms = setting.into(),
        }
        o.resolve(&SshOptions::default(), list)
    }

    #[test]
    fn plus_appends_minus_removes_caret_leads_and_a_list_replaces() {
        let kex = with(AlgorithmList::Kex, "+diffie-hellman-group14-sha1").unwrap();
        assert_eq!(kex.last().unwrap(), "diffie-hellman-group14-sha1");
        assert_eq!(kex.len(), AlgorithmList::Kex.defaults().len() + 1);
        let ciphers = with(AlgorithmList::Ciphers, "-aes*-ctr").unwrap();
        assert!(ciphers.iter().all(|c| !c.ends_with("-ctr")), "{ciphers:?}");
        assert!(ciphers.contains(&"chacha20-poly1305@openssh.com".to_string()));
        let macs = with(AlgorithmList::Macs, "^hmac-sha1").unwrap();
        assert_eq!(macs[0], "hmac-sha1");
        assert_eq!(macs.len(), AlgorithmList::Macs.defaults().len());
        let keys = with(AlgorithmList::HostKeyAlgorithms, "ssh-rsa,ssh-ed25519").unwrap();
        assert_eq!(keys, ["ssh-rsa", "ssh-ed25519"]);
    }

    #[test]
    fn the_device_changes_what_the_environment_chose() {
        let env = SshOptions {
            macs: "+hmac-sha1".into(),
            ..Default::default()
        };
        let device = SshOptions {
            macs: "-hmac-sha2-*".into(),
            ..Default::default()
        };
        let macs = device.resolve(&env, AlgorithmList::Macs).unwrap();
        assert!(macs.contains(&"hmac-sha1".to_string()));
        assert!(
            !macs.iter().any(|m| m.starts_with("hmac-sha2-")),
            "{macs:?}"
        );
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_list_and_the_supported_names() {
        let o = SshOptions {
            ciphers: "+blowfish-cbc".into(),
            ..Default::default()
        };
        let (list, message) = o.check().unwrap_err();
        assert_eq!(list, AlgorithmList::Ciphers);
        assert!(
            message.contains("unknown cipher 'blowfish-cbc'"),
            "{message}"
        );
        assert!(message.contains("3des-cbc"), "{message}");
        // Positive control: a known one passes.
        let o = SshOptions {
            ciphers: "+3des-cbc".into(),
            ..Default::default()
        };
        assert!(o.check().is_ok());
    }
}
