//! The `local` executor: the script runs on the Gatehouse host itself, as
//! an account of its own. A shared server never runs it as the service
//! account: it enters the configured unprivileged account through
//! setpriv(1) (new uid and gid, no supplementary groups, no capabilities,
//! no new privileges), so the script cannot read the data directory, the
//! key file or anything else that is the service account's alone. A
//! personal server runs it as its owner. Either way the script leads a
//! process group of its own, and the whole group is killed when the
//! operation ends, is cancelled or times out: nothing it started outlives it.

use super::output::OutputTx;
use super::RunError;
use crate::domain::Stream;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Who local scripts run as.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum LocalAccount {
    /// The server's own account (a personal server).
    #[default]
    Own,
    /// Another OS account, entered through setpriv.
    Named(String),
}

/// The account a shared server runs local scripts as unless told otherwise.
pub const DEFAULT_LOCAL_ACCOUNT: &str = "gatehouse-local";

/// The PATH a local script starts with.
pub(super) const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The OS account entered, resolved once per run.
pub(super) struct Entered {
    pub(super) uid: u32,
    pub(super) gid: u32,
    name: String,
    home: std::path::PathBuf,
}

pub(super) fn resolve(name: &str) -> Result<Entered, RunError> {
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| RunError::Invalid(format!("cannot look up the OS user '{name}': {e}")))?
        .ok_or_else(|| {
            RunError::Invalid(format!(
                "local tasks run as the OS user '{name}', which does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin {name}) or name another in the configuration's [local] user"
            ))
        })?;
    if user.uid.is_root() {
        return Err(RunError::Invalid(format!(
            "local tasks may not run as '{name}': it is root"
        )));
    }
    if !may_switch() {
        return Err(RunError::Invalid(format!(
            "this server runs as '{}' without the CAP_SETUID and CAP_SETGID capabilities, so it cannot run local tasks as '{name}' (the unit file's AmbientCapabilities gives them)",
            crate::paths::current_login()
        )));
    }
    Ok(Entered {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        name: user.name,
        home: user.dir,
    })
}

/// Whether this process may change its uid and gid: root, or holding
/// CAP_SETUID (7) and CAP_SETGID (6) in its effective set.
fn may_switch() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 7) != 0 && caps & (1 << 6) != 0)
}

/// setpriv's arguments that become `entered` with nothing more: no
/// supplementary groups, no inheritable or ambient capabilities, no new
/// privileges (so no setuid program gives any back).
pub(super) fn setpriv_args(entered: &Entered) -> Vec<String> {
    vec![
        format!("--reuid={}", entered.uid),
        format!("--regid={}", entered.gid),
        "--clear-groups".into(),
        "--inh-caps=-all".into(),
        "--ambient-caps=-all".into(),
        "--no-new-privs".into(),
        "--".into(),
    ]
}

/// The command that runs `/bin/sh` as `account`, in a clean environment.
fn shell(account: Option<&Entered>) -> Command {
    let mut cmd = match account {
        None => Command::new("/bin/sh"),
        Some(entered) => {
            let mut c = Command::new("setpriv");
            c.args(setpriv_args(entered)).arg("/bin/sh");
            c
        }
    };
    cmd.env_clear()
        .env("PATH", SCRIPT_PATH)
        .env("LANG", "C.UTF-8");
    match account {
        Some(entered) => {
            let home = if entered.home.is_dir() {
                entered.home.clone()
            } else {
                std::path::PathBuf::from("/")
            };
            cmd.env("HOME", &home)
                .env("USER", &entered.name)
                .env("LOGNAME", &entered.name)
                .current_dir(home);
        }
        None => {
            for key in ["HOME", "USER", "LOGNAME"] {
                if let Ok(v) = std::env::var(key) {
                    cmd.env(key, v);
                }
            }
        }
    }
    cmd.process_group(0);
    cmd
}

/// Kills the script's whole process group when dropped: at its end, on
/// cancel and on timeout alike.
pub(super) struct Group {
    pub(super) pgid: i32,
    pub(super) account: Option<(u32, u32)>,
}

impl Drop for Group {
    fn drop(&mut self) {
        match self.account {
            // Same account: a signal of our own.
            None => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(self.pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // Another account's processes take signals only from that
            // account: send it as that account, through setpriv again.
            Some((uid, gid)) => {
                let pgid = self.pgid;
                let kill = move || {
                    let _ = std::process::Command::new("setpriv")
                        .arg(format!("--reuid={uid}"))
                        .arg(format!("--regid={gid}"))
                        .args(["--clear-groups", "--inh-caps=-all", "--ambient-caps=-all"])
                        // kill(1), not a shell's builtin: dash's takes no
                        // process group.
                        .args(["--", "kill", "-KILL", "--"])
                        .arg(format!("-{pgid}"))
                        .env_clear()
                        .env("PATH", SCRIPT_PATH)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => drop(runtime.spawn_blocking(kill)),
                    Err(_) => kill(),
                }
            }
        }
    }
}

/// Resolves once a stop is asked; never otherwise.
pub(super) async fn stop_asked(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let asked = stop.wait_for(|s| *s).await.is_ok();
    if !asked {
        std::future::pending::<()>().await;
    }
}

/// Runs a script with `/bin/sh` as `account`; returns its exit status. The
/// command line is fixed ([`super::SCRIPT_SHELL_CODE`]) and the script goes
/// on stdin, so nothing of it (secrets included) is in the process list.
pub async fn run_script(
    script: &str,
    account: &LocalAccount,
    out: &OutputTx,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<i32, RunError> {
    let entered = match account {
        LocalAccount::Own => None,
        LocalAccount::Named(name) => Some(resolve(name)?),
    };
    let mut child = shell(entered.as_ref())
        .arg("-c")
        .arg(super::SCRIPT_SHELL_CODE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            RunError::Invalid(match &entered {
                None => format!("cannot start /bin/sh: {e}"),
                Some(_) => {
                    format!("cannot start setpriv (util-linux) to enter the local account: {e}")
                }
            })
        })?;
    let _group = child.id().map(|pid| Group {
        pgid: pid as i32,
        account: entered.as_ref().map(|e| (e.uid, e.gid)),
    });
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| RunError::Invalid("no stdin".into()))?;
    let script = script.as_bytes().to_vec();
    // Written on its own task: a script that prints much before reading
    // all of itself must not wait on us.
    let feeder = tokio::spawn(async move {
        let _ = stdin.write_all(&script).await;
        let _ = stdin.shutdown().await;
    });
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| RunError::Invalid("no stdout".into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| RunError::Invalid("no stderr".into()))?;
    let (mut out_done, mut err_done) = (false, false);
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    while !(out_done && err_done) {
        tokio::select! {
            // Stopped (timeout, cancel): the group is killed as the guard goes.
            _ = stop_asked(&mut stop) => return Err(RunError::Cancelled),
            n = stdout.read(&mut out_buf), if !out_done => match n {
                Ok(0) | Err(_) => out_done = true,
                Ok(n) => out.send(Stream::Stdout, out_buf[..n].to_vec()).await,
            },
            n = stderr.read(&mut err_buf), if !err_done => match n {
                Ok(0) | Err(_) => err_done = true,
                Ok(n) => out.send(Stream::Stderr, err_buf[..n].to_vec()).await,
            },
        }
    }
    feeder.abort();
    let status = child
        .wait()
        .await
        .map_err(|e| RunError::Failed(format!("cannot wait for the script: {e}")))?;
    match status.code() {
        Some(code) => Ok(code),
        None => Err(RunError::Failed("the script was killed by a signal".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_entered_without_groups_capabilities_or_new_privileges() {
        let args = setpriv_args(&Entered {
            uid: 1234,
            gid: 999,
            name: "gatehouse-local".into(),
            home: "/nonexistent".into(),
        });
        for expected in [
            "--reuid=1234",
            "--regid=999",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--no-new-privs",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        assert_eq!(args.last().map(String::as_str), Some("--"));
    }
}
