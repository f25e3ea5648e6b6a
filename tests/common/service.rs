//! A shared Gatehouse service the way a jump host runs it: `gatehouse serve`
//! in the foreground under a service account holding CAP_SETUID and
//! CAP_SETGID as its unit file gives them (through setpriv), local tasks
//! run as their own account, a socket in its own run directory, and clients
//! of other OS accounts started with `runuser`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The service account and the people who use the jump host.
pub const SERVICE: &str = "gh-svc";
pub const ALICE: &str = "gh-alice";
pub const BOB: &str = "gh-bob";
/// An OS user who is not a Gatehouse user.
pub const EVE: &str = "gh-eve";
/// The group a `--group` service admits: ALICE and the service account are in it.
pub const GROUP: &str = "gh-ops";
/// The account local tasks run as (`[local] user`).
pub const LOCAL: &str = "gh-local";

/// Creates the OS accounts and the group once per test binary (CI runs as root).
pub fn ensure_accounts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ok = |out: Output, what: &str| {
            // 9: it exists already (another test binary, or an earlier run).
            assert!(
                out.status.success() || out.status.code() == Some(9),
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(
            Command::new("groupadd")
                .arg(GROUP)
                .output()
                .expect("groupadd"),
            "groupadd",
        );
        for user in [SERVICE, ALICE, BOB, EVE, LOCAL] {
            let mut cmd = Command::new("useradd");
            cmd.args(["--no-create-home", "--shell", "/usr/sbin/nologin"]);
            if user == SERVICE || user == LOCAL {
                cmd.arg("--system");
            }
            if user == ALICE || user == SERVICE {
                cmd.args(["--groups", GROUP]);
            }
            ok(cmd.arg(user).output().expect("useradd"), "useradd");
        }
    });
}

/// A running shared service and the files around it.
pub struct Service {
    pub base: tempfile::TempDir,
    pub bin: PathBuf,
    pub data: PathBuf,
    pub socket: PathBuf,
    child: Child,
    /// The OS account it runs as (`None`: the account running the tests).
    pub account: Option<String>,
}

impl Service {
    /// Starts `gatehouse serve` as `account` with these extra serve flags
    /// and, when given, this configuration file text.
    pub fn start(account: Option<&str>, serve_flags: &[&str], config: Option<&str>) -> Service {
        Service::start_with(account, serve_flags, config, None)
    }

    /// Starts the service with at most `descriptors` open files (prlimit).
    pub fn start_limited(account: Option<&str>, descriptors: u64, config: Option<&str>) -> Service {
        Service::start_with(account, &[], config, Some(descriptors))
    }

    fn start_with(
        account: Option<&str>,
        serve_flags: &[&str],
        config: Option<&str>,
        descriptors: Option<u64>,
    ) -> Service {
        let base = tempfile::Builder::new()
            .prefix("gh-svc")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Other accounts can't reach the build directory: give them a copy.
        let bin = base.path().join("gatehouse");
        std::fs::copy(super::bin(), &bin).expect("copy the binary");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = base.path().join("state");
        let run = base.path().join("run");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        if let Some(account) = account {
            for dir in [&data, &run] {
                let out = Command::new("chown")
                    .arg(account)
                    .arg(dir)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "chown {account}");
            }
        }
        let socket = run.join("gatehouse.sock");
        let mut args: Vec<String> = vec!["--data-dir".into(), data.display().to_string()];
        // Local tasks run as their own account unless the test says otherwise.
        let mut text = config.unwrap_or_default().to_string();
        if !text.contains("[local]") {
            text.push_str(&format!("\n[local]\nuser = \"{LOCAL}\"\n"));
        }
        let path = base.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        args.extend(["--config".into(), path.display().to_string()]);
        args.extend([
            "serve".into(),
            "--socket".into(),
            socket.display().to_string(),
        ]);
        args.extend(serve_flags.iter().map(|s| s.to_string()));
        let mut cmd = match descriptors {
            None => as_service(account, &bin),
            Some(n) => {
                let mut cmd = as_service(account, Path::new("/usr/bin/prlimit"));
                cmd.arg(format!("--nofile={n}:{n}")).arg(&bin);
                cmd
            }
        };
        let child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the service");
        let mut service = Service {
            base,
            bin,
            data,
            socket,
            child,
            account: account.map(str::to_string),
        };
        service.wait_for_socket();
        service
    }

    fn wait_for_socket(&mut self) {
        let until = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the service exited ({status}) before listening: {err}");
            }
            assert!(Instant::now() < until, "the service did not listen in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `gatehouse --connect SOCKET ARGS…` as the OS account `user`.
    pub fn run_as(&self, user: Option<&str>, args: &[&str]) -> Output {
        as_account(user, &self.bin)
            // Clients trust the account the service runs as, as the
            // configuration of a jump host says.
            .env(
                "GATEHOUSE_SERVICE_ACCOUNT",
                self.account.as_deref().unwrap_or("root"),
            )
            .arg("--connect")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run a client")
    }

    pub fn ok_as(&self, user: Option<&str>, args: &[&str]) -> String {
        let out = self.run_as(user, args);
        assert!(
            out.status.success(),
            "{user:?} gatehouse {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fails_as(&self, user: Option<&str>, args: &[&str]) -> String {
        let out = self.run_as(user, args);
        assert!(
            !out.status.success(),
            "{user:?} gatehouse {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Writes a file everyone may read, for imports.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.base.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// Stops the service (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        let _ = nix_kill(self.child.id(), "TERM");
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The server process itself (setpriv and prlimit exec it).
    pub fn server_pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB.
    pub fn server_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.server_pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The server's log files, read whole.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.data.join("logs")) {
            for e in entries.flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        text
    }

    /// Bytes in the server's log files.
    pub fn log_bytes(&self) -> u64 {
        std::fs::read_dir(self.data.join("logs"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A command that runs `program` as `account` (through runuser), with a
/// home that does not exist so no one's own configuration is read.
fn as_account(account: Option<&str>, program: &Path) -> Command {
    let mut cmd = match account {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.env("HOME", "/nonexistent")
        .env_remove("GATEHOUSE_SOCKET")
        .env_remove("GATEHOUSE_DATA_DIR")
        .env_remove("GATEHOUSE_CONFIG");
    cmd
}

/// A command that runs `program` as the service `account` the way its unit
/// file does: that account's uid, gid and groups, holding CAP_SETUID and
/// CAP_SETGID (ambient) to enter the local tasks' account, and CAP_CHOWN
/// to give a playbook run's private directory to it.
fn as_service(account: Option<&str>, program: &Path) -> Command {
    let mut cmd = match account {
        Some(user) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .args([
                    "--init-groups",
                    "--inh-caps=+setuid,+setgid,+chown",
                    "--ambient-caps=+setuid,+setgid,+chown",
                    "--",
                ])
                .arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.env("HOME", "/nonexistent")
        .env_remove("GATEHOUSE_SOCKET")
        .env_remove("GATEHOUSE_DATA_DIR")
        .env_remove("GATEHOUSE_CONFIG");
    cmd
}

/// Sends a signal by name with kill(1).
fn nix_kill(pid: u32, signal: &str) -> std::io::Result<Output> {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .output()
}
