//! A run's private directory (mode 0700, removed afterwards): its own
//! Ansible configuration, the inventory of the run's devices with their
//! logins, a known-hosts file of their pinned keys, key files (0600), the
//! extra variables, the playbook and our callback plugin. Nothing else on
//! the jump host is read: no user's `~/.ssh`, no `/etc/ansible`, no SSH
//! configuration file. Secrets go in files of this directory only, never
//! in arguments or the environment.

use super::ssh_config::{jump_entry, known_lines};
use super::{Member, Play};
use crate::domain::HostKey;
use crate::exec::local::{self, Entered};
use crate::exec::RunError;
use secrecy::ExposeSecret;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Our callback plugin, shipped in the binary.
const CALLBACK: &str = include_str!("../../../assets/ansible/gatehouse.py");

/// A device needs a full pinned key, for ansible-playbook's strict
/// host-key checking to hold, and a login; so does every device it is
/// reached through.
pub fn host_entry(member: &Member) -> Result<(), RunError> {
    let t = &member.target;
    pinned(&member.host, &t.pinned)?;
    if t.password.is_none() && t.private_key.is_none() {
        return Err(RunError::Auth(format!(
            "the credential for device '{}' holds neither a password nor a key",
            member.host
        )));
    }
    let mut hop = t.via.as_deref();
    while let Some(jump) = hop {
        pinned(&jump.device, &jump.pinned)?;
        if jump.private_key.is_none() && jump.password.is_none() {
            return Err(RunError::Auth(format!(
                "device '{}' is reached through device '{}', whose credential holds neither a password nor a key",
                member.host, jump.device
            )));
        }
        hop = jump.via.as_deref();
    }
    Ok(())
}

/// A device's pinned keys, as ssh's strict checking needs them.
fn pinned(device: &str, keys: &[HostKey]) -> Result<(), RunError> {
    if keys.is_empty() {
        return Err(RunError::HostKey(format!(
            "device '{device}' has no trusted host key: trust it first (gatehouse device trust {device})"
        )));
    }
    if keys.iter().all(|k| matches!(k, HostKey::Fingerprint(_))) {
        return Err(RunError::HostKey(format!(
            "device '{device}' has only a fingerprint pinned; ansible-playbook checks host keys against whole keys: trust it again (gatehouse device trust {device}) to pin the key itself"
        )));
    }
    Ok(())
}

/// A YAML scalar that Ansible takes literally: `!unsafe` keeps it from
/// being read as a template (a value of `{{ lookup('pipe', …) }}` would
/// otherwise run on the jump host); the quoted string is JSON's, which
/// YAML reads as a double-quoted scalar.
fn literal(value: &str) -> String {
    format!("!unsafe {}", serde_json::Value::String(value.to_string()))
}

pub struct Workspace {
    dir: PathBuf,
    /// The account the run's files belong to, when it is not ours.
    owner: Option<(u32, u32)>,
}

impl Workspace {
    /// Writes everything the run reads.
    pub fn create(
        play: &Play,
        members: &[Member],
        entered: Option<&Entered>,
    ) -> Result<Workspace, RunError> {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-ansible-")
            .tempdir()
            .map_err(|e| RunError::Invalid(format!("cannot make the run's directory: {e}")))?
            .keep();
        let space = Workspace {
            dir,
            owner: entered.map(|e| (e.uid, e.gid)),
        };
        std::fs::set_permissions(&space.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| space.error(&space.dir, e))?;
        for sub in ["plugins", "keys", "jumps", "tmp", "cp"] {
            let path = space.dir.join(sub);
            std::fs::create_dir(&path).map_err(|e| space.error(&path, e))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| space.error(&path, e))?;
        }
        space.write("plugins/gatehouse.py", CALLBACK.as_bytes())?;
        space.write("playbook.json", play.playbook.as_bytes())?;
        space.write("ansible.cfg", space.config(play).as_bytes())?;
        let mut extra = String::from("---\n");
        for (name, value) in &play.extra {
            extra.push_str(&format!(
                "{}: {}\n",
                serde_json::Value::String(name.clone()),
                literal(value)
            ));
        }
        if play.extra.is_empty() {
            extra.push_str("{}\n");
        }
        space.write("extra.yml", extra.as_bytes())?;
        let mut known = String::new();
        let mut inventory = String::from("---\nall:\n  hosts:\n");
        // The devices runs go through, each once (several devices may
        // share one), as hosts of the run's own ssh configuration.
        let mut jumps: Vec<String> = Vec::new();
        let mut jump_hosts = String::new();
        for m in members {
            let t = &m.target;
            known.push_str(&known_lines(t));
            let name = serde_json::Value::String(m.host.clone());
            inventory.push_str(&format!("    {name}:\n"));
            let mut var = |k: &str, v: String| inventory.push_str(&format!("      {k}: {v}\n"));
            var("ansible_host", literal(&t.address));
            var("ansible_port", t.port.to_string());
            var("ansible_user", literal(&t.username));
            if t.private_key.is_some() {
                let file = space.write_key(&format!("keys/{}", sanitize(&m.host)), t)?;
                var(
                    "ansible_ssh_private_key_file",
                    literal(&file.display().to_string()),
                );
            }
            if let Some(password) = &t.password {
                var("ansible_password", literal(password.expose_secret()));
                var("ansible_become_password", literal(password.expose_secret()));
            }
            // What this device's own ssh adds to the run's configuration.
            let mut options = Vec::new();
            if let Some(first) = &t.via {
                options.push(format!(
                    "-o ProxyCommand=\"{}\"",
                    super::ssh_config::hop(&space.dir, first)
                ));
            }
            if let Some(cert) =
                space.write_certificate(&format!("keys/{}-cert.pub", sanitize(&m.host)), t)?
            {
                options.push(format!("-o CertificateFile={}", cert.display()));
            }
            if !options.is_empty() {
                var("ansible_ssh_common_args", literal(&options.join(" ")));
            }
            let mut hop = t.via.as_deref();
            while let Some(jump) = hop {
                if !jumps.contains(&jump.device) {
                    jumps.push(jump.device.clone());
                    known.push_str(&known_lines(jump));
                    let name = format!("jumps/{}", sanitize(&jump.device));
                    let key = match jump.private_key {
                        Some(_) => Some(space.write_key(&name, jump)?),
                        None => None,
                    };
                    if let Some(password) = &jump.password {
                        let line =
                            zeroize::Zeroizing::new(format!("{}\n", password.expose_secret()));
                        space.write(&format!("{name}.pass"), line.as_bytes())?;
                    }
                    let cert = space.write_certificate(&format!("{name}-cert.pub"), jump)?;
                    let through = jump
                        .via
                        .as_deref()
                        .map(|next| super::ssh_config::hop(&space.dir, next));
                    jump_hosts.push_str(&jump_entry(
                        jump,
                        key.as_deref(),
                        cert.as_deref(),
                        through.as_deref(),
                    ));
                }
                hop = jump.via.as_deref();
            }
        }
        space.write("known_hosts", known.as_bytes())?;
        space.write(
            "ssh_config",
            super::ssh_config::render(&space.dir, &jump_hosts).as_bytes(),
        )?;
        space.write("inventory.yml", inventory.as_bytes())?;
        space.hand_over()?;
        Ok(space)
    }

    /// Writes a login's private key (decrypted: ssh is given no
    /// passphrase) to a file of the directory; returns its path.
    fn write_key(&self, name: &str, t: &crate::exec::ssh::Target) -> Result<PathBuf, RunError> {
        let Some(key) = &t.private_key else {
            return Err(RunError::Auth(format!(
                "the credential for device '{}' holds no key",
                t.device
            )));
        };
        let decoded = russh::keys::decode_secret_key(
            key.expose_secret(),
            t.passphrase.as_ref().map(|p| p.expose_secret()),
        )
        .map_err(|e| {
            RunError::Auth(format!(
                "cannot read the private key of device '{}''s credential: {e}",
                t.device
            ))
        })?;
        let text = decoded
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map_err(|e| RunError::Auth(format!("cannot write the private key: {e}")))?;
        self.write(name, text.as_bytes())?;
        Ok(self.dir.join(name))
    }

    /// Writes a login's OpenSSH user certificate, when it has one; returns
    /// its path.
    fn write_certificate(
        &self,
        name: &str,
        t: &crate::exec::ssh::Target,
    ) -> Result<Option<PathBuf>, RunError> {
        let Some(cert) = &t.certificate else {
            return Ok(None);
        };
        let line = format!("{}\n", cert.trim());
        self.write(name, line.as_bytes())?;
        Ok(Some(self.dir.join(name)))
    }

    fn error(&self, path: &Path, e: std::io::Error) -> RunError {
        RunError::Invalid(format!("cannot write {}: {e}", path.display()))
    }

    /// A file only the run's account may read, given to that account.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), RunError> {
        let path = self.dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| self.error(&path, e))?;
        file.write_all(bytes).map_err(|e| self.error(&path, e))?;
        Ok(())
    }

    /// Gives the directory to the run's account (when that is not ours).
    fn hand_over(&self) -> Result<(), RunError> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        let chown = |path: &Path| {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| {
                RunError::Invalid(format!(
                    "cannot give {} to the [local] user (the server needs CAP_CHOWN to run playbooks as it): {e}",
                    path.display()
                ))
            })
        };
        // The directory itself last: once it is theirs, we may not enter it.
        for entry in walk(&self.dir).iter().rev() {
            chown(entry)?;
        }
        Ok(())
    }

    fn config(&self, play: &Play) -> String {
        let dir = self.dir.display();
        // Only the run's own ssh configuration (never ~/.ssh/config or
        // /etc/ssh/ssh_config).
        let ssh_args = format!("-F {dir}/ssh_config");
        format!(
            "[defaults]\n\
             stdout_callback = gatehouse\n\
             callback_plugins = {dir}/plugins\n\
             callbacks_enabled =\n\
             host_key_checking = True\n\
             retry_files_enabled = False\n\
             forks = {forks}\n\
             local_tmp = {dir}/tmp\n\
             interpreter_python = auto_silent\n\
             nocolor = True\n\
             deprecation_warnings = False\n\
             roles_path = {dir}/roles\n\
             collections_path = /usr/share/ansible/collections\n\
             [inventory]\n\
             enable_plugins = yaml\n\
             [ssh_connection]\n\
             ssh_args = {ssh_args}\n\
             control_path_dir = {dir}/cp\n\
             pipelining = False\n\
             transfer_method = piped\n",
            forks = play.forks,
        )
    }

    pub fn arguments(&self, play: &Play) -> Vec<String> {
        let dir = self.dir.display();
        let mut args = vec![
            "-i".to_string(),
            format!("{dir}/inventory.yml"),
            "-e".to_string(),
            format!("@{dir}/extra.yml"),
            "--forks".to_string(),
            play.forks.to_string(),
        ];
        if play.check {
            args.push("--check".into());
            args.push("--diff".into());
        }
        args.push(format!("{dir}/playbook.json"));
        args
    }

    pub fn environment(&self) -> Vec<(String, String)> {
        let dir = self.dir.display().to_string();
        vec![
            ("PATH".into(), local::SCRIPT_PATH.into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), dir.clone()),
            ("ANSIBLE_CONFIG".into(), format!("{dir}/ansible.cfg")),
            ("ANSIBLE_LOCAL_TEMP".into(), format!("{dir}/tmp")),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ]
    }
}

/// A file name from a device name (device names are plain already; this
/// keeps a path separator out whatever they become).
pub(super) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                all.extend(walk(&path));
            } else {
                all.push(path);
            }
        }
    }
    all
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let (dir, owner) = (self.dir.clone(), self.owner);
        let remove = move || {
            // What the run's account made there is removed as that account
            // (a server that is not root may not remove it otherwise).
            if let Some((uid, gid)) = owner {
                if !nix::unistd::geteuid().is_root() {
                    let _ = std::process::Command::new("setpriv")
                        .arg(format!("--reuid={uid}"))
                        .arg(format!("--regid={gid}"))
                        .args(["--clear-groups", "--inh-caps=-all", "--ambient-caps=-all"])
                        .args(["--", "rm", "-rf", "--"])
                        .arg(&dir)
                        .env_clear()
                        .env("PATH", local::SCRIPT_PATH)
                        .status();
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        };
        // Off the async workers: removing files is blocking work.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_literal_yaml_that_ansible_does_not_template() {
        let v = literal("{{ lookup('pipe', 'id') }}\"\n");
        assert!(v.starts_with("!unsafe \""), "{v}");
        let parsed: serde_yaml::Value = serde_yaml::from_str(&format!("k: {v}")).unwrap();
        let text = match &parsed["k"] {
            serde_yaml::Value::Tagged(t) => t.value.as_str().unwrap().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text, "{{ lookup('pipe', 'id') }}\"\n");
    }

    #[test]
    fn a_file_name_from_a_device_name_holds_no_path_separator() {
        assert_eq!(sanitize("../etc/x"), ".._etc_x");
        assert_eq!(sanitize("web-1.lab_2"), "web-1.lab_2");
    }
}
