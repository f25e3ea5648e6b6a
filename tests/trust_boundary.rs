//! The trust boundary, played as attacks by real OS users against a shared
//! service: each path from a lesser permission to a greater one fails with a
//! clear error and leaves an audit event (issue 12; more paths are in
//! tests/approvals.rs, tests/server.rs and tests/jumphost.rs).

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::service::{ensure_accounts, Service, ALICE, BOB, EVE, SERVICE};

const RECORDS: &str = r#"
[[environment]]
name = "staging"
[[environment]]
name = "production"
[[system]]
name = "db"
[[device]]
name = "db-1"
address = "127.0.0.5"
environment = "production"
system = "db"
[[device]]
name = "db-stage"
address = "127.0.1.5"
environment = "staging"
system = "db"
[[role]]
name = "staging-devices"
grants = [{ action = "view-devices" }, { action = "manage-devices", environments = ["staging"] }]
[[user]]
login = "gh-alice"
roles = ["User", "staging-devices"]
[[user]]
login = "gh-bob"
roles = ["Auditor"]
"#;

fn shared() -> Service {
    ensure_accounts();
    let service = Service::start(Some(SERVICE), &[], None);
    let records = service.write("records.toml", RECORDS);
    service.ok_as(Some(SERVICE), &["import", records.to_str().unwrap()]);
    service
}

fn audit(service: &Service) -> Vec<serde_json::Value> {
    service
        .ok_as(Some(BOB), &["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Path 2: a role that manages staging devices re-imports a production
/// device as a staging one with a new address, to have the production
/// credential sent there. Judged on the stored record too: refused.
#[test]
fn a_staging_manager_cannot_take_over_a_production_device_by_import() {
    let service = shared();
    let takeover = service.write(
        "takeover.toml",
        "[[device]]\nname = \"db-1\"\naddress = \"127.0.0.66\"\nenvironment = \"staging\"\nsystem = \"db\"\n",
    );
    let err = service.fails_as(Some(ALICE), &["import", takeover.to_str().unwrap()]);
    assert!(
        err.contains("may not change device 'db-1' of production into staging"),
        "{err}"
    );
    let devices = service.ok_as(Some(SERVICE), &["list", "devices", "--json"]);
    assert!(devices.contains("127.0.0.5") && !devices.contains("127.0.0.66"));
    let refused: Vec<_> = audit(&service)
        .into_iter()
        .filter(|e| e["action"] == "records.import.refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["actor"], ALICE);
    // Positive control: her own environment's device she may change.
    let own = service.write(
        "own.toml",
        "[[device]]\nname = \"db-stage\"\naddress = \"127.0.1.6\"\nenvironment = \"staging\"\nsystem = \"db\"\n",
    );
    service.ok_as(Some(ALICE), &["import", own.to_str().unwrap()]);
    // Nor may she move her staging device into production.
    let moved = service.write(
        "moved.toml",
        "[[device]]\nname = \"db-stage\"\naddress = \"127.0.1.6\"\nenvironment = \"production\"\nsystem = \"db\"\n",
    );
    let err = service.fails_as(Some(ALICE), &["import", moved.to_str().unwrap()]);
    assert!(
        err.contains("may not change device 'db-stage' of staging into production"),
        "{err}"
    );
}

/// Path 11: refused connections are in the audit log, not only the
/// server's log, and a flood of them is one event a minute with a count.
#[test]
fn refused_connections_are_audited_once_a_minute_with_a_count() {
    let service = shared();
    for _ in 0..5 {
        service.fails_as(Some(EVE), &["whoami"]);
    }
    service.fails_as(Some(ALICE), &["--as", BOB, "whoami"]);
    let events = audit(&service);
    let eve: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "connection.refused" && e["actor"] == EVE)
        .collect();
    assert_eq!(eve.len(), 1, "five refusals, one event: {eve:?}");
    assert!(eve[0]["details"]
        .as_str()
        .unwrap()
        .contains("not a Gatehouse user"));
    let alice: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "connection.refused" && e["actor"] == ALICE)
        .collect();
    assert_eq!(alice.len(), 1, "{alice:?}");
    assert!(alice[0]["details"]
        .as_str()
        .unwrap()
        .contains("--as is refused"));
}

/// Path 3: a task labelled staging that runs on a production device would
/// pass under a staging policy without what production demands. A task's
/// devices must be in its environment and system, both ways round.
#[test]
fn a_task_runs_only_on_devices_of_its_own_environment_and_system() {
    let service = shared();
    let task = service.write(
        "task.toml",
        r#"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "t"
executor = "ssh-script"
content = "uptime"
[[task]]
name = "check"
template = "t"
environment = "staging"
system = "db"
devices = ["db-stage", "db-1"]
credential = "none"
"#,
    );
    let err = service.fails_as(Some(SERVICE), &["import", task.to_str().unwrap()]);
    assert!(
        err.contains("device 'db-1' is in environment 'production' and system 'db', task 'check' in 'staging' and 'db'"),
        "{err}"
    );
    // Positive control: with its staging device only, it is saved...
    let fixed = std::fs::read_to_string(&task)
        .unwrap()
        .replace("[\"db-stage\", \"db-1\"]", "[\"db-stage\"]");
    let fixed = service.write("fixed.toml", &fixed);
    service.ok_as(Some(SERVICE), &["import", fixed.to_str().unwrap()]);
    // ...and its device cannot be moved out from under it.
    let moved = service.write(
        "moved.toml",
        "[[device]]\nname = \"db-stage\"\naddress = \"127.0.1.5\"\nenvironment = \"production\"\nsystem = \"db\"\n",
    );
    let err = service.fails_as(Some(SERVICE), &["import", moved.to_str().unwrap()]);
    assert!(err.contains("task 'check' in 'staging'"), "{err}");
}

/// Path 10: `--as` (the service account's alone) is audited as both
/// accounts, so a forged action cannot pass for the person's own.
#[test]
fn acting_as_another_user_is_audited_as_both_accounts() {
    let service = shared();
    let own = service.write(
        "own.toml",
        "[[device]]\nname = \"db-stage\"\naddress = \"127.0.1.7\"\nenvironment = \"staging\"\nsystem = \"db\"\n",
    );
    service.ok_as(
        Some(SERVICE),
        &["--as", ALICE, "import", own.to_str().unwrap()],
    );
    service.fails_as(
        Some(SERVICE),
        &["--as", BOB, "import", own.to_str().unwrap()],
    );
    let events = audit(&service);
    let update = events
        .iter()
        .find(|e| e["action"] == "device.update" && e["target"] == "device db-stage")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(update["actor"], "gh-svc as gh-alice");
    let refused = events
        .iter()
        .find(|e| e["action"] == "records.import.refused")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(refused["actor"], "gh-svc as gh-bob");
    // Positive control: alice acting herself is named alone.
    let again = service.write(
        "again.toml",
        "[[device]]\nname = \"db-stage\"\naddress = \"127.0.1.8\"\nenvironment = \"staging\"\nsystem = \"db\"\n",
    );
    service.ok_as(Some(ALICE), &["import", again.to_str().unwrap()]);
    assert!(audit(&service)
        .iter()
        .any(|e| e["action"] == "device.update" && e["actor"] == ALICE));
}

/// Cancelling and stopping go through the same authorization as the rest:
/// someone who may not see an operation learns nothing of it, someone who
/// may see it may still not stop another's run, and only the owner or a
/// Superuser stops the server.
#[test]
fn others_runs_are_neither_cancelled_nor_revealed_and_the_server_is_not_stopped() {
    let service = shared();
    let long = service.write(
        "long.toml",
        r#"[[environment]]
name = "lab"
[[system]]
name = "tools"
[[device]]
name = "jump"
address = "127.0.0.1"
environment = "lab"
system = "tools"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "long"
executor = "local"
content = "sleep 30"
[[task]]
name = "long"
template = "long"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
timeout = 60
"#,
    );
    service.ok_as(Some(SERVICE), &["import", long.to_str().unwrap()]);
    service.ok_as(Some(SERVICE), &["request", "long"]);
    let ops = service.ok_as(Some(SERVICE), &["history", "--json"]);
    let op: serde_json::Value = serde_json::from_str(ops.lines().next().unwrap()).unwrap();
    let id = op["id"].to_string();
    // alice (User) does not see it: told nothing about whose it is.
    let err = service.fails_as(Some(ALICE), &["cancel", &id]);
    assert!(err.contains("may not see operation"), "{err}");
    assert!(!err.contains(SERVICE), "{err}");
    // bob (Auditor) sees it, and still may not stop it.
    let err = service.fails_as(Some(BOB), &["cancel", &id]);
    assert!(
        err.contains("may not cancel it: it was requested by"),
        "{err}"
    );
    // Nor may either stop the server.
    let err = service.fails_as(Some(ALICE), &["shutdown"]);
    assert!(
        err.contains("only the server's owner or a Superuser"),
        "{err}"
    );
    // Positive control: its requester cancels it.
    service.ok_as(Some(SERVICE), &["cancel", &id]);
}
