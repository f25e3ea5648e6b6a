//! Just-in-time elevation on a real machine: the grant creates a drop-in
//! file over SSH, the revoke removes it at expiry, also when the expiry
//! passed while the server was down.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::sshd::Sshd;
use common::DataDir;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn records(sshd: &Sshd, dir: &Path, revoke: &str) -> String {
    format!(
        r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
[[device]]
name = "box-1"
address = "{address}"
port = {port}
environment = "lab"
system = "box"
host_key = "{host_key}"
[[template]]
name = "grant-sudo"
executor = "ssh-script"
execution_type = "jit-grant"
content = "echo 'ops ALL=(ALL) NOPASSWD: ALL' > [#DIR#]/90-ops && echo granted"
[[template.variable]]
name = "DIR"
default = "{dir}"
[[template]]
name = "revoke-sudo"
executor = "ssh-script"
execution_type = "jit-revoke"
content = "{revoke}"
[[template.variable]]
name = "DIR"
default = "{dir}"
[[credential]]
name = "root-jit"
username = "root"
private_key_file = "{key}"
jit_grant_template = "grant-sudo"
jit_revoke_template = "revoke-sudo"
[[task]]
name = "elevate"
template = "grant-sudo"
environment = "lab"
system = "box"
devices = ["box-1"]
credential = "root-jit"
"#,
        address = sshd.address,
        port = sshd.port,
        host_key = sshd.host_key_line(),
        dir = dir.display(),
        key = sshd.client_key().display(),
    )
}

fn grants(d: &DataDir) -> Vec<Value> {
    d.ok(&["jit", "--all", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_grant_is_created_on_the_device_and_revoked_at_expiry() {
    let sshd = Sshd::start("");
    let drop_in = tempfile::tempdir().unwrap();
    let d = DataDir::new();
    let file = d.write(
        "r.toml",
        &records(
            &sshd,
            drop_in.path(),
            "rm -f [#DIR#]/90-ops && echo revoked",
        ),
    );
    d.ok(&["import", file.to_str().unwrap()]);
    // A JIT task without a duration would never be revoked: refused.
    assert!(d.fails(&["request", "elevate"]).contains("--duration"));
    d.ok(&["request", "elevate", "--duration", "3s"]);
    let file = drop_in.path().join("90-ops");
    wait_until(Duration::from_secs(10), "the grant record", || {
        grants(&d).len() == 1
    });
    assert!(file.exists(), "the grant made the drop-in file");
    assert_eq!(grants(&d)[0]["revoked"], false);
    wait_until(Duration::from_secs(20), "the revoke", || !file.exists());
    wait_until(Duration::from_secs(10), "the grant to show revoked", || {
        grants(&d)[0]["revoked"] == true
    });
    // With --wait, the request holds until the revoke has run.
    let start = Instant::now();
    let out = d.run(&["request", "elevate", "--duration", "2s", "--wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("granted"));
    assert!(stderr.contains("revoked at"), "{stderr}");
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(!file.exists(), "--wait returned only after the revoke");
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.contains("\"action\":\"jit.grant\"") && audit.contains("\"action\":\"jit.revoke\"")
    );
}

#[test]
fn a_failing_revoke_is_retried_and_shown_loudly() {
    let sshd = Sshd::start("");
    let drop_in = tempfile::tempdir().unwrap();
    let d = DataDir::new();
    // The revoke fails until a marker file appears.
    let revoke = "test -e [#DIR#]/allow-revoke && rm -f [#DIR#]/90-ops";
    let file = d.write("r.toml", &records(&sshd, drop_in.path(), revoke));
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["request", "elevate", "--duration", "1s"]);
    wait_until(Duration::from_secs(20), "a failing revoke", || {
        grants(&d).first().is_some_and(|g| {
            g["state"]
                .as_str()
                .unwrap_or("")
                .starts_with("REVOKE FAILING")
        })
    });
    assert!(d.ok(&["audit", "export"]).contains("jit.revoke.failed"));
    std::fs::write(drop_in.path().join("allow-revoke"), "").unwrap();
    wait_until(Duration::from_secs(30), "the retried revoke", || {
        !drop_in.path().join("90-ops").exists()
    });
    wait_until(Duration::from_secs(10), "the grant to show revoked", || {
        grants(&d)[0]["revoked"] == true
    });
}

#[test]
fn a_revoke_due_while_the_server_was_down_runs_at_start() {
    let sshd = Sshd::start("");
    let drop_in = tempfile::tempdir().unwrap();
    let d = DataDir::new();
    let file = d.write(
        "r.toml",
        &records(
            &sshd,
            drop_in.path(),
            "rm -f [#DIR#]/90-ops && echo revoked",
        ),
    );
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["request", "elevate", "--duration", "4s"]);
    wait_until(Duration::from_secs(10), "the grant record", || {
        grants(&d).len() == 1
    });
    d.ok(&["shutdown"]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        drop_in.path().join("90-ops").exists(),
        "nothing revoked while the server was down"
    );
    // Any command starts the server again; the overdue revoke runs at once.
    d.ok(&["whoami"]);
    wait_until(Duration::from_secs(20), "the late revoke", || {
        !drop_in.path().join("90-ops").exists()
    });
}

/// A revoke takes a privilege back, so it runs even when the person it was
/// granted to was disabled meanwhile (every other run's start checks its
/// requester; this one must not wait for them).
#[test]
fn a_revoke_runs_after_its_requester_was_disabled() {
    let sshd = Sshd::start("");
    let drop_in = tempfile::tempdir().unwrap();
    let d = DataDir::new();
    let text = records(
        &sshd,
        drop_in.path(),
        "rm -f [#DIR#]/90-ops && echo revoked",
    ) + "\n[[user]]\nlogin = \"alice\"\nroles = [\"Superuser\"]\n";
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["--as", "alice", "request", "elevate", "--duration", "3s"]);
    let file = drop_in.path().join("90-ops");
    wait_until(Duration::from_secs(10), "the grant", || file.exists());
    d.ok(&["disable", "user", "alice"]);
    wait_until(Duration::from_secs(20), "the revoke", || !file.exists());
    wait_until(Duration::from_secs(10), "the grant to show revoked", || {
        grants(&d)[0]["revoked"] == true
    });
}

/// The lease runs for what was asked from the moment the privilege
/// exists, however long the approval took; `jit` says whether the
/// credential was used during it; its holder may end it early.
#[test]
fn a_lease_starts_at_the_grant_shows_its_use_and_its_holder_ends_it() {
    let sshd = Sshd::start("");
    let drop_in = tempfile::tempdir().unwrap();
    let d = DataDir::new();
    let text = records(
        &sshd,
        drop_in.path(),
        "rm -f [#DIR#]/90-ops && echo revoked",
    ) + r#"
[[template]]
name = "whoami"
executor = "ssh-script"
content = "id -un"
[[task]]
name = "use-root"
template = "whoami"
environment = "lab"
system = "box"
devices = ["box-1"]
credential = "root-jit"
[[user]]
login = "alice"
roles = ["User"]
[[user]]
login = "bob"
roles = ["User"]
[[policy]]
name = "lab-jit"
requires_approval = true
users = ["alice"]
environments = ["lab"]
approvers = [{ user = "bob", level = 1 }]
"#;
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    let filed = d.ok(&["--as", "alice", "request", "elevate", "--duration", "30s"]);
    let id = filed
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    // The approval takes a while: the lease must not shrink by it.
    std::thread::sleep(Duration::from_secs(4));
    d.ok(&["--as", "bob", "approve", &id]);
    wait_until(Duration::from_secs(15), "the grant", || {
        grants(&d).len() == 1
    });
    let g = &grants(&d)[0];
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(g[k].as_str().unwrap()).unwrap();
    let lease = (at("expires_at") - at("granted_at")).num_milliseconds();
    assert!(
        (29_000..=31_000).contains(&lease),
        "lease of {lease} ms: {g}"
    );
    assert_eq!(g["used"], false, "{g}");
    assert!(g["remaining_secs"].as_i64().unwrap() > 20, "{g}");

    // alice uses the credential during the lease: `jit` shows that use.
    let filed = d.ok(&["--as", "alice", "request", "use-root"]);
    let use_id = filed
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    d.ok(&["--as", "bob", "approve", &use_id]);
    wait_until(Duration::from_secs(15), "the use to show", || {
        grants(&d)[0]["used"] == true
    });
    let used_by = grants(&d)[0]["used_by_operations"].clone();
    let ops: Vec<Value> = d
        .ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let use_op = ops.iter().find(|o| o["task"] == "use-root").unwrap();
    assert_eq!(used_by, serde_json::json!([use_op["id"]]), "{used_by}");

    // Its holder ends it early, without manage-credentials.
    let grant_id = grants(&d)[0]["id"].to_string();
    d.ok(&["--as", "alice", "jit", "revoke", &grant_id]);
    let file = drop_in.path().join("90-ops");
    wait_until(Duration::from_secs(15), "the early revoke", || {
        !file.exists()
    });
    // Someone else may not.
    let err = d.fails(&["--as", "bob", "jit", "revoke", &grant_id]);
    assert!(err.contains("manage-credentials"), "{err}");
}
