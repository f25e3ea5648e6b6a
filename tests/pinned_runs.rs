//! What runs is what was approved, by someone still allowed to ask, when
//! its window says (issue 12, paths 1, 7 and 8): every operation's start
//! checks its request again, chained tasks are pinned with it, and a
//! schedule runs only under an approved request that a change suspends.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::request_id;

use common::DataDir;
use serde_json::Value;
use std::time::{Duration, Instant};

fn records(extra: &str) -> String {
    format!(
        r#"
[[environment]]
name = "production"
[[system]]
name = "web"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "production"
system = "web"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "t"
executor = "local"
content = "echo approved run"
[[template]]
name = "t2"
executor = "local"
content = "echo chained run"
[[task]]
name = "after"
template = "t2"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
[[task]]
name = "restart"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
children = ["after"]
[[role]]
name = "local-runner"
grants = [{{ action = "run-local" }}]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[user]]
login = "bob"
roles = ["User"]
[[user]]
login = "carol"
roles = ["User"]
[[user]]
login = "dave"
roles = ["Administrator"]
[[policy]]
name = "prod-web"
requires_justification = true
requires_approval = true
users = ["alice"]
environments = ["production"]
approvers = [{{ user = "bob", level = 1 }}, {{ user = "carol", level = 2 }}]
{extra}
"#
    )
}

fn setup(extra: &str) -> DataDir {
    let d = DataDir::new();
    let file = d.write("r.toml", &records(extra));
    d.ok(&["import", file.to_str().unwrap()]);
    d
}

fn history(d: &DataDir) -> Vec<Value> {
    d.ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn audit(d: &DataDir) -> Vec<Value> {
    d.ok(&["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until an operation of `task` ends, and returns it.
fn ended(d: &DataDir, task: &str) -> Value {
    let start = Instant::now();
    loop {
        let h = history(d);
        if let Some(o) = h
            .iter()
            .find(|o| o["task"] == task && o["finished_at"] != Value::Null)
        {
            return o.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no operation of {task} ended: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// alice asks for a run in a few seconds; bob and carol approve it.
fn approved_deferred_run(d: &DataDir) -> String {
    let id = request_id(&d.ok_as(
        "alice",
        &["request", "restart", "--justification", "x", "--at", "+3s"],
    ));
    d.ok_as("bob", &["approve", &id]);
    d.ok_as("carol", &["approve", &id]);
    id
}

#[test]
fn a_deferred_run_does_not_start_once_what_it_pinned_has_changed() {
    // Positive control: unchanged, the deferred run starts and succeeds.
    let d = setup("");
    approved_deferred_run(&d);
    let op = ended(&d, "restart");
    assert_eq!(op["state"], "succeeded", "{op}");

    let d = setup("");
    let id = approved_deferred_run(&d);
    // After the approval, before the start: the device moves.
    let moved = records("").replace("address = \"127.0.0.1\"", "address = \"127.0.0.2\"");
    let file = d.write("moved.toml", &moved);
    d.ok(&["import", file.to_str().unwrap()]);
    let op = ended(&d, "restart");
    assert_eq!(op["state"], "failed", "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "did not start: request {id} does not run: device 'here' changed since it was approved"
        )),
        "{error}"
    );
    assert!(audit(&d).iter().any(|e| e["action"] == "operation.refused"));
    // The request is void, saying why.
    let requests = d.ok(&["requests", "--json"]);
    assert!(
        requests.contains("\"void\"") || requests.contains("Void"),
        "{requests}"
    );
    assert!(requests.contains("device 'here' changed"), "{requests}");
}

#[test]
fn a_requester_disabled_after_approval_runs_nothing() {
    let d = setup("");
    approved_deferred_run(&d);
    d.ok(&["disable", "user", "alice"]);
    let op = ended(&d, "restart");
    assert_eq!(op["state"], "failed", "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("did not start: ")
            && error.contains("Gatehouse user 'alice' is disabled"),
        "{error}"
    );
}

#[test]
fn a_chained_task_changed_before_the_last_approval_voids_the_request() {
    let d = setup("");
    let id = request_id(&d.ok_as("alice", &["request", "restart", "--justification", "x"]));
    d.ok_as("bob", &["approve", &id]);
    let changed = records("").replace("echo chained run", "echo something else");
    let file = d.write("changed.toml", &changed);
    d.ok(&["import", file.to_str().unwrap()]);
    let err = d.fails_as("carol", &["approve", &id]);
    assert!(
        err.contains("template 't2' of chained task 'after' changed since it was approved"),
        "{err}"
    );
    assert!(history(&d).is_empty(), "nothing ran");
}

#[test]
fn a_schedule_runs_only_under_an_approved_request_and_a_change_suspends_it() {
    let d = setup(
        r#"
[[task]]
name = "tick"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
schedule = "* * * * * *"
"#,
    );
    // Nobody authorised it: it does not run, and the audit says why.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !history(&d).iter().any(|o| o["task"] == "tick"),
        "an unauthorised schedule ran"
    );
    assert!(
        audit(&d)
            .iter()
            .any(|e| e["action"] == "task.schedule.refused"
                && e["details"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no request authorises")),
        "the refused firing is audited"
    );
    let schedules = d.ok(&["schedules"]);
    assert!(
        schedules.contains("tick  * * * * * *  not authorised"),
        "{schedules}"
    );
    // An administrator without run-local can't turn the template to its use.
    let evil = records("").replace("echo approved run", "cat store.key");
    let file = d.write("evil.toml", &evil);
    let err = d.fails_as("dave", &["import", file.to_str().unwrap()]);
    assert!(err.contains("run-local"), "{err}");

    // alice asks for the schedule under her policy; both levels approve.
    let out = d.ok_as(
        "alice",
        &[
            "request",
            "tick",
            "--schedule",
            "--justification",
            "nightly",
        ],
    );
    let id = request_id(&out);
    assert!(d.ok(&["schedules"]).contains("pending approval"));
    d.ok_as("bob", &["approve", &id]);
    d.ok_as("carol", &["approve", &id]);
    let schedules = d.ok(&["schedules"]);
    assert!(
        schedules.contains(&format!("authorised  request {id} of alice")),
        "{schedules}"
    );
    let op = ended(&d, "tick");
    assert_eq!(op["requested_by"], "alice", "{op}");
    assert_eq!(op["state"], "succeeded", "{op}");

    // A change to its template suspends it: no more runs.
    let changed = records("").replace("echo approved run", "echo changed");
    let file = d.write("changed.toml", &changed);
    d.ok(&["import", file.to_str().unwrap()]);
    let start = Instant::now();
    while !audit(&d)
        .iter()
        .any(|e| e["action"] == "task.schedule.suspended")
    {
        assert!(start.elapsed() < Duration::from_secs(10), "not suspended");
        std::thread::sleep(Duration::from_millis(100));
    }
    let requests = d.ok(&["requests", "--json"]);
    assert!(
        requests.contains("template 't' changed since it was approved"),
        "{requests}"
    );
    let schedules = d.ok(&["schedules"]);
    assert!(
        schedules.contains("suspended")
            && schedules.contains("template 't' changed since it was approved"),
        "{schedules}"
    );
    // Let any run that started before the change end, then count.
    std::thread::sleep(Duration::from_millis(1500));
    let before = history(&d).iter().filter(|o| o["task"] == "tick").count();
    std::thread::sleep(Duration::from_millis(2500));
    let after = history(&d).iter().filter(|o| o["task"] == "tick").count();
    assert_eq!(before, after, "a suspended schedule ran");
}

#[test]
fn a_superusers_schedule_runs_marked_as_theirs() {
    let d = setup(
        r#"
[[task]]
name = "tick"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
schedule = "* * * * * *"
"#,
    );
    let out = d.ok(&["request", "tick", "--schedule"]);
    assert!(out.contains("as Superuser"), "{out}");
    let op = ended(&d, "tick");
    assert_eq!(op["superuser_bypass"], true, "{op}");
    assert!(audit(&d).iter().any(|e| e["action"] == "task.schedule"
        && e["details"]
            .as_str()
            .unwrap_or_default()
            .contains("as Superuser")));
}

/// Path 8: an approved run whose window ended while the server was down
/// does not start when it comes back.
#[test]
fn a_run_whose_window_ended_while_the_server_was_down_does_not_start() {
    let d = setup("");
    let id = request_id(&d.ok_as(
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--at",
            "+3s",
            "--duration",
            "3s",
        ],
    ));
    d.ok_as("bob", &["approve", &id]);
    d.ok_as("carol", &["approve", &id]);
    d.ok(&["shutdown"]);
    // The window (3 s from now + 3 s) ends while no server runs.
    std::thread::sleep(Duration::from_secs(7));
    let op = ended(&d, "restart");
    assert_eq!(op["state"], "failed", "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("did not start: request {id}'s window ended at")),
        "{error}"
    );
}
