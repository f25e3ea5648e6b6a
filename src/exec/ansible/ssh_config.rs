//! The run's own ssh configuration (the only one its ssh reads): the
//! devices runs go through, each a host with its login and the command
//! that reaches it, then what holds for every connection; and the
//! known-hosts lines of the pinned keys. Values written into it are made
//! plain words, so a device's address or login cannot add a keyword.

use super::workspace::sanitize;
use crate::domain::HostKey;
use crate::exec::ssh::Target;
use std::path::Path;

/// A known-hosts line's host part: OpenSSH writes `[addr]:port` unless the port is 22.
pub(super) fn known_host_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// The known-hosts lines of a device's pinned keys.
pub(super) fn known_lines(t: &Target) -> String {
    t.pinned
        .iter()
        .filter(|k| matches!(k, HostKey::PublicKey { .. }))
        .map(|key| format!("{} {key}\n", known_host_name(&t.address, t.port)))
        .collect()
}

/// The name a device that runs go through has in the run's ssh configuration.
pub(super) fn jump_alias(device: &str) -> String {
    format!("gatehouse-jump-{}", sanitize(device))
}

/// A device that runs go through, as a host of the run's ssh
/// configuration: its address and login; its key, or else its password
/// (asked once, answered by sshpass: see `hop`); and the
/// command that reaches the device it is reached through in turn.
pub(super) fn jump_entry(
    jump: &Target,
    key: Option<&Path>,
    cert: Option<&Path>,
    through: Option<&str>,
) -> String {
    let mut entry = format!(
        "Host {}\n  HostName {}\n  Port {}\n  User {}\n",
        jump_alias(&jump.device),
        config_word(&jump.address),
        jump.port,
        config_word(&jump.username),
    );
    match key {
        Some(key) => entry.push_str(&format!(
            "  IdentityFile {}\n  BatchMode yes\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n",
            key.display()
        )),
        None => entry.push_str(
            "  PubkeyAuthentication no\n  PreferredAuthentications password,keyboard-interactive\n  NumberOfPasswordPrompts 1\n",
        ),
    }
    if let Some(cert) = cert {
        entry.push_str(&format!("  CertificateFile {}\n", cert.display()));
    }
    if let Some(through) = through {
        entry.push_str(&format!("  ProxyCommand {through}\n"));
    }
    entry
}

/// A value as one word of an ssh configuration line: addresses and login
/// names are plain already; anything that would split the line or start
/// another keyword is made harmless.
fn config_word(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The command that reaches a device runs go through, for the ssh
/// connecting through it (`ProxyCommand`): ssh with the run's own
/// configuration, under sshpass reading that device's password from
/// its file when it logs in with no key (its prompt is sshpass's pty;
/// the password is in no argument).
pub(super) fn hop(dir: &Path, jump: &Target) -> String {
    let dir = dir.display();
    let ssh = format!(
        "ssh -F {dir}/ssh_config -W %h:%p {}",
        jump_alias(&jump.device)
    );
    match (&jump.private_key, &jump.password) {
        (None, Some(_)) => format!(
            "sshpass -f {dir}/jumps/{}.pass {ssh}",
            sanitize(&jump.device)
        ),
        _ => ssh,
    }
}

/// The run's ssh configuration: the devices runs go through, then
/// what holds for every connection (the jump connections too, which
/// ssh starts with this file and none of the command line's options).
pub(super) fn render(dir: &Path, jump_hosts: &str) -> String {
    let dir = dir.display();
    // No control master: nothing of the run outlives it.
    format!(
        "{jump_hosts}Host *\n\
         \x20 UserKnownHostsFile {dir}/known_hosts\n\
         \x20 GlobalKnownHostsFile /dev/null\n\
         \x20 StrictHostKeyChecking yes\n\
         \x20 IdentitiesOnly yes\n\
         \x20 IdentityAgent none\n\
         \x20 ControlMaster no\n\
         \x20 ControlPath none\n\
         \x20 ServerAliveInterval 15\n\
         \x20 ConnectTimeout 15\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_names_the_port_as_openssh_does() {
        assert_eq!(known_host_name("127.0.0.1", 22), "127.0.0.1");
        assert_eq!(known_host_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn a_jump_host_entry_is_one_host_whose_values_cannot_add_a_keyword() {
        let mut next = crate::exec::ssh::Target::local();
        next.device = "outer".into();
        let mut jump = crate::exec::ssh::Target::local();
        jump.device = "bastion".into();
        jump.address = "127.0.0.7".into();
        jump.port = 2222;
        jump.username = "ops\n  ProxyCommand touch /tmp/pwned".into();
        jump.via = Some(Box::new(next));
        let entry = jump_entry(
            &jump,
            Some(Path::new("/run/x/jumps/bastion")),
            None,
            Some("ssh -F /run/x/ssh_config -W %h:%p gatehouse-jump-outer"),
        );
        assert_eq!(
            entry,
            "Host gatehouse-jump-bastion\n  HostName 127.0.0.7\n  Port 2222\n  User ops___ProxyCommand_touch__tmp_pwned\n  IdentityFile /run/x/jumps/bastion\n  BatchMode yes\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  ProxyCommand ssh -F /run/x/ssh_config -W %h:%p gatehouse-jump-outer\n"
        );
        // Control: a plain value is kept as it is.
        assert_eq!(config_word("gh-test@x.example"), "gh-test@x.example");
    }
}
