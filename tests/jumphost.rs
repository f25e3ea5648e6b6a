//! A shared jump host for real: the service runs under its own OS account,
//! people connect as their own OS accounts (runuser), and the kernel's peer
//! credentials, not anything a client says, decide who they are.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::service::{ensure_accounts, Service, ALICE, BOB, EVE, GROUP, LOCAL, SERVICE};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const PEOPLE: &str = r#"
[[environment]]
name = "lab"
[[system]]
name = "tools"
[[device]]
name = "jump"
address = "127.0.0.1"
environment = "lab"
system = "tools"
[[reason]]
name = "check"
type = "incident"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "hello"
executor = "local"
content = "echo hello from the jump host"
[[task]]
name = "hello"
template = "hello"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
[[role]]
name = "hello-runner"
resources = [{ kind = "task", name = "hello", levels = ["read", "run"] }]
# The task runs on the jump host itself: that is its own permission.
grants = [{ action = "run-local" }]
[[policy]]
name = "lab"
users = ["gh-alice"]
environments = ["lab"]
[[user]]
login = "gh-alice"
roles = ["User", "hello-runner"]
[[user]]
login = "gh-bob"
roles = ["Auditor"]
"#;

fn shared(flags: &[&str]) -> Service {
    ensure_accounts();
    let service = Service::start(Some(SERVICE), flags, None);
    let people = service.write("people.toml", PEOPLE);
    service.ok_as(Some(SERVICE), &["import", people.to_str().unwrap()]);
    service
}

fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn people_are_who_the_kernel_says_and_strangers_are_refused() {
    let service = shared(&[]);
    // The service account that started an empty store administers it.
    assert!(service
        .ok_as(Some(SERVICE), &["whoami"])
        .starts_with("gh-svc, Superuser (server run by gh-svc)"));
    assert_eq!(
        service
            .ok_as(Some(ALICE), &["whoami"])
            .lines()
            .next()
            .unwrap(),
        "gh-alice (server run by gh-svc)"
    );
    assert_eq!(
        service
            .ok_as(Some(BOB), &["whoami"])
            .lines()
            .next()
            .unwrap(),
        "gh-bob (server run by gh-svc)"
    );
    // An OS user who is not a Gatehouse user gets past the socket, not the hello.
    let refused = service.fails_as(Some(EVE), &["whoami"]);
    assert!(
        refused
            .contains("OS user 'gh-eve' is not a Gatehouse user; ask an administrator to add them"),
        "{refused}"
    );
    // Root can read every file on the machine anyway: it is always a Superuser.
    assert!(service
        .ok_as(None, &["whoami"])
        .starts_with("root, Superuser (server run by gh-svc)"));
    // --as is the service account's alone.
    let refused = service.fails_as(Some(ALICE), &["--as", BOB, "whoami"]);
    assert!(refused.contains("--as is refused"), "{refused}");
    assert!(service
        .fails_as(Some(BOB), &["--as", SERVICE, "list", "users"])
        .contains("--as is refused"));
    assert_eq!(
        service
            .ok_as(Some(SERVICE), &["--as", ALICE, "whoami"])
            .lines()
            .next()
            .unwrap(),
        "gh-alice (server run by gh-svc)"
    );
    // A disabled user is turned away at the door too.
    service.ok_as(Some(SERVICE), &["disable", "user", BOB]);
    assert!(service
        .fails_as(Some(BOB), &["whoami"])
        .contains("Gatehouse user 'gh-bob' is disabled"));
}

#[test]
fn the_store_and_key_belong_to_the_service_account_alone() {
    let service = shared(&[]);
    let svc_uid = uid_of(SERVICE);
    let data = service.data();
    let meta = std::fs::metadata(data).unwrap();
    assert_eq!(meta.uid(), svc_uid);
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    for file in common::files_under(data) {
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.uid(), svc_uid, "{}", file.display());
        assert_eq!(
            meta.permissions().mode() & 0o077,
            0,
            "{} is open to others: {:o}",
            file.display(),
            meta.permissions().mode()
        );
    }
    let key = data.join("store.key");
    assert!(key.exists());
    for user in [ALICE, BOB, EVE] {
        for target in [key.as_path(), data] {
            let out = std::process::Command::new("runuser")
                .args(["-u", user, "--", "ls", "-l"])
                .arg(target)
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "{user} could read {}",
                target.display()
            );
            assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
        }
    }
    // Anyone may open the socket; the hello decides the rest.
    let mode = std::fs::metadata(&service.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);
}

#[test]
fn the_audit_names_the_real_os_users() {
    let service = shared(&[]);
    let out = service.ok_as(
        Some(ALICE),
        &["request", "hello", "--reason", "check", "--wait"],
    );
    assert!(out.contains("hello from the jump host"), "{out}");
    // Bob may read the audit (Auditor) but may not run the task.
    let refused = service.fails_as(Some(BOB), &["request", "hello"]);
    assert!(
        refused.contains("'gh-bob' may not request tasks in lab"),
        "{refused}"
    );
    let audit = service.ok_as(Some(BOB), &["audit", "export"]);
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |actor: &str, action: &str| {
        events
            .iter()
            .any(|e| e["actor"] == actor && e["action"].as_str().unwrap().starts_with(action))
    };
    assert!(by(SERVICE, "user.create"), "{audit}");
    assert!(by(ALICE, "request.create"), "{audit}");
    assert!(by(BOB, "request.refused"), "{audit}");
    assert!(by(ALICE, "operation.finish"), "{audit}");
    assert!(service
        .ok_as(Some(BOB), &["audit", "verify"])
        .contains("chain intact"));
}

#[test]
fn a_group_restricted_socket_admits_only_the_group() {
    let service = shared(&["--group", GROUP]);
    let meta = std::fs::metadata(&service.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let gid = nix_gid(GROUP);
    assert_eq!(meta.gid(), gid);
    assert_eq!(
        service
            .ok_as(Some(ALICE), &["whoami"])
            .lines()
            .next()
            .unwrap(),
        "gh-alice (server run by gh-svc)"
    );
    let refused = service.fails_as(Some(BOB), &["whoami"]);
    assert!(refused.contains("Permission denied"), "{refused}");
    assert!(
        refused.contains("ask the administrator to add you"),
        "{refused}"
    );
    // The service account still administers it.
    assert!(service
        .ok_as(Some(SERVICE), &["list", "users"])
        .contains("gh-bob"));
}

#[test]
fn a_group_that_does_not_exist_is_named() {
    ensure_accounts();
    let base = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("--data-dir")
        .arg(base.path().join("d"))
        .args(["serve", "--socket"])
        .arg(base.path().join("s.sock"))
        .args(["--group", "no-such-group-xyz"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("there is no OS group named 'no-such-group-xyz'"),
        "{err}"
    );
}

fn nix_gid(group: &str) -> u32 {
    let out = std::process::Command::new("getent")
        .args(["group", group])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The systemd unit's command line, with its paths moved into a scratch
/// directory, starts the service with the example configuration.
#[test]
fn the_systemd_units_command_line_runs_with_the_example_configuration() {
    ensure_accounts();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/gatehouse.service"
    ))
    .unwrap();
    for hardening in [
        "User=gatehouse",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "StateDirectory=gatehouse",
        "StateDirectoryMode=0700",
        "RuntimeDirectory=gatehouse",
        "UMask=0077",
    ] {
        assert!(
            unit.lines().any(|l| l == hardening),
            "the unit lacks {hardening}"
        );
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let base = tempfile::Builder::new()
        .prefix("gh-unit")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = base.path().join("gatehouse");
    std::fs::copy(common::bin(), &bin).unwrap();
    let (state, run) = (base.path().join("lib"), base.path().join("run"));
    for dir in [&state, &run] {
        std::fs::create_dir(dir).unwrap();
        std::process::Command::new("chown")
            .arg(SERVICE)
            .arg(dir)
            .status()
            .unwrap();
    }
    // The service account may not reach the build tree: give it a copy.
    let config = base.path().join("config.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/config.toml"),
        &config,
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = config.to_str().unwrap();
    let exec = exec
        .replace("/usr/local/bin/gatehouse", bin.to_str().unwrap())
        .replace("/etc/gatehouse/config.toml", config)
        .replace("/var/lib/gatehouse", state.to_str().unwrap())
        .replace("/run/gatehouse", run.to_str().unwrap());
    let args: Vec<&str> = exec.split_whitespace().collect();
    let mut child = std::process::Command::new("runuser")
        .args(["-u", SERVICE, "--"])
        .args(&args)
        .env("HOME", "/nonexistent")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let socket = run.join("gatehouse.sock");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !socket.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the unit's command exited ({status}): {err}\n{exec}");
        }
        assert!(std::time::Instant::now() < until, "no socket from {exec}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = std::process::Command::new("runuser")
        .args(["-u", SERVICE, "--"])
        .arg(&bin)
        .arg("--connect")
        .arg(&socket)
        .arg("whoami")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let _ = child.wait();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("gh-svc, Superuser"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everyone sees their own executions; another user's need view-executions.
/// Played by real OS users: alice runs a task, eve (made a Gatehouse user
/// with the User role only) tries every way to read it, bob (an auditor) may.
#[test]
fn a_user_sees_their_own_runs_and_not_another_users() {
    let service = shared(&[]);
    let eve = service.write(
        "eve.toml",
        "[[user]]\nlogin = \"gh-eve\"\nroles = [\"User\"]\n",
    );
    service.ok_as(Some(SERVICE), &["import", eve.to_str().unwrap()]);
    let out = service.ok_as(Some(ALICE), &["request", "hello", "--wait"]);
    assert!(out.contains("hello from the jump host"), "{out}");
    let mine = service.ok_as(Some(ALICE), &["history", "--json"]);
    let op: serde_json::Value = serde_json::from_str(mine.lines().next().unwrap()).unwrap();
    let id = op["id"].to_string();
    // alice reads her own run and its output without view-executions.
    assert!(service
        .ok_as(Some(ALICE), &["logs", &id])
        .contains("hello from the jump host"));
    // eve: nothing in history, operations or requests; the output refused.
    assert!(service.ok_as(Some(EVE), &["history", "--json"]).is_empty());
    assert!(service.ok_as(Some(EVE), &["ops"]).lines().count() <= 1);
    assert!(service.ok_as(Some(EVE), &["requests", "--json"]).is_empty());
    let err = service.fails_as(Some(EVE), &["logs", &id]);
    assert!(err.contains("may not see operation"), "{err}");
    // Positive control: the auditor sees it.
    assert!(service
        .ok_as(Some(BOB), &["history", "--json"])
        .contains(&format!("\"id\":{id}")));
}

/// Processes of an OS account, by name (pgrep -u).
fn processes_of(user: &str, name: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-u", user, "-x", name])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn local_tasks_run_as_their_own_account_without_the_store_and_leave_nothing_behind() {
    let service = shared(&[]);
    let key = service.data().join("store.key");
    let records = service.write(
        "local.toml",
        &format!(
            r#"[[template]]
name = "probe"
executor = "local"
content = """
id -un
cat {key} >/dev/null 2>&1 && echo KEY-READ || echo key-refused
ls {data} >/dev/null 2>&1 && echo DATA-LISTED || echo data-refused
test -r /etc/passwd && echo passwd-readable
"""
[[task]]
name = "probe"
template = "probe"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
[[template]]
name = "linger"
executor = "local"
content = "sleep 300 &\necho started\nwait"
[[task]]
name = "linger"
template = "linger"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
timeout = 3
"#,
            key = key.display(),
            data = service.data().display()
        ),
    );
    service.ok_as(Some(SERVICE), &["import", records.to_str().unwrap()]);
    let out = service.ok_as(Some(SERVICE), &["request", "probe", "--wait"]);
    // Run as the local account, not the service account that holds the key.
    assert!(out.contains(LOCAL), "{out}");
    assert!(out.contains("key-refused"), "{out}");
    assert!(out.contains("data-refused"), "{out}");
    assert!(
        !out.contains("KEY-READ") && !out.contains("DATA-LISTED"),
        "{out}"
    );
    // Positive control: the script ran and reads what everyone may.
    assert!(out.contains("passwd-readable"), "{out}");

    // A script that leaves a process behind: the timeout kills its group.
    assert_eq!(
        processes_of(LOCAL, "sleep"),
        0,
        "nothing of the local account runs yet"
    );
    let out = service.run_as(Some(SERVICE), &["request", "linger", "--wait"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("started"), "{text}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while processes_of(LOCAL, "sleep") > 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        processes_of(LOCAL, "sleep"),
        0,
        "the background sleep outlived its operation"
    );

    // The local account itself gets nothing from the socket.
    let err = service.fails_as(Some(LOCAL), &["whoami"]);
    assert!(err.contains("runs local tasks"), "{err}");
}

#[test]
fn local_execution_is_its_own_permission_even_for_an_administrator() {
    let service = shared(&[]);
    let admins = service.write(
        "admins.toml",
        "[[user]]\nlogin = \"gh-eve\"\nroles = [\"Administrator\"]\n",
    );
    service.ok_as(Some(SERVICE), &["import", admins.to_str().unwrap()]);
    let local = service.write(
        "evil.toml",
        r#"[[template]]
name = "evil"
executor = "local"
content = "cat /var/lib/gatehouse/store.key"
"#,
    );
    let err = service.fails_as(Some(EVE), &["import", local.to_str().unwrap()]);
    assert!(err.contains("run-local"), "{err}");
    // Nor may the existing local template be turned to their use, or a
    // task pointed at it.
    let retarget = service.write(
        "retarget.toml",
        r#"[[task]]
name = "sneaky"
template = "hello"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
"#,
    );
    let err = service.fails_as(Some(EVE), &["import", retarget.to_str().unwrap()]);
    assert!(err.contains("run-local"), "{err}");
    let err = service.fails_as(Some(EVE), &["disable", "template", "hello"]);
    assert!(err.contains("run-local"), "{err}");
    // Audited as a refusal.
    let audit = service.ok_as(Some(SERVICE), &["audit", "export"]);
    assert!(
        audit.contains("records.import.refused") && audit.contains("gh-eve"),
        "{audit}"
    );
    // Positive control: the same administrator writes an SSH template.
    let ssh = service.write(
        "ssh.toml",
        "[[template]]\nname = \"fine\"\nexecutor = \"ssh-script\"\ncontent = \"uptime\"\n",
    );
    service.ok_as(Some(EVE), &["import", ssh.to_str().unwrap()]);
}
