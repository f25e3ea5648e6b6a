//! A real OpenSSH sshd on a free loopback port, with a generated host key,
//! a test account with a password and an authorized key made by ssh-keygen.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The OS account the tests log in as.
pub const TEST_USER: &str = "gh-test";
/// Its password, set when the account is made.
pub const TEST_PASSWORD: &str = "gh-test-Passw0rd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub address: String,
    child: Child,
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a key pair with ssh-keygen; returns the private key's path.
pub fn keygen(
    dir: &Path,
    name: &str,
    kind: &str,
    passphrase: &str,
    format: Option<&str>,
) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path);
    if let Some(f) = format {
        cmd.args(["-m", f]);
    }
    run(&mut cmd);
    path
}

/// A user certificate authority and a key it signed for the test account,
/// made by ssh-keygen in `dir` (readable by sshd, which runs as the test
/// user to read them): returns the authority's private key, the user's
/// private key and its certificate.
pub fn user_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = keygen(dir, "user_ca", "ed25519", "", None);
    let user = keygen(dir, "person", "ed25519", "", None);
    run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", "gatehouse-test", "-n", TEST_USER, "-V", "-5m:+1h"])
        .arg(user.with_extension("pub")));
    let cert = dir.join("person-cert.pub");
    assert!(cert.is_file(), "ssh-keygen wrote no certificate");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (ca, user, cert)
}

/// The SHA256 fingerprint ssh-keygen prints for a public key file.
pub fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .expect("ssh-keygen -lf");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

/// Makes an OS account with this login shell and password (the password
/// set again if the account is there already).
pub fn os_account(login: &str, shell: &Path, password: &str) {
    let exists = Command::new("id")
        .arg(login)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let out = Command::new("useradd")
            .args(["-m", "-s"])
            .arg(shell)
            .arg(login)
            .output()
            .expect("useradd");
        // 9: another test binary made it first.
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "useradd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{login}:{password}\n").as_bytes())
        .expect("write chpasswd");
    assert!(child.wait().expect("chpasswd").success());
}

/// Makes sure the test account exists and has the test password, once per
/// test binary (tests run in parallel threads).
pub fn ensure_test_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| os_account(TEST_USER, Path::new("/bin/bash"), TEST_PASSWORD));
}

/// An account whose login shell is busybox's ash (as on routers and
/// small systems), with the test password.
pub const ASH_USER: &str = "gh-ash";

/// Makes sure the ash account exists: its shell is a link named `ash` to
/// busybox (busybox picks the applet by the name it is run as).
pub fn ensure_ash_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = Path::new("/usr/local/lib/gatehouse-tests");
        std::fs::create_dir_all(dir).expect("shell dir");
        let shell = dir.join("ash");
        if !shell.exists() {
            let busybox = ["/bin/busybox", "/usr/bin/busybox"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .expect("busybox (apt-get install busybox)");
            // Another test binary may make it at the same moment.
            let _ = std::os::unix::fs::symlink(busybox, &shell);
        }
        os_account(ASH_USER, &shell, TEST_PASSWORD);
    });
}

/// Lets the test account use sudo as the seed templates expect: any
/// command with its password (`sudo su`), `id` without one, and only on a
/// terminal (`requiretty`, as hardened hosts set it); and installs a small
/// init script, `gh-demo`, for `service` to drive.
pub fn ensure_sudo_rules() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        ensure_test_user();
        assert!(
            Path::new("/usr/bin/sudo").exists(),
            "sudo is needed (apt-get install sudo)"
        );
        let rules = format!(
            "Defaults:{TEST_USER} requiretty\nDefaults:{TEST_USER} !lecture\n\
             {TEST_USER} ALL=(ALL) ALL\n{TEST_USER} ALL=(root) NOPASSWD: /usr/bin/id\n"
        );
        let path = Path::new("/etc/sudoers.d/gatehouse-tests");
        std::fs::write(path, rules).expect("sudoers.d");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o440)).expect("chmod");
        run(Command::new("visudo").args(["-cf"]).arg(path));
        let script = "#!/bin/sh\ncase \"$1\" in\n  start|restart) date +%s.%N > /run/gh-demo.restarted; echo \"gh-demo restarted\" ;;\n  \
                      stop) echo \"gh-demo stopped\" ;;\n  status) echo \"gh-demo is running\" ;;\n  *) echo \"usage: $0 start|stop|restart|status\"; exit 1 ;;\nesac\n";
        let init = Path::new("/etc/init.d/gh-demo");
        std::fs::write(init, script).expect("init script");
        std::fs::set_permissions(init, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    });
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Sshd {
    /// Starts sshd on 127.0.0.1 with the given extra config lines (and
    /// MaxStartups raised, so that many connections at once are not dropped).
    pub fn start(extra_config: &str) -> Sshd {
        Sshd::start_with(
            "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nMaxStartups 100:30:200\n",
            extra_config,
        )
    }

    /// Starts sshd that takes passwords only through keyboard-interactive
    /// (PAM), as hardened hosts and network gear do.
    pub fn start_keyboard_interactive(extra_config: &str) -> Sshd {
        Sshd::start_with(
            "UsePAM yes\nPasswordAuthentication no\nKbdInteractiveAuthentication yes\nMaxStartups 100:30:200\n",
            extra_config,
        )
    }

    /// Starts sshd with OpenSSH's stock MaxStartups (10:30:100): past ten
    /// unauthenticated connections it drops new ones, as real fleets do.
    pub fn start_stock(extra_config: &str) -> Sshd {
        Sshd::start_with(
            "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n",
            extra_config,
        )
    }

    /// `prelude`: the authentication and MaxStartups lines (sshd takes the
    /// first value it reads for a keyword).
    fn start_with(prelude: &str, extra_config: &str) -> Sshd {
        ensure_test_user();
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let mut dir = tempfile::Builder::new()
            .prefix("gh-sshd")
            .tempdir()
            .expect("temp dir");
        // sshd reads authorized_keys as the test user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let host_key = keygen(dir.path(), "host_ed25519", "ed25519", "", None);
        let client_key = keygen(dir.path(), "client_ed25519", "ed25519", "", None);
        let pubkey = std::fs::read_to_string(client_key.with_extension("pub")).expect("pub key");
        let authorized = dir.path().join("authorized_keys");
        std::fs::write(&authorized, pubkey).expect("authorized_keys");
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let address = "127.0.0.1".to_string();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress {address}\nHostKey {}\nPidFile {}/sshd.pid\nAuthorizedKeysFile {}\n\
                     StrictModes no\n{prelude}\
                     PermitRootLogin yes\nLogLevel ERROR\n{extra_config}\n",
                    host_key.display(),
                    dir.path().display(),
                    authorized.display()
                ),
            )
            .expect("sshd_config");
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("sshd.log")).expect("log"))
                .spawn()
                .expect("start /usr/sbin/sshd (apt-get install openssh-server)");
            let mut sshd = Sshd {
                dir,
                port,
                address: address.clone(),
                child,
            };
            if sshd.wait_listening(Duration::from_secs(10)) {
                return sshd;
            }
            let _ = sshd.child.kill();
            let _ = sshd.child.wait();
            dir = sshd.take_dir();
        }
        panic!("sshd did not start; see its log");
    }

    /// Starts Dropbear (the SSH server of routers, appliances and small
    /// systems) on 127.0.0.1, with an ed25519 host key; it takes the test
    /// account's password.
    pub fn start_dropbear() -> Sshd {
        ensure_test_user();
        let dir = tempfile::Builder::new()
            .prefix("gh-dropbear")
            .tempdir()
            .expect("temp dir");
        let key = dir.path().join("dropbear_ed25519");
        run(Command::new("dropbearkey")
            .args(["-t", "ed25519", "-f"])
            .arg(&key)
            .stdout(Stdio::null()));
        let public = Command::new("dropbearkey")
            .arg("-y")
            .arg("-f")
            .arg(&key)
            .output()
            .expect("dropbearkey -y (apt-get install dropbear-bin)");
        let line = String::from_utf8_lossy(&public.stdout)
            .lines()
            .find(|l| l.starts_with("ssh-"))
            .expect("a public key line")
            .to_string();
        std::fs::write(dir.path().join("host_ed25519.pub"), line).expect("pub");
        let mut dir = dir;
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new("dropbear")
                .args(["-F", "-E", "-p", &format!("127.0.0.1:{port}"), "-r"])
                .arg(&key)
                .arg("-P")
                .arg(dir.path().join("dropbear.pid"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("dropbear.log")).expect("log"))
                .spawn()
                .expect("start dropbear (apt-get install dropbear-bin)");
            let mut server = Sshd {
                dir,
                port,
                address: "127.0.0.1".into(),
                child,
            };
            if server.wait_listening(Duration::from_secs(10)) {
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            dir = server.take_dir();
        }
        panic!("dropbear did not start; see its log");
    }

    fn take_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    fn wait_listening(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect((self.address.as_str(), self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The host public key file.
    pub fn host_pub(&self) -> PathBuf {
        self.dir.path().join("host_ed25519.pub")
    }

    /// The host key line, as in a `.pub` file.
    pub fn host_key_line(&self) -> String {
        std::fs::read_to_string(self.host_pub())
            .expect("host pub")
            .trim()
            .to_string()
    }

    /// The private key authorized for the test user.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// Authorizes another public key for the test user.
    pub fn authorize(&self, pub_file: &Path) {
        let mut keys =
            std::fs::read_to_string(self.dir.path().join("authorized_keys")).expect("read");
        keys.push_str(&std::fs::read_to_string(pub_file).expect("pub"));
        std::fs::write(self.dir.path().join("authorized_keys"), keys).expect("write");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
