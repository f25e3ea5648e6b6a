//! Running templates for real: a real sshd on loopback, keys made by
//! ssh-keygen, the real binary and its server.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::{eventually, history, logs, remote_processes, wait_final};
use common::sshd::{keygen, Sshd, TEST_PASSWORD, TEST_USER};
use common::DataDir;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// How the test logs in.
enum Auth<'a> {
    Password(&'a str),
    Key {
        file: &'a Path,
        passphrase: Option<&'a str>,
    },
}

struct Setup<'a> {
    sshd: &'a Sshd,
    devices: usize,
    pin: bool,
    auth: Auth<'a>,
    executor: &'a str,
    content: &'a str,
    task_extra: &'a str,
    variables: &'a str,
}

impl Setup<'_> {
    fn records(&self) -> String {
        let mut text =
            String::from("[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n");
        let names: Vec<String> = (1..=self.devices).map(|i| format!("dev-{i:03}")).collect();
        for name in &names {
            text.push_str(&format!(
                "[[device]]\nname = \"{name}\"\naddress = \"{}\"\nport = {}\nenvironment = \"lab\"\nsystem = \"box\"\n{}",
                self.sshd.address,
                self.sshd.port,
                if self.pin { format!("host_key = \"{}\"\n", self.sshd.host_key_line()) } else { String::new() }
            ));
        }
        text.push_str(&format!(
            "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\n"
        ));
        match &self.auth {
            Auth::Password(p) => text.push_str(&format!("password = \"{p}\"\n")),
            Auth::Key { file, passphrase } => {
                text.push_str(&format!("private_key_file = \"{}\"\n", file.display()));
                if let Some(p) = passphrase {
                    text.push_str(&format!("passphrase = \"{p}\"\n"));
                }
            }
        }
        text.push_str(&format!(
            "[[template]]\nname = \"t\"\nexecutor = \"{}\"\ncontent = '''\n{}'''\n{}",
            self.executor, self.content, self.variables
        ));
        text.push_str(&format!(
            "[[task]]\nname = \"run\"\ntemplate = \"t\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"login\"\ndevices = [{}]\n{}\n",
            names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
            self.task_extra
        ));
        text
    }

    fn load(&self, d: &DataDir) {
        let file = d.write("records.toml", &self.records());
        d.ok(&["import", file.to_str().unwrap()]);
    }
}

fn basic<'a>(sshd: &'a Sshd, content: &'a str) -> Setup<'a> {
    Setup {
        sshd,
        devices: 1,
        pin: true,
        auth: Auth::Password(TEST_PASSWORD),
        executor: "ssh-script",
        content,
        task_extra: "",
        variables: "",
    }
}

#[test]
fn a_script_runs_with_password_auth_and_streams_each_line_with_its_device() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    basic(&sshd, "echo hello from $(id -un)\necho oops >&2\n").load(&d);
    let out = d.run(&["request", "run", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("[dev-001] hello from {TEST_USER}")),
        "{stdout}"
    );
    assert!(stdout.contains("[dev-001 stderr] oops"), "{stdout}");
    let h = history(&d);
    assert_eq!(h[0]["state"], "succeeded");
    assert_eq!(h[0]["exit_status"], 0);
    assert_eq!(h[0]["attempts"], 1);
    assert_eq!(h[0]["requested_by"], "root");
    assert_eq!(
        h[0]["superuser_bypass"], true,
        "a Superuser's run is marked as such"
    );
}

#[test]
fn a_failing_script_fails_the_operation_with_its_exit_status() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    basic(&sshd, "echo about to fail\nexit 7\n").load(&d);
    let out = d.run(&["request", "run", "--wait"]);
    assert!(!out.status.success());
    let h = history(&d);
    assert_eq!(h[0]["state"], "failed");
    assert_eq!(h[0]["exit_status"], 7);
}

#[test]
fn key_auth_works_with_openssh_keys_encrypted_keys_and_pem_keys() {
    let sshd = Sshd::start("");
    let keys = tempfile::tempdir().unwrap();
    let encrypted = keygen(keys.path(), "enc", "ed25519", "open-sesame", None);
    let pem = keygen(keys.path(), "pem", "rsa", "", Some("PEM"));
    sshd.authorize(&encrypted.with_extension("pub"));
    sshd.authorize(&pem.with_extension("pub"));
    let cases: [(&Path, Option<&str>); 3] = [
        (&sshd.client_key(), None),
        (&encrypted, Some("open-sesame")),
        (&pem, None),
    ];
    for (file, passphrase) in cases {
        let d = DataDir::new();
        let mut setup = basic(&sshd, "echo key-login-ok\n");
        setup.auth = Auth::Key { file, passphrase };
        setup.load(&d);
        let out = d.run(&["request", "run", "--wait"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {stdout}", file.display());
        assert!(stdout.contains("key-login-ok"), "{stdout}");
    }
}

#[test]
fn a_wrong_password_fails_without_retrying_and_says_so() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo never\n");
    setup.auth = Auth::Password("not-the-password");
    setup.task_extra = "retries = 3";
    setup.load(&d);
    assert!(!d.run(&["request", "run", "--wait"]).status.success());
    let h = history(&d);
    assert_eq!(h[0]["state"], "failed");
    assert_eq!(
        h[0]["attempts"], 1,
        "an authentication failure is not retried"
    );
    assert!(
        h[0]["error"]
            .as_str()
            .unwrap()
            .contains("refused the password"),
        "{}",
        h[0]
    );
}

#[test]
fn an_unpinned_host_key_fails_showing_the_offered_fingerprint_until_trusted() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo trusted\n");
    setup.pin = false;
    setup.load(&d);
    assert!(!d.run(&["request", "run", "--wait"]).status.success());
    let fingerprint = common::sshd::fingerprint(&sshd.host_pub());
    let error = history(&d)[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("host key") && error.contains(&fingerprint),
        "{error}"
    );
    // Trusting asks for confirmation; --yes gives it.
    let refused = d.run(&["device", "trust", "dev-001"]);
    assert!(!refused.status.success());
    let trusted = d.ok(&["device", "trust", "dev-001", "--yes"]);
    assert!(trusted.contains(&fingerprint), "{trusted}");
    assert!(d.run(&["request", "run", "--wait"]).status.success());
    assert!(d.ok(&["audit", "export"]).contains("device.trust"));
    // Trusting it again finds the same keys pinned: said, exit 0, nothing asked.
    let again = d.ok(&["device", "trust", "dev-001"]);
    assert!(
        again.contains("already pinned: device dev-001 offers exactly the keys pinned"),
        "{again}"
    );
    // A device that does not answer is said as such, not as a refusal.
    let dead = d.write(
        "dead.toml",
        "[[device]]\nname = \"dead\"\naddress = \"127.0.0.1\"\nport = 1\nenvironment = \"lab\"\nsystem = \"box\"\n",
    );
    d.ok(&["import", dead.to_str().unwrap()]);
    let err = d.fails(&["device", "trust", "dead", "--yes"]);
    assert!(
        err.contains("cannot read the host keys of device 'dead'")
            && !err.contains("not permitted"),
        "{err}"
    );
}

#[test]
fn a_changed_host_key_fails_loudly() {
    let sshd = Sshd::start("");
    let other = tempfile::tempdir().unwrap();
    let stale = keygen(other.path(), "old_host", "ed25519", "", None);
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo should-not-run\n");
    setup.pin = false;
    setup.load(&d);
    let pinned = std::fs::read_to_string(stale.with_extension("pub")).unwrap();
    let file = d.write(
        "pin.toml",
        &format!(
            "[[device]]\nname = \"dev-001\"\naddress = \"{}\"\nport = {}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_key = \"{}\"\n",
            sshd.address,
            sshd.port,
            pinned.trim()
        ),
    );
    d.ok(&["import", file.to_str().unwrap()]);
    let out = d.run(&["request", "run", "--wait"]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("should-not-run"));
    let error = history(&d)[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("HOST KEY CHANGED"), "{error}");
}

#[test]
fn an_expect_template_drives_a_shell_and_a_timeout_names_the_waiting_line() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(
        &sshd,
        "expect \"*$\" timeout 10\nexec \"echo expect-[#WHO#]-ok\"\nexpect \"*expect-alice-ok*$\"\nend\n",
    );
    setup.executor = "ssh-expect";
    setup.variables = "[[template.variable]]\nname = \"WHO\"\ndefault = \"nobody\"\n";
    setup.load(&d);
    let out = d.run(&["request", "run", "--var", "WHO=alice", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("expect-alice-ok"), "{stdout}");

    let d = DataDir::new();
    let mut setup = basic(
        &sshd,
        "expect \"*$\" timeout 10\nexec \"echo hi\"\nexpect \"*never-printed*\" timeout 1\nend\n",
    );
    setup.executor = "ssh-expect";
    setup.load(&d);
    assert!(!d.run(&["request", "run", "--wait"]).status.success());
    let error = history(&d)[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("line 3") && error.contains("*never-printed*"),
        "{error}"
    );
    assert!(error.contains("last output"), "{error}");
}

#[test]
fn a_value_outside_the_variable_pattern_is_refused_naming_the_variable() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo [#NAME#]\n");
    setup.variables = "[[template.variable]]\nname = \"NAME\"\ndefault = \"x\"\n";
    setup.load(&d);
    let err = d.fails(&["request", "run", "--var", "NAME=$(reboot)"]);
    assert!(err.contains("variable NAME"), "{err}");
    assert!(history(&d).is_empty(), "nothing ran");
    // A value that passes is shell-quoted into the script.
    let out = d.run(&["request", "run", "--var", "NAME=a/b@c", "--wait"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[dev-001] a/b@c"));
}

#[test]
fn a_secret_echoed_by_the_remote_side_is_redacted_even_split_across_reads() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let b = &TEST_PASSWORD[10..];
    // The template holds only the mask; the remote shell prints the value,
    // once whole and once in two writes half a second apart.
    let script = "p='[#AUTH_PASSWORD#]'\necho whole: $p\nprintf 'split: %s' \"${p:0:10}\"; sleep 0.5; printf '%s done\\n' \"${p:10}\"\n";
    basic(&sshd, script).load(&d);
    let out = d.run(&["request", "run", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        !stdout.contains(TEST_PASSWORD) && !stdout.contains(b),
        "{stdout}"
    );
    assert!(stdout.contains("whole: [#AUTH_PASSWORD#]"), "{stdout}");
    assert!(stdout.contains("split: [#AUTH_PASSWORD#] done"), "{stdout}");
    let stored = logs(&d, &history(&d)[0]);
    assert!(!stored.contains(TEST_PASSWORD), "{stored}");
    d.ok(&["shutdown"]);
    for f in common::files_under(d.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !common::contains_bytes(&bytes, TEST_PASSWORD.as_bytes()),
            "{} holds the password",
            f.display()
        );
    }
}

#[test]
fn a_closed_port_is_retried_as_often_as_the_task_allows() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let setup = basic(&sshd, "true\n");
    let text = setup
        .records()
        .replace(&format!("port = {}", sshd.port), &format!("port = {port}"))
        + "";
    let text = text.replace(
        "credential = \"login\"\ndevices",
        "credential = \"login\"\nretries = 2\ndevices",
    );
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    assert!(!d.run(&["request", "run", "--wait"]).status.success());
    let h = history(&d);
    assert_eq!(h[0]["state"], "failed");
    assert_eq!(h[0]["attempts"], 3, "{}", h[0]);
    let log = logs(&d, &h[0]);
    assert!(log.contains("attempt 3 of 3"), "{log}");
}

#[test]
fn fifty_devices_run_in_parallel_through_one_sshd() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "sleep 1; echo done on [#DEVICE#]\n");
    setup.devices = 50;
    setup.task_extra = "parallelism = 50";
    setup.load(&d);
    let start = Instant::now();
    let out = d.run(&["request", "run", "--wait"]);
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 1..=50 {
        assert!(
            stdout.contains(&format!("[dev-{i:03}] done on dev-{i:03}")),
            "dev-{i:03} missing"
        );
    }
    // Fifty one-second scripts one after another would take fifty seconds.
    assert!(took < Duration::from_secs(40), "not parallel: {took:?}");
    assert!(history(&d).iter().all(|o| o["state"] == "succeeded"));
}

#[test]
fn cancel_stops_a_running_operation() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    basic(&sshd, "echo started\nsleep 67\necho finished\n").load(&d);
    d.ok(&["request", "run"]);
    let start = Instant::now();
    let id = loop {
        let h = history(&d);
        if h[0]["state"] == "running" && logs(&d, &h[0]).contains("started") {
            break h[0]["id"].to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never ran: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    d.ok(&["cancel", &id]);
    let h = wait_final(&d, 1, Duration::from_secs(20));
    assert_eq!(h[0]["state"], "cancelled");
    assert!(!logs(&d, &h[0]).contains("finished"));
    // The remote command is gone too, not left running.
    let start = Instant::now();
    while remote_sleeps("sleep 67") > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the remote command still runs after cancel"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_child_task_runs_on_the_device_where_its_parent_succeeded() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo step on [#DEVICE#]\n");
    setup.devices = 2;
    setup.task_extra = "children = [\"after\"]";
    let text = setup.records()
        + "[[task]]\nname = \"after\"\ntemplate = \"t\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"login\"\ndevices = [\"dev-001\"]\n";
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["request", "run", "--device", "dev-002", "--wait"]);
    let start = Instant::now();
    let child = loop {
        let h = history(&d);
        if let Some(c) = h
            .iter()
            .find(|o| o["task"] == "after" && o["state"] == "succeeded")
        {
            break c.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no child ran: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        child["device"], "dev-002",
        "the child runs where the parent ran"
    );
    assert!(child["trigger"].as_str().unwrap().starts_with("chain from"));
}

#[test]
fn a_scheduled_task_creates_its_operations_on_time() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo tick\n");
    // Seconds field first: every two seconds.
    setup.task_extra = "schedule = \"*/2 * * * * *\"";
    setup.load(&d);
    // A schedule runs under someone's request: here a Superuser's.
    let authorised = d.ok(&["request", "run", "--schedule"]);
    assert!(authorised.contains("as Superuser"), "{authorised}");
    let start = Instant::now();
    let op = loop {
        let h = history(&d);
        if let Some(o) = h
            .iter()
            .find(|o| o["trigger"] == "schedule" && o["state"] == "succeeded")
        {
            break o.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the schedule never fired: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Run as the request's, marked as a Superuser's.
    assert_ne!(op["requested_by"], "schedule");
    assert_eq!(op["superuser_bypass"], true);
    assert!(logs(&d, &op).contains("tick"));
}

#[test]
fn operations_running_when_the_server_dies_come_back_interrupted() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    basic(&sshd, "echo running\nsleep 60\n").load(&d);
    d.ok(&["request", "run"]);
    let start = Instant::now();
    loop {
        let h = history(&d);
        // Running, and its first line stored.
        if h[0]["state"] == "running" && logs(&d, &h[0]).contains("running") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never ran: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // kill -9 the server that holds the data directory's lock.
    let pid = server_pid(d.path());
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    let h = history(&d);
    assert_eq!(h[0]["state"], "interrupted", "{}", h[0]);
    assert!(h[0]["finished_at"].is_string());
    // What it printed before the stop is counted, not 0.
    assert!(
        h[0]["output_bytes"].as_u64().unwrap() >= "running\n".len() as u64,
        "{}",
        h[0]
    );
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
}

/// The pid of the personal server of a data directory, from /proc.
fn server_pid(dir: &Path) -> u32 {
    common::server_pid(dir).unwrap_or_else(|| panic!("no server process for {}", dir.display()))
}

/// How many processes of the test user run this command line.
fn remote_sleeps(pattern: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-u", common::sshd::TEST_USER, "-f", pattern])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A connection lost after the script started is not a failure to connect:
/// the script may have run, so it is not run again unless the task says
/// that is safe, and the operation says so.
#[test]
fn a_connection_lost_mid_run_is_not_run_again_unless_the_task_allows_it() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start("");
    let marks = tempfile::tempdir().unwrap();
    std::fs::set_permissions(marks.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Each run leaves a mark, then loses its connection: the script kills
    // the sshd session that serves it.
    let content = format!(
        "echo ran >> {}/runs\nkill -9 $PPID\nsleep 5\n",
        marks.path().display()
    );
    let runs = || {
        std::fs::read_to_string(marks.path().join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let d = DataDir::new();
    let mut setup = basic(&sshd, &content);
    setup.task_extra = "retries = 2";
    setup.load(&d);
    d.run(&["request", "run", "--wait"]);
    let op = wait_final(&d, 1, Duration::from_secs(30))[0].clone();
    assert_eq!(op["state"], "failed", "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("may have run on the device, so it was not run again"),
        "{error}"
    );
    assert_eq!(runs(), 1, "run once, not again");
    // Positive control: a task that says running twice is safe is retried.
    let d = DataDir::new();
    std::fs::remove_file(marks.path().join("runs")).unwrap();
    setup.task_extra = "retries = 2\nretry_on_failure = true";
    setup.load(&d);
    d.run(&["request", "run", "--wait"]);
    wait_final(&d, 1, Duration::from_secs(60));
    assert_eq!(runs(), 3, "three attempts where the task allows them");
}

/// Fifty devices behind one stock OpenSSH (MaxStartups 10:30:100, which
/// drops new connections past ten unauthenticated ones) all succeed with
/// no retries: admission stays under the limit and takes a dropped
/// handshake as the server's throttling, not as a failed attempt.
#[test]
fn fifty_devices_on_one_stock_sshd_all_succeed_without_retries() {
    let sshd = Sshd::start_stock("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo ok\n");
    setup.devices = 50;
    setup.task_extra = "retries = 0\nparallelism = 50";
    setup.load(&d);
    d.run(&["request", "run"]);
    let ops = wait_final(&d, 50, Duration::from_secs(120));
    let failed: Vec<&Value> = ops.iter().filter(|o| o["state"] != "succeeded").collect();
    assert!(
        failed.is_empty(),
        "{} of 50 failed: {:?}",
        failed.len(),
        failed.first()
    );
}

/// Remote work ends when the operation does: a timeout and a cancel stop
/// the script and every process it started on the target.
#[test]
fn a_timeout_and_a_cancel_leave_no_process_behind_on_the_target() {
    let sshd = Sshd::start("");
    // A background child and a foreground one, each with its own mark.
    let mut setup = basic(&sshd, "sleep 293 &\necho started\nsleep 294\n");
    setup.task_extra = "timeout = 2\nretries = 0";
    let d = DataDir::new();
    setup.load(&d);
    d.run(&["request", "run"]);
    // Positive control: both run on the target while the operation does.
    eventually(
        "the script's processes never ran",
        Duration::from_secs(10),
        || remote_processes("sleep 293") == 1 && remote_processes("sleep 294") == 1,
    );
    let op = wait_final(&d, 1, Duration::from_secs(20))[0].clone();
    assert_eq!(op["state"], "failed", "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 2 s"), "{error}");
    assert!(!error.contains("may still be running"), "{error}");
    eventually(
        "a process outlived the timed-out operation",
        Duration::from_secs(5),
        || remote_processes("sleep 293") == 0 && remote_processes("sleep 294") == 0,
    );

    // Cancelled while it runs: the same.
    let mut setup = basic(&sshd, "sleep 295 &\necho started\nsleep 296\n");
    setup.task_extra = "timeout = 60\nretries = 0";
    let d = DataDir::new();
    setup.load(&d);
    d.run(&["request", "run"]);
    eventually(
        "the script's processes never ran",
        Duration::from_secs(10),
        || remote_processes("sleep 296") == 1,
    );
    let id = history(&d)[0]["id"].to_string();
    d.ok(&["cancel", &id]);
    let op = wait_final(&d, 1, Duration::from_secs(20))[0].clone();
    assert_eq!(op["state"], "cancelled", "{op}");
    eventually(
        "a process outlived the cancelled operation",
        Duration::from_secs(5),
        || remote_processes("sleep 295") == 0 && remote_processes("sleep 296") == 0,
    );
}

/// `end` leaves every shell level a template opened (as `sudo su` does)
/// within a moment, and reports the status the inner shell's last command
/// gave, not a 0 that never arrived.
#[test]
fn end_leaves_nested_shells_and_reports_the_inner_status() {
    let sshd = Sshd::start("");
    let template = |last: &str| {
        format!(
            "expect \"*$\" timeout 10\nexec \"bash\"\nexpect \"*$\" timeout 10\nexec \"{last}\"\nexpect \"*$\" timeout 10\nend\n"
        )
    };
    for (last, state, code) in [("false", "failed", 1), ("true", "succeeded", 0)] {
        let content = template(last);
        let d = DataDir::new();
        let mut setup = basic(&sshd, &content);
        setup.executor = "ssh-expect";
        setup.task_extra = "retries = 0";
        setup.load(&d);
        let started = Instant::now();
        d.run(&["request", "run", "--wait"]);
        let took = started.elapsed();
        let op = history(&d)[0].clone();
        assert_eq!(op["state"], state, "{last}: {op}");
        assert_eq!(op["exit_status"], code, "{last}: {op}");
        assert!(took < Duration::from_secs(8), "{last}: `end` took {took:?}");
    }
}

/// Expect patterns match the output as a person reads it: a cursor query
/// (busybox sends `ESC[6n` after its prompt) and colours do not hide a
/// prompt, and a pattern's trailing blank is matched, not dropped. A step
/// whose own timeout is longer than the task's still fails with its line
/// and the last output.
#[test]
fn expect_matches_through_terminal_escapes_and_keeps_its_line_on_timeout() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let content = "expect \"*$\" timeout 10\n\
        exec \"printf 'ready$ \\\\033[6n'; read answer\"\n\
        expect \"*ready$ \" timeout 5\n\
        exec \"go\"\n\
        exec \"printf '\\\\033[01;32mgreen\\\\033[0m%%s' '>'\"\n\
        expect \"*green>*$\" timeout 5\n\
        exec \"echo matched-all\"\n\
        expect \"*matched-all*\" timeout 5\n\
        end\n";
    let content = content.replace("%%", "%");
    let mut setup = basic(&sshd, &content);
    setup.executor = "ssh-expect";
    setup.task_extra = "retries = 0";
    setup.load(&d);
    d.run(&["request", "run", "--wait"]);
    let op = history(&d)[0].clone();
    assert_eq!(op["state"], "succeeded", "{op}: {}", logs(&d, &op));

    // The task gives 4 s; the step asks for 30: the step's error comes first.
    let d = DataDir::new();
    let mut setup = basic(
        &sshd,
        "expect \"*$\" timeout 10\nexec \"echo waiting\"\nexpect \"*never-printed*\" timeout 30\nend\n",
    );
    setup.executor = "ssh-expect";
    setup.task_extra = "retries = 0\ntimeout = 4";
    setup.load(&d);
    d.run(&["request", "run", "--wait"]);
    let op = history(&d)[0].clone();
    let error = op["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("line 3") && error.contains("last output") && error.contains("waiting"),
        "{error}"
    );
}

/// A host that takes passwords only through keyboard-interactive (PAM, as
/// hardened hosts and network gear do) is logged into with the credential's
/// password; a refusal names what was tried and what the server offers.
#[test]
fn keyboard_interactive_hosts_take_the_password() {
    let sshd = Sshd::start_keyboard_interactive("");
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo logged-in-through-pam\n");
    setup.task_extra = "retries = 0";
    setup.load(&d);
    let out = d.run(&["request", "run", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("logged-in-through-pam"), "{stdout}");
    // A wrong password: refused, naming the methods.
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo never\n");
    setup.auth = Auth::Password("wrong-password");
    setup.task_extra = "retries = 0";
    setup.load(&d);
    d.run(&["request", "run", "--wait"]);
    let error = history(&d)[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("refused the password") && error.contains("keyboard-interactive"),
        "{error}"
    );
}

/// An encrypted key is checked at import: a wrong passphrase, or none, is
/// refused under its field, before any run fails on it.
#[test]
fn an_encrypted_key_is_checked_against_its_passphrase_at_import() {
    let sshd = Sshd::start("");
    let keys = tempfile::tempdir().unwrap();
    let encrypted = keygen(keys.path(), "enc", "ed25519", "open-sesame", None);
    for (passphrase, field) in [(Some("not-the-one"), "passphrase"), (None, "private_key")] {
        let d = DataDir::new();
        let mut setup = basic(&sshd, "echo never\n");
        setup.auth = Auth::Key {
            file: &encrypted,
            passphrase,
        };
        let file = d.write("records.toml", &setup.records());
        let err = d.fails(&["import", file.to_str().unwrap()]);
        assert!(err.contains(&format!("field `{field}`")), "{err}");
        assert!(!err.contains("open-sesame"), "{err}");
    }
    // Positive control: the right passphrase imports.
    let d = DataDir::new();
    let mut setup = basic(&sshd, "echo never\n");
    setup.auth = Auth::Key {
        file: &encrypted,
        passphrase: Some("open-sesame"),
    };
    setup.load(&d);
}

/// `send` types text without a newline: a one-key answer and a Ctrl-C that
/// interrupts a command, as a person at the terminal would. The marker the
/// Ctrl-C waits for is printed by the process it interrupts, which is then
/// the terminal's foreground (a marker printed by the shell before it
/// starts `sleep` raced the shell handing the terminal over).
#[test]
fn send_answers_with_one_key_and_interrupts_with_ctrl_c() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let content = "expect \"*$\" timeout 10\n\
        exec \"read -n 1 answer; echo; echo got-$answer\"\n\
        send \"y\"\n\
        expect \"*got-y*$\" timeout 20\n\
        exec \"sh -c 'echo sl$((1+1))eeping; exec sleep 60'\"\n\
        expect \"*sl2eeping*\" timeout 20\n\
        send \"^C\"\n\
        expect \"*$\" timeout 20\n\
        exec \"echo after-interrupt\"\n\
        expect \"*after-interrupt*$\" timeout 20\n\
        end\n";
    let mut setup = basic(&sshd, content);
    setup.executor = "ssh-expect";
    // Room for a loaded machine (the other tests run beside it); the
    // sleep is a minute, so an interrupt that did not land still fails.
    setup.task_extra = "retries = 0\ntimeout = 120";
    setup.load(&d);
    let started = Instant::now();
    d.run(&["request", "run", "--wait"]);
    let op = history(&d)[0].clone();
    assert_eq!(op["state"], "succeeded", "{op}: {}", logs(&d, &op));
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "the sleep was not interrupted"
    );
}

/// A host with several host keys, pinned by one that is not the client's
/// first choice (as `ssh-keyscan` or a `known_hosts` line gives an RSA or
/// ECDSA key), is reached with the pinned key's algorithm, not reported as
/// changed; a wrong pin is still refused, naming both key types.
#[test]
fn a_host_with_several_keys_is_reached_by_the_one_pinned() {
    let keys = tempfile::tempdir().unwrap();
    let rsa = keygen(keys.path(), "host_rsa", "rsa", "", None);
    let ecdsa = keygen(keys.path(), "host_ecdsa", "ecdsa", "", None);
    let sshd = Sshd::start(&format!(
        "HostKey {}\nHostKey {}",
        rsa.display(),
        ecdsa.display()
    ));
    for key in [&rsa, &ecdsa] {
        let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let d = DataDir::new();
        let mut setup = basic(&sshd, "echo reached-by-pinned-key\n");
        setup.pin = false;
        setup.task_extra = "retries = 0";
        let records = setup.records().replacen(
            "environment = \"lab\"\nsystem = \"box\"\n[[credential]]",
            &format!(
                "environment = \"lab\"\nsystem = \"box\"\nhost_key = \"{}\"\n[[credential]]",
                line.trim()
            ),
            1,
        );
        assert!(records.contains("host_key"), "{records}");
        let file = d.write("records.toml", &records);
        d.ok(&["import", file.to_str().unwrap()]);
        let out = d.run(&["request", "run", "--wait"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("reached-by-pinned-key"),
            "{}: {stdout} {}",
            key.display(),
            history(&d)[0]["error"]
        );
    }
    // A pin the host does not have: refused, naming both key types.
    let stranger = keygen(keys.path(), "stranger", "ecdsa", "", None);
    let line = std::fs::read_to_string(stranger.with_extension("pub")).unwrap();
    let d = DataDir::new();
    let mut setup = basic(
        &sshd,
        "echo never
",
    );
    setup.pin = false;
    setup.task_extra = "retries = 0";
    let records = setup.records().replacen(
        "environment = \"lab\"\nsystem = \"box\"\n[[credential]]",
        &format!(
            "environment = \"lab\"\nsystem = \"box\"\nhost_key = \"{}\"\n[[credential]]",
            line.trim()
        ),
        1,
    );
    let file = d.write("records.toml", &records);
    d.ok(&["import", file.to_str().unwrap()]);
    d.run(&["request", "run", "--wait"]);
    let error = history(&d)[0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("HOST KEY CHANGED")
            && error.contains("pinned ecdsa-sha2-nistp256")
            && error.contains("offered ecdsa-sha2-nistp256"),
        "{error}"
    );
}
