//! The CLI end to end through the real binary and its background server.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::{contains_bytes, files_under, DataDir};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const SECRET_PASSWORD: &str = "pw-Zq8#unique-never-stored";
const SECRET_PASSPHRASE: &str = "pp-Kx3!unique-never-stored";

fn base_records() -> &'static str {
    r#"
[[environment]]
name = "production"

[[system]]
name = "web"

[[device]]
name = "web-1"
address = "127.0.0.1"
port = 2222
product = "Linux"
tags = ["web"]
environment = "production"
system = "web"

[[template]]
name = "restart"
executor = "ssh-script"
content = "systemctl restart [#SERVICE#]\n"
[[template.variable]]
name = "SERVICE"
description = "unit"
default = "nginx"
"#
}

#[test]
fn demo_loads_and_lists_every_kind() {
    let d = DataDir::new();
    let out = d.ok(&["demo"]);
    assert!(out.contains("created device web-1"), "{out}");
    for kind in [
        "environments",
        "systems",
        "devices",
        "credentials",
        "reasons",
        "templates",
        "tasks",
        "users",
        "roles",
        "policies",
    ] {
        let list = d.ok(&["list", kind]);
        assert!(!list.trim().is_empty(), "no {kind} after demo");
    }
    assert!(d.ok(&["list", "roles"]).contains("Superuser"));
    // Loading it again changes nothing but, in another hour, the policy's
    // window (set from the hour it is loaded).
    let again = d.ok(&["demo"]);
    assert!(again.contains("0 created, "), "{again}");
    for line in again.lines().filter(|l| l.starts_with("updated ")) {
        assert_eq!(line, "updated policy production-web", "{again}");
    }
}

#[test]
fn the_demos_first_task_shows_real_output_and_its_placeholders_are_said() {
    let d = DataDir::new();
    let out = d.ok(&["demo"]);
    // What the placeholder devices are, and that the policy's window is open now.
    assert!(
        out.contains("web-1, web-2, db-1 and web-staging are placeholders"),
        "{out}"
    );
    assert!(
        out.contains("policy production-web lets alice request with bob's approval every day"),
        "{out}"
    );
    let ran = d.ok(&["request", "host-summary", "--wait"]);
    assert!(ran.contains("on this-host"), "{ran}");
    let ops: Vec<serde_json::Value> = d
        .ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let op = ops
        .iter()
        .find(|o| o["task"] == "host-summary")
        .expect("the run is in history");
    assert_eq!(op["state"], "succeeded", "{op}");
    let id = op["id"].to_string();
    let logs = d.ok(&["logs", &id]);
    // Real output of this machine: its own host name and the local executor's line.
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert!(logs.contains(&format!("running on {host} as ")), "{logs}");
    assert!(logs.contains("--- disk"), "{logs}");
    assert!(logs.contains("MemTotal"), "{logs}");
    // The approval tour works now: alice's request waits for bob.
    let filed = d.ok(&[
        "--as",
        "alice",
        "request",
        "nginx-status",
        "--justification",
        "tour",
        "--reason",
        "incident",
    ]);
    assert!(
        filed.contains("pending at level 1 (policy production-web)"),
        "{filed}"
    );
}

#[test]
fn export_then_import_into_a_fresh_store_gives_the_same_records() {
    let a = DataDir::new();
    a.ok(&["demo"]);
    let exported = a.ok(&["export"]);
    let b = DataDir::new();
    let file = b.write("export.toml", &exported);
    b.ok(&["import", file.to_str().unwrap()]);
    let again = b.ok(&["export"]);
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&exported), body(&again));
    // Secrets never leave: the credential exports without its password.
    assert!(!exported.contains("demo-password-change-me"));
    assert!(exported.contains("[[credential]]"));
}

#[test]
fn a_bad_record_imports_nothing_and_names_record_field_and_line() {
    let d = DataDir::new();
    let text = format!(
        "{}\n[[task]]\nname = \"restart-web\"\ntemplate = \"restart\"\nenvironment = \"production\"\nsystem = \"web\"\ndevices = [\"web-1\"]\ncredential = \"missing-cred\"\n",
        base_records()
    );
    let file = d.write("bad.toml", &text);
    let err = d.fails(&["import", file.to_str().unwrap()]);
    let task_line = text.lines().position(|l| l == "[[task]]").unwrap() + 1;
    assert!(err.contains("task 'restart-web'"), "{err}");
    assert!(err.contains("field `credential`"), "{err}");
    assert!(err.contains(&format!("line {task_line}")), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(d.ok(&["list", "environments"]).trim(), "", "all or nothing");
}

#[test]
fn syntax_errors_and_unknown_fields_name_the_line() {
    let d = DataDir::new();
    let file = d.write(
        "typo.toml",
        "[[environment]]\nname = \"a\"\n\n[[device]]\nname = \"x\"\nadress = \"1.2.3.4\"\n",
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("line 6") && err.contains("adress"), "{err}");
    let file = d.write("broken.toml", "[[environment]]\nname = \"a\n");
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn template_errors_name_line_and_column() {
    let d = DataDir::new();
    let text = "[[template]]\nname = \"t\"\nexecutor = \"ssh-expect\"\ncontent = \"\"\"\nexpect \"*$\"\n  sned \"x\"\n\"\"\"\n";
    let file = d.write("t.toml", text);
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("template 't'"), "{err}");
    assert!(err.contains("line 2, column 3"), "{err}");
    assert!(err.contains("unknown statement 'sned'"), "{err}");
    let text =
        "[[template]]\nname = \"t\"\nexecutor = \"ssh-script\"\ncontent = \"echo [#WHO#]\"\n";
    let err = d.fails(&["import", d.write("t2.toml", text).to_str().unwrap()]);
    assert!(
        err.contains("unknown mask [#WHO#]") && err.contains("column 6"),
        "{err}"
    );
}

#[test]
fn a_record_in_use_cannot_be_deleted_only_disabled() {
    let d = DataDir::new();
    d.ok(&["demo"]);
    let err = d.fails(&["delete", "template", "service-status"]);
    assert!(err.contains("in use by task 'nginx-status'"), "{err}");
    d.ok(&["disable", "template", "service-status"]);
    assert!(d
        .ok(&["list", "templates"])
        .lines()
        .any(|l| l.starts_with("service-status") && l.contains("disabled")));
    d.ok(&["delete", "template", "jump-host-uptime"]);
    assert!(!d.ok(&["list", "templates"]).contains("jump-host-uptime"));
    let err = d.fails(&["delete", "role", "Superuser"]);
    assert!(err.contains("Superuser"), "{err}");
}

#[test]
fn a_changed_template_keeps_its_old_revisions() {
    let d = DataDir::new();
    let file = d.write("a.toml", base_records());
    d.ok(&["import", file.to_str().unwrap()]);
    let changed = base_records().replace("systemctl restart", "systemctl try-restart");
    let file = d.write("b.toml", &changed);
    assert!(d
        .ok(&["import", file.to_str().unwrap()])
        .contains("updated template restart"));
    let revisions = d.ok(&["revisions", "restart"]);
    assert_eq!(revisions.lines().count(), 2, "{revisions}");
}

#[test]
fn secrets_are_never_in_the_store_files_or_logs() {
    let d = DataDir::new();
    let keydir = tempfile::tempdir().unwrap();
    let key = common::sshd::keygen(
        keydir.path(),
        "id_ed25519",
        "ed25519",
        SECRET_PASSPHRASE,
        None,
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body: String = key_text.lines().nth(2).unwrap().to_string();
    let text = format!(
        "[[credential]]\nname = \"pw\"\nusername = \"ops\"\npassword = \"{SECRET_PASSWORD}\"\n\n\
         [[credential]]\nname = \"key\"\nusername = \"ops\"\nprivate_key_file = \"{}\"\npassphrase = \"{SECRET_PASSPHRASE}\"\n",
        key.display()
    );
    let file = keydir.path().join("creds.toml");
    std::fs::write(&file, text).unwrap();
    d.ok(&["import", file.to_str().unwrap()]);
    let listed = d.ok(&["list", "credentials"]);
    assert!(
        listed.contains("password set") && listed.contains("private key set"),
        "{listed}"
    );
    assert!(!d.ok(&["export"]).contains(SECRET_PASSWORD));
    d.ok(&["shutdown"]);
    let files = files_under(d.path());
    assert!(files.len() > 3, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for secret in [SECRET_PASSWORD, SECRET_PASSPHRASE, key_body.as_str()] {
            assert!(
                !contains_bytes(&bytes, secret.as_bytes()),
                "{} holds a secret in plain text",
                f.display()
            );
        }
    }
}

#[test]
fn a_second_client_finds_the_running_server_instead_of_opening_the_store() {
    let d = DataDir::new();
    // Many commands at once on a fresh directory: one server starts, all connect.
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let dir = d.path().to_path_buf();
            std::thread::spawn(move || {
                std::process::Command::new(common::bin())
                    .arg("--data-dir")
                    .arg(&dir)
                    .args(["list", "roles"])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Superuser"));
    }
    // A second server on the same directory refuses to open the store.
    let second = d.run(&["serve", "--personal"]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already serves"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
}

#[test]
fn the_owner_may_act_as_another_user_and_unknown_users_are_refused() {
    let d = DataDir::new();
    d.ok(&["demo"]);
    assert!(d.ok(&["--as", "alice", "whoami"]).starts_with("alice"));
    let err = d.fails(&["--as", "mallory", "whoami"]);
    assert!(err.contains("'mallory' is not a Gatehouse user"), "{err}");
    // alice holds no permission to manage users.
    let err = d.fails(&["--as", "alice", "list", "users"]);
    assert!(err.contains("not permitted"), "{err}");
    let err = d.fails(&["--as", "carol", "delete", "device", "web-1"]);
    assert!(err.contains("not permitted"), "{err}");
    // The audit log names who did what.
    d.ok(&["--as", "bob", "whoami"]);
    assert!(d.ok(&["audit", "export"]).contains("\"actor\":\"root\""));
}

#[test]
fn audit_verify_passes_and_export_is_one_json_object_per_line() {
    let d = DataDir::new();
    d.ok(&["demo"]);
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
    let export = d.ok(&["audit", "export", "--format", "jsonl"]);
    let mut prev = "0".repeat(64);
    for line in export.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["prev_hash"].as_str().unwrap(), prev);
        prev = v["hash"].as_str().unwrap().to_string();
    }
    assert!(export.lines().count() > 20);
}

#[test]
fn the_personal_server_exits_by_itself_when_idle() {
    let d = DataDir::new();
    d.ok(&["whoami"]);
    let socket = d.path().join("gatehouse.sock");
    assert!(socket.exists());
    let start = Instant::now();
    while socket.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !socket.exists(),
        "the idle server should have exited and removed its socket"
    );
}

#[test]
fn logs_follow_prints_each_line_once_until_the_operation_ends() {
    let d = DataDir::new();
    let records = r#"
[[environment]]
name = "lab"
[[system]]
name = "jump"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "lab"
system = "jump"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "slow"
executor = "local"
content = "echo one; sleep 1; echo two; sleep 1; echo three"
[[task]]
name = "slow"
template = "slow"
environment = "lab"
system = "jump"
devices = ["here"]
credential = "none"
"#;
    let file = d.write("r.toml", records);
    d.ok(&["import", file.to_str().unwrap()]);
    let out = d.run(&["request", "slow"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let id = stderr
        .split(": ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let log = d.ok(&["logs", &id, "--follow"]);
    for word in ["one", "two", "three"] {
        assert_eq!(log.matches(&format!("[here] {word}\n")).count(), 1, "{log}");
    }
    assert!(log.contains("exit status 0"), "{log}");
}

#[test]
fn role_check_warns_about_risky_grants_without_refusing_them() {
    let d = DataDir::new();
    let file = d.write(
        "r.toml",
        "[[role]]\nname = \"risky\"\ngrants = [{ action = \"manage-templates\" }, { action = \"request-tasks\" }]\n",
    );
    d.ok(&["import", file.to_str().unwrap()]);
    let out = d.ok(&["role", "check", "risky"]);
    assert!(
        out.contains("nonsensical: manage-templates without view-templates"),
        "{out}"
    );
    assert!(
        out.contains("by proxy: manage-templates with request-tasks is running arbitrary commands"),
        "{out}"
    );
    assert!(d.ok(&["role", "check", "User"]).contains("no warnings"));
    assert!(d
        .ok(&["role", "check", "Administrator"])
        .contains("manage-credentials is seeing secrets"));
}

#[test]
fn clone_copies_a_record_under_a_new_name_but_never_superuser_or_secrets() {
    let d = DataDir::new();
    d.ok(&["demo"]);
    d.ok(&["clone", "template", "service-status", "service-status-v2"]);
    let templates = d.ok(&["list", "templates"]);
    assert!(
        templates
            .lines()
            .any(|l| l.starts_with("service-status-v2") && l.contains("rev 1")),
        "{templates}"
    );
    d.ok(&["clone", "role", "Administrator", "Junior admin"]);
    assert!(d.ok(&["list", "roles"]).contains("Junior admin"));
    assert!(d
        .fails(&["clone", "role", "Superuser", "Root2"])
        .contains("cannot be cloned"));
    assert!(d
        .fails(&["clone", "credential", "ops-account", "copy"])
        .contains("not cloned"));
    assert!(d
        .fails(&["clone", "template", "service-status", "disk-usage"])
        .contains("already exists"));
}

#[test]
fn root_cannot_lose_the_superuser_role() {
    let d = DataDir::new();
    let file = d.write(
        "root.toml",
        "[[user]]\nlogin = \"root\"\nroles = [\"User\"]\n",
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(
        err.contains("root always holds the Superuser role"),
        "{err}"
    );
    assert!(d
        .fails(&["disable", "user", "root"])
        .contains("cannot be disabled"));
    assert!(d
        .fails(&["delete", "user", "root"])
        .contains("always exists"));
}

#[test]
fn a_backup_taken_while_the_server_runs_restores_every_record_and_a_verifying_chain() {
    let d = DataDir::new();
    d.ok(&["demo"]);
    d.ok(&["disable", "device", "web-2"]);
    // An operation with output, which lives in files beside the store.
    let records = r#"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "production"
system = "web"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "count"
executor = "local"
content = "seq 1 20000; echo done >&2"
[[task]]
name = "count"
template = "count"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
"#;
    let file = d.write("count.toml", records);
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["request", "count", "--wait"]);
    let id = d.ok(&["history", "--task", "count", "--json"]);
    let id = serde_json::from_str::<serde_json::Value>(id.lines().next().unwrap()).unwrap()["id"]
        .to_string();
    let logs = d.ok(&["logs", &id]);
    assert!(
        logs.contains("[here] 20000\n") && logs.contains("done"),
        "{logs}"
    );
    let backup = d.scratch.path().join("store.backup");
    let out = d.ok(&["backup", backup.to_str().unwrap()]);
    assert!(out.contains("backed up"), "{out}");
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        !contains_bytes(&bytes, b"demo-password-change-me"),
        "secrets stay sealed in a backup"
    );

    let restored = DataDir::new();
    let out = restored.ok(&["restore", backup.to_str().unwrap()]);
    assert!(out.contains("no key file"), "{out}");
    std::fs::copy(
        d.path().join("store.key"),
        restored.path().join("store.key"),
    )
    .unwrap();
    assert!(restored.ok(&["audit", "verify"]).contains("chain intact"));
    let body = |s: String| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(restored.ok(&["export"])), body(d.ok(&["export"])));
    assert_eq!(restored.ok(&["logs", &id]), logs, "output restored");
    // Restoring over an existing store is refused.
    assert!(d
        .fails(&["restore", backup.to_str().unwrap()])
        .contains("running"));
    let fresh = DataDir::new();
    fresh.ok(&["whoami"]);
    fresh.ok(&["shutdown"]);
    assert!(fresh
        .fails(&["restore", backup.to_str().unwrap()])
        .contains("empty data directory"));
}

#[test]
fn config_check_names_the_bad_key_and_the_example_passes() {
    let d = DataDir::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/config.toml");
    assert!(d.ok(&["config", "check", example]).contains("ok"));
    let bad = d.write(
        "bad.toml",
        "idle_exit_secs = 5\n[limits]\nparallelism = 0\n",
    );
    let err = d.fails(&["config", "check", bad.to_str().unwrap()]);
    assert!(err.contains("limits.parallelism"), "{err}");
    let typo = d.write("typo.toml", "[limits]\nparalelism = 3\n");
    let err = d.fails(&["config", "check", typo.to_str().unwrap()]);
    assert!(
        err.contains("line 2") && err.contains("paralelism"),
        "{err}"
    );
    // Every command refuses to run on a broken configuration, naming the key.
    let err = d.fails(&["--config", bad.to_str().unwrap(), "whoami"]);
    assert!(err.contains("limits.parallelism"), "{err}");
    // A configuration's data_dir is where the store goes.
    let elsewhere = d.scratch.path().join("data-from-config");
    let good = d.write(
        "good.toml",
        &format!(
            "data_dir = \"{}\"\nidle_exit_secs = 1\n",
            elsewhere.display()
        ),
    );
    let out = std::process::Command::new(common::bin())
        .args(["--config", good.to_str().unwrap(), "whoami"])
        .env_remove("GATEHOUSE_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.join("store.key").exists());
    std::process::Command::new(common::bin())
        .args(["--config", good.to_str().unwrap(), "shutdown"])
        .output()
        .unwrap();
}

/// `gatehouse history | head -3` and friends: a reader that went away ends
/// the command quietly with status 0, never a panic (was exit 101).
#[test]
fn a_closed_reader_ends_every_verb_quietly_with_status_zero() {
    use std::os::fd::OwnedFd;
    let d = DataDir::new();
    d.ok(&["demo"]);
    for args in [
        vec!["whoami"],
        vec!["list", "devices"],
        vec!["list", "devices", "--json"],
        vec!["export"],
        vec!["history"],
        vec!["history", "--json"],
        vec!["requests", "--json"],
        vec!["queue", "--json"],
        vec!["audit", "export"],
    ] {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        // The reader is gone before the first byte is written.
        drop(read);
        let out = std::process::Command::new(common::bin())
            .arg("--data-dir")
            .arg(d.path())
            .args(&args)
            .env_remove("GATEHOUSE_SOCKET")
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Positive control: with a reader, the same verbs print.
    assert!(d.ok(&["list", "devices"]).lines().count() > 1);
    assert!(d.ok(&["audit", "export"]).lines().count() > 1);
}

/// A secret so short it would turn up by chance in output is refused at
/// save, naming the field; four characters are enough.
#[test]
fn a_password_under_four_characters_is_refused_at_save() {
    let d = DataDir::new();
    let short = d.write(
        "short.toml",
        "[[credential]]\nname = \"db\"\nusername = \"dba\"\npassword = \"abc\"\n",
    );
    let err = d.fails(&["import", short.to_str().unwrap()]);
    assert!(err.contains("credential 'db'"), "{err}");
    assert!(
        err.contains("field `password`: shorter than 4 characters"),
        "{err}"
    );
    let ok = d.write(
        "ok.toml",
        "[[credential]]\nname = \"db\"\nusername = \"dba\"\npassword = \"abcd\"\n",
    );
    d.ok(&["import", ok.to_str().unwrap()]);
}

/// An ssh-expect line is typed into a shell: a value with a line break
/// would type a second command, so it is refused when requested.
#[test]
fn an_expect_template_refuses_a_value_with_a_line_break() {
    let d = DataDir::new();
    let records = d.write(
        "r.toml",
        r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
[[device]]
name = "web"
address = "127.0.0.1"
environment = "lab"
system = "box"
[[credential]]
name = "login"
username = "ops"
password = "long-enough"
[[template]]
name = "status"
executor = "ssh-expect"
content = 'exec "service [#SERVICE#] status"'
variable = [{ name = "SERVICE", pattern = "(?s).*" }]
[[task]]
name = "status"
template = "status"
environment = "lab"
system = "box"
devices = ["web"]
credential = "login"
"#,
    );
    d.ok(&["import", records.to_str().unwrap()]);
    let err = d.fails(&["request", "status", "--var", "SERVICE=nginx\nid -gn"]);
    assert!(
        err.contains("variable SERVICE: the value holds a line break"),
        "{err}"
    );
    assert!(d.ok(&["history", "--json"]).is_empty(), "nothing ran");
}

/// Exporting the audit log out of Gatehouse is its own permission: an
/// Administrator reads the log but may not export it; an Auditor may.
#[test]
fn exporting_the_audit_log_needs_export_audit() {
    let d = DataDir::new();
    let people = d.write(
        "people.toml",
        "[[user]]\nlogin = \"ada\"\nroles = [\"Administrator\"]\n[[user]]\nlogin = \"aud\"\nroles = [\"Auditor\"]\n",
    );
    d.ok(&["import", people.to_str().unwrap()]);
    let out = d.run(&["--as", "ada", "audit", "verify"]);
    assert!(out.status.success(), "ada reads the log");
    let out = d.run(&["--as", "ada", "audit", "export"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("export-audit"), "{err}");
    let out = d.run(&["--as", "aud", "audit", "export"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("user.create"));
}

/// A scope on an action that has no environment would be ignored in
/// silence: it is refused at save, naming the grant.
#[test]
fn a_scope_on_an_action_without_an_environment_is_refused() {
    let d = DataDir::new();
    let role = d.write(
        "role.toml",
        "[[role]]\nname = \"x\"\ngrants = [{ action = \"view-tasks\", environments = [\"lab\"] }, { action = \"manage-users\", environments = [\"lab\"] }]\n",
    );
    let err = d.fails(&["import", role.to_str().unwrap()]);
    assert!(
        err.contains(
            "field `grants[1].environments`: manage-users does not concern records in an environment"
        ),
        "{err}"
    );
    // Positive control: the scoped view-tasks alone is fine.
    let role = d.write(
        "ok.toml",
        "[[environment]]\nname = \"lab\"\n[[role]]\nname = \"x\"\ngrants = [{ action = \"view-tasks\", environments = [\"lab\"] }]\n",
    );
    d.ok(&["import", role.to_str().unwrap()]);
}

#[test]
fn user_check_warns_about_what_two_roles_give_together() {
    let d = DataDir::new();
    let file = d.write(
        "r.toml",
        r#"[[environment]]
name = "lab"
[[system]]
name = "tools"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "lab"
system = "tools"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "restart"
executor = "ssh-script"
content = "systemctl restart web"
[[task]]
name = "restart-web"
template = "restart"
environment = "lab"
system = "tools"
devices = ["here"]
credential = "none"
[[role]]
name = "writer"
resources = [{ kind = "template", name = "restart", levels = ["read", "write"] }]
[[role]]
name = "runner"
resources = [{ kind = "task", name = "restart-web", levels = ["read", "run"] }]
[[user]]
login = "mallory"
roles = ["writer", "runner"]
[[user]]
login = "walter"
roles = ["writer"]
"#,
    );
    d.ok(&["import", file.to_str().unwrap()]);
    let combo = "by proxy: write on template 'restart' with run on task 'restart-web'";
    let out = d.ok(&["user", "check", "mallory"]);
    assert!(out.contains(combo), "{out}");
    // Each role alone, and a user with one of them: no such warning.
    assert!(!d.ok(&["role", "check", "writer"]).contains(combo));
    assert!(!d.ok(&["role", "check", "runner"]).contains(combo));
    assert!(!d.ok(&["user", "check", "walter"]).contains(combo));
}

/// A credential is the executor's to need: a local task runs without one,
/// a task of an SSH template is refused without one (naming the field),
/// and a template may not turn to SSH under a task that has none.
#[test]
fn a_local_task_needs_no_credential_and_an_ssh_one_does() {
    let d = DataDir::new();
    let base = r#"[[environment]]
name = "lab"
[[system]]
name = "tools"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "lab"
system = "tools"
[[template]]
name = "hello"
executor = "local"
content = "echo no credential needed"
[[task]]
name = "hello"
template = "hello"
environment = "lab"
system = "tools"
devices = ["here"]
"#;
    let file = d.write("r.toml", base);
    d.ok(&["import", file.to_str().unwrap()]);
    let out = d.ok(&["request", "hello", "--wait"]);
    assert!(out.contains("no credential needed"), "{out}");
    // The same task on an SSH template: refused, naming the field.
    let ssh = base.replace("executor = \"local\"", "executor = \"ssh-script\"");
    let file = d.write("ssh.toml", &ssh);
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(
        err.contains("field `executor`") && err.contains("without a credential"),
        "{err}"
    );
    let template = d.write(
        "ssh-template.toml",
        "[[template]]\nname = \"ssh\"\nexecutor = \"ssh-script\"\ncontent = \"true\"\n",
    );
    d.ok(&["import", template.to_str().unwrap()]);
    let task_only = "[[task]]\nname = \"other\"\ntemplate = \"ssh\"\nenvironment = \"lab\"\nsystem = \"tools\"\ndevices = [\"here\"]\n";
    let file = d.write("task.toml", task_only);
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(
        err.contains("field `credential`") && err.contains("reaches devices"),
        "{err}"
    );
}

/// An empty `GATEHOUSE_CONFIG=` names no file (it used to break every
/// command); a port out of range is refused naming the field, not as a
/// type error of the file format.
#[test]
fn an_empty_config_variable_is_no_file_and_a_bad_port_is_named() {
    let mut d = DataDir::new();
    d.env.push(("GATEHOUSE_CONFIG".into(), String::new()));
    assert!(d.ok(&["whoami"]).contains("root"));
    let bad = d.write(
        "port.toml",
        "[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n[[device]]\nname = \"d\"\naddress = \"127.0.0.1\"\nport = 99999\nenvironment = \"lab\"\nsystem = \"box\"\n",
    );
    let err = d.fails(&["import", bad.to_str().unwrap()]);
    assert!(
        err.contains("line 5") && err.contains("field `port`: 99999 is not a port (1–65535)"),
        "{err}"
    );
}

/// `rerun` files a new request from an earlier one, through the policy:
/// the same task, values and justification; `--failed` only the devices
/// that did not succeed; nothing to do when all did.
#[test]
fn rerun_retries_the_failed_devices_of_a_request_or_a_superusers_run_and_names_an_id_that_is_neither(
) {
    let d = DataDir::new();
    let file = d.write(
        "r.toml",
        r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "lab"
system = "box"
[[device]]
name = "there"
address = "127.0.0.2"
environment = "lab"
system = "box"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "t"
executor = "local"
content = "if [ [#DEVICE#] = there ]; then exit 3; fi; echo fine [#WHAT#]"
[[template.variable]]
name = "WHAT"
default = "x"
[[task]]
name = "t"
template = "t"
environment = "lab"
system = "box"
devices = ["here", "there"]
credential = "none"
[[role]]
name = "local-runner"
grants = [{ action = "run-local" }]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[policy]]
name = "lab"
requires_justification = true
users = ["alice"]
environments = ["lab"]
"#,
    );
    d.ok(&["import", file.to_str().unwrap()]);
    let first = d.run(&[
        "--as",
        "alice",
        "request",
        "t",
        "--var",
        "WHAT=y",
        "--justification",
        "first try",
        "--wait",
    ]);
    assert!(!first.status.success(), "one device fails");
    let requests = |d: &DataDir| -> Vec<serde_json::Value> {
        d.ok(&["requests", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let id = requests(&d)[0]["id"].to_string();
    // Only the failed device, with the same values and justification.
    let again = d.run(&["--as", "alice", "rerun", &id, "--failed", "--wait"]);
    assert!(!again.status.success());
    let newest = &requests(&d)[0];
    assert_ne!(newest["id"].to_string(), id);
    assert_eq!(newest["devices"], serde_json::json!(["there"]), "{newest}");
    assert_eq!(newest["justification"], "first try", "{newest}");
    assert_eq!(newest["variables"]["WHAT"], "y", "{newest}");
    // From an operation id, all of its request's devices; a new reason.
    let ops: Vec<serde_json::Value> = d
        .ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let here = ops.iter().find(|o| o["device"] == "here").unwrap()["id"].to_string();
    d.run(&[
        "--as",
        "alice",
        "rerun",
        &here,
        "--justification",
        "again",
        "--wait",
    ]);
    let newest = &requests(&d)[0];
    assert_eq!(
        newest["devices"],
        serde_json::json!(["here", "there"]),
        "{newest}"
    );
    assert_eq!(newest["justification"], "again", "{newest}");
    // Re-runs go through the policy: audited as requests like any other.
    assert_eq!(
        d.ok(&["audit", "export"])
            .matches("\"action\":\"request.create\"")
            .count(),
        3
    );
    // A Superuser's own run has an id and no request: its failed device
    // is found from its operations and run again.
    let own = d.run(&["request", "t", "--var", "WHAT=z", "--wait"]);
    let said = String::from_utf8_lossy(&own.stderr).to_string();
    let run = common::runs::request_id(&said);
    let before = common::runs::history(&d).len();
    let again = d.run(&["rerun", &run, "--failed", "--wait"]);
    let again_said = String::from_utf8_lossy(&again.stderr);
    assert!(again_said.contains("re-run of t on there"), "{again_said}");
    let ops = common::runs::history(&d);
    assert_eq!(ops.len(), before + 1, "one device only");
    assert_eq!(ops[0]["device"], "there");
    assert_eq!(ops[0]["task"], "t");
    // An id that is neither says so (it was "no task named 'operation N'").
    let missing = d.fails_as("alice", &["rerun", "999999"]);
    assert!(
        missing.contains("there is no operation or request 999999"),
        "{missing}"
    );
}

#[test]
fn cluster_status_on_a_store_of_its_own_lists_this_server_alone() {
    let d = DataDir::new();
    d.ok(&["demo"]);
    let out = d.ok(&["cluster", "status"]);
    assert!(out.contains("this server's own"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&d.ok(&["cluster", "status", "--json"])).unwrap();
    assert_eq!(json["shared"], false);
    assert_eq!(json["servers"].as_array().unwrap().len(), 1, "{json}");
    // Not everyone's to see.
    let refused = d.fails_as("alice", &["cluster", "status"]);
    assert!(refused.contains("Superuser"), "{refused}");
}
