//! Access policies and approvals end to end, through the real binary with
//! `--as` (the server's owner acting as each user).

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::request_id;

use common::DataDir;
use serde_json::Value;
use std::time::{Duration, Instant};

fn records(policy_extra: &str) -> String {
    format!(
        r#"
[[environment]]
name = "production"
[[system]]
name = "web"
[[reason]]
name = "incident"
type = "incident"
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
content = "echo approved run of [#WHAT#]"
[[template.variable]]
name = "WHAT"
default = "nothing"
[[task]]
name = "restart"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
[[role]]
name = "local-runner"
# The fixtures' tasks run on this host: that is its own permission.
grants = [{{ action = "run-local" }}]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[user]]
login = "bob"
roles = ["User", "local-runner"]
[[user]]
login = "carol"
roles = ["User", "local-runner"]
[[policy]]
name = "prod-web"
requires_justification = true
requires_approval = true
emergency_access = true
users = ["alice"]
environments = ["production"]
approvers = [{{ user = "bob", level = 1 }}, {{ user = "carol", level = 2 }}]
{policy_extra}
"#
    )
}

fn setup(policy_extra: &str) -> DataDir {
    let d = DataDir::new();
    let file = d.write("r.toml", &records(policy_extra));
    d.ok(&["import", file.to_str().unwrap()]);
    d
}

fn as_user(d: &DataDir, user: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--as", user];
    all.extend_from_slice(args);
    d.run(&all)
}

fn ok_as(d: &DataDir, user: &str, args: &[&str]) -> String {
    let out = as_user(d, user, args);
    assert!(
        out.status.success(),
        "{user} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails_as(d: &DataDir, user: &str, args: &[&str]) -> String {
    let out = as_user(d, user, args);
    assert!(
        !out.status.success(),
        "{user} {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn queue(d: &DataDir, user: &str) -> Vec<Value> {
    ok_as(d, user, &["queue", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_for_op(d: &DataDir, state: &str) -> Value {
    let start = Instant::now();
    loop {
        let h: Vec<Value> = d
            .ok(&["history", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if let Some(o) = h.iter().find(|o| o["state"] == state) {
            return o.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {state} operation: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_levels_approve_in_order_and_then_exactly_the_request_runs() {
    let d = setup("");
    let err = fails_as(&d, "alice", &["request", "restart"]);
    assert!(err.contains("requires a justification"), "{err}");
    let out = ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--var",
            "WHAT=nginx",
            "--justification",
            "disk full",
        ],
    );
    assert!(out.contains("pending at level 1"), "{out}");
    let id = request_id(&out);

    // Separation of duties, and level order.
    assert!(fails_as(&d, "alice", &["approve", &id]).contains("own request"));
    assert!(fails_as(&d, "carol", &["approve", &id]).contains("not an approver at level 1"));
    assert!(queue(&d, "carol").is_empty());
    let q = queue(&d, "bob");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["task"], "restart");
    assert_eq!(q[0]["requester"], "alice");
    assert_eq!(q[0]["level"], 1);
    assert_eq!(q[0]["justification"], "disk full");

    assert!(ok_as(&d, "bob", &["approve", &id, "--comment", "ok"]).contains("pending at level 2"));
    assert!(queue(&d, "bob").is_empty());
    assert_eq!(queue(&d, "carol").len(), 1);
    assert!(ok_as(&d, "carol", &["approve", &id]).contains("approved"));
    let op = wait_for_op(&d, "succeeded");
    assert_eq!(op["requested_by"], "alice");
    assert_eq!(op["superuser_bypass"], false);
    assert!(d
        .ok(&["logs", &op["id"].to_string()])
        .contains("approved run of nginx"));
    let audit = d.ok(&["audit", "export"]);
    for action in [
        "request.create",
        "request.approve",
        "request.approve.refused",
        "request.run",
    ] {
        assert!(
            audit.contains(&format!("\"action\":\"{action}\"")),
            "{action} missing"
        );
    }
}

#[test]
fn a_rejection_ends_the_request_with_its_comment() {
    let d = setup("");
    let id = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x"],
    ));
    assert!(fails_as(&d, "bob", &["reject", &id, "--comment", " "]).contains("needs a comment"));
    ok_as(
        &d,
        "bob",
        &["reject", &id, "--comment", "not during the sale"],
    );
    assert!(fails_as(&d, "carol", &["approve", &id]).contains("rejected, not pending"));
    let mine: Vec<Value> = ok_as(&d, "alice", &["requests", "--mine", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(mine[0]["state"], "rejected");
    assert_eq!(mine[0]["decisions"][0]["comment"], "not during the sale");
    assert!(
        d.ok(&["history", "--json"]).trim().is_empty(),
        "nothing ran"
    );
}

#[test]
fn a_change_after_approval_voids_the_request_saying_what_changed() {
    let d = setup("");
    let id = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x"],
    ));
    ok_as(&d, "bob", &["approve", &id]);
    let changed = records("").replace("echo approved run of", "echo something else,");
    let file = d.write("changed.toml", &changed);
    d.ok(&["import", file.to_str().unwrap()]);
    let err = fails_as(&d, "carol", &["approve", &id]);
    assert!(
        err.contains("template 't' changed since it was approved"),
        "{err}"
    );
    assert!(
        d.ok(&["history", "--json"]).trim().is_empty(),
        "nothing ran"
    );
}

#[test]
fn refusals_name_the_failed_condition_and_are_audited() {
    // A window on no day that is today.
    let today = chrono::Local::now().format("%a").to_string().to_lowercase();
    let other = if today == "mon" { "tue" } else { "mon" };
    let d = setup(&format!(
        "[[policy.window]]\ndays = [\"{other}\"]\nfrom = \"00:00\"\nto = \"24:00\"\n"
    ));
    let err = fails_as(&d, "alice", &["request", "restart", "--justification", "x"]);
    assert!(
        err.contains("outside the access window of policy prod-web"),
        "{err}"
    );
    let err = fails_as(&d, "bob", &["request", "restart", "--justification", "x"]);
    assert!(err.contains("no enabled access policy lets 'bob'"), "{err}");
    let err = fails_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--reason",
            "nope",
        ],
    );
    assert!(
        err.contains("outside the access window") || err.contains("'nope'"),
        "{err}"
    );
    assert!(d
        .ok(&["audit", "export"])
        .contains("\"action\":\"request.refused\""));
}

#[test]
fn emergency_access_runs_at_once_and_notifies_every_approver() {
    let d = setup("");
    let out = ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "outage",
            "--emergency",
            "--wait",
        ],
    );
    assert!(out.contains("approved run of nothing"), "{out}");
    for approver in ["bob", "carol"] {
        let q = queue(&d, approver);
        assert_eq!(q.len(), 1, "{approver}");
        assert_eq!(q[0]["emergency"], true);
    }
    assert!(queue(&d, "alice").is_empty());
    assert!(d
        .ok(&["audit", "export"])
        .contains("\"action\":\"request.emergency\""));
}

#[test]
fn a_policy_without_emergency_access_refuses_it() {
    let d = DataDir::new();
    let file = d.write(
        "r.toml",
        &records("").replace("emergency_access = true\n", ""),
    );
    d.ok(&["import", file.to_str().unwrap()]);
    let err = fails_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x", "--emergency"],
    );
    assert!(err.contains("does not allow emergency access"), "{err}");
}

/// The current code for an otpauth:// URI, as an authenticator app computes it.
fn current_code(uri: &str) -> String {
    // totp-enroll prints the URI first, then the recovery codes.
    let uri = uri.lines().next().unwrap_or_default();
    let t = totp_rs::TOTP::from_url_unchecked(uri.trim()).expect("otpauth uri");
    t.generate_current().unwrap()
}

#[test]
fn mfa_needs_a_current_code_from_each_approver_and_a_code_works_once() {
    let d = setup("requires_mfa = true\n");
    // Each approver enrols themselves; nobody, an administrator included,
    // gets another person's secret.
    let bob_uri = ok_as(&d, "bob", &["user", "totp-enroll", "bob"]);
    assert!(bob_uri.starts_with("otpauth://totp/"), "{bob_uri}");
    assert!(fails_as(&d, "bob", &["user", "totp-enroll", "carol"]).contains("only themselves"));
    assert!(d
        .fails(&["user", "totp-enroll", "carol"])
        .contains("only themselves"));
    let carol_uri = ok_as(&d, "carol", &["user", "totp-enroll", "carol"]);

    let id = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x"],
    ));
    assert!(fails_as(&d, "bob", &["approve", &id]).contains("requires MFA"));
    assert!(fails_as(&d, "bob", &["approve", &id, "--totp", "000000"]).contains("wrong"));
    let code = current_code(&bob_uri);
    ok_as(&d, "bob", &["approve", &id, "--totp", &code]);
    // The same code can't approve a second request.
    let second = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "y"],
    ));
    assert!(fails_as(&d, "bob", &["approve", &second, "--totp", &code]).contains("already used"));
    ok_as(
        &d,
        "carol",
        &["approve", &id, "--totp", &current_code(&carol_uri)],
    );
    wait_for_op(&d, "succeeded");
    // The secret itself is stored sealed: the export and the listing never show it.
    let secret = bob_uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert!(!d.ok(&["export"]).contains(&secret));
}

#[test]
fn resource_access_grants_read_run_and_write_on_named_records_only() {
    let extra_records = r#"
[[task]]
name = "other"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
[[template]]
name = "t2"
executor = "local"
content = "true"
[[role]]
name = "restart-runner"
resources = [
  { kind = "task", name = "restart", levels = ["read", "run"] },
  { kind = "template", name = "t2", levels = ["read", "write"] },
]
[[user]]
login = "dave"
roles = ["restart-runner", "local-runner"]
"#;
    let d = DataDir::new();
    let text =
        records("").replace("users = [\"alice\"]", "users = [\"alice\", \"dave\"]") + extra_records;
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    let tasks = ok_as(&d, "dave", &["list", "tasks"]);
    assert!(
        tasks.contains("restart") && !tasks.contains("other"),
        "{tasks}"
    );
    assert!(
        ok_as(&d, "dave", &["request", "restart", "--justification", "x"])
            .contains("pending at level 1")
    );
    let err = fails_as(&d, "dave", &["request", "other", "--justification", "x"]);
    assert!(err.contains("may not request tasks"), "{err}");
    // write on t2 lets dave change t2, and only t2.
    let t2 = d.write(
        "t2.toml",
        "[[template]]\nname = \"t2\"\nexecutor = \"local\"\ncontent = \"echo changed\"\n",
    );
    ok_as(&d, "dave", &["import", t2.to_str().unwrap()]);
    let t = d.write(
        "t.toml",
        "[[template]]\nname = \"t\"\nexecutor = \"local\"\ncontent = \"echo pwned\"\n",
    );
    assert!(
        fails_as(&d, "dave", &["import", t.to_str().unwrap()]).contains("may not change templates")
    );
    // No delete level: no delete.
    assert!(fails_as(&d, "dave", &["delete", "template", "t2"]).contains("not permitted"));
}

#[test]
fn alice_requests_bob_and_carol_approve_with_totp_and_it_runs_on_the_real_machine() {
    use common::sshd::{Sshd, TEST_PASSWORD, TEST_USER};
    let sshd = Sshd::start("");
    let text = records("requires_mfa = true\n")
        .replace(
            "address = \"127.0.0.1\"\n",
            &format!(
                "address = \"{}\"\nport = {}\nhost_key = \"{}\"\n",
                sshd.address,
                sshd.port,
                sshd.host_key_line()
            ),
        )
        .replace(
            "username = \"root\"\n",
            &format!("username = \"{TEST_USER}\"\npassword = \"{TEST_PASSWORD}\"\n"),
        )
        .replace(
            "executor = \"local\"\ncontent = \"echo approved run of [#WHAT#]\"",
            "executor = \"ssh-script\"\ncontent = \"echo approved run of [#WHAT#] as $(id -un)\"",
        );
    let d = DataDir::new();
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    let carol_uri = ok_as(&d, "carol", &["user", "totp-enroll", "carol"]);
    let bob_uri = ok_as(&d, "bob", &["user", "totp-enroll", "bob"]);
    let id = request_id(&ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--var",
            "WHAT=nginx",
            "--justification",
            "disk full",
        ],
    ));
    ok_as(
        &d,
        "bob",
        &["approve", &id, "--totp", &current_code(&bob_uri)],
    );
    ok_as(
        &d,
        "carol",
        &["approve", &id, "--totp", &current_code(&carol_uri)],
    );
    let op = wait_for_op(&d, "succeeded");
    let log = d.ok(&["logs", &op["id"].to_string()]);
    assert!(
        log.contains(&format!("approved run of nginx as {TEST_USER}")),
        "{log}"
    );
    assert!(!log.contains(TEST_PASSWORD));
}

#[test]
fn a_policy_naming_one_person_at_two_levels_is_refused_at_save() {
    let d = DataDir::new();
    let text = records("").replace(
        "approvers = [",
        "approvers = [{ user = \"bob\", level = 2 }, ",
    );
    assert!(text.contains("user = \"bob\", level = 2"), "{text}");
    let file = d.write("r.toml", &text);
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(
        err.contains("'bob' is an approver at levels 1 and 2"),
        "{err}"
    );
}

#[test]
fn mfa_binds_a_request_that_needs_no_approval_to_the_requesters_code() {
    let d = DataDir::new();
    let text = records("requires_mfa = true\n")
        .replace("requires_approval = true\n", "requires_approval = false\n");
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    // Without a code nothing runs (before: it ran at once).
    let err = fails_as(&d, "alice", &["request", "restart", "--justification", "x"]);
    assert!(err.contains("requires MFA"), "{err}");
    assert!(d.ok(&["history", "--json"]).is_empty(), "nothing ran");
    let uri = ok_as(&d, "alice", &["user", "totp-enroll", "alice"]);
    let err = fails_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--totp",
            "000000",
        ],
    );
    assert!(err.contains("wrong"), "{err}");
    // With her current code it runs.
    ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--totp",
            &current_code(&uri),
        ],
    );
    wait_for_op(&d, "succeeded");
}

#[test]
fn a_disabled_environment_or_system_stops_requests() {
    let d = setup("");
    for (kind, name) in [("environment", "production"), ("system", "web")] {
        d.ok(&["disable", kind, name]);
        let err = fails_as(&d, "alice", &["request", "restart", "--justification", "x"]);
        assert!(
            err.contains(&format!("its {kind} '{name}' is disabled")),
            "{err}"
        );
        d.ok(&["enable", kind, name]);
    }
    // Positive control: enabled again, the request is filed.
    ok_as(&d, "alice", &["request", "restart", "--justification", "x"]);
}

/// Path 8: a request made inside the window for a run after it ends is
/// refused (before: a window ending today accepted a run five days later).
#[test]
fn a_run_deferred_with_at_must_fall_inside_the_window() {
    // Every day, all day, until the end of today.
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let d = setup(&format!(
        "[[policy.window]]\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\nfrom = \"00:00\"\nto = \"24:00\"\nend_date = \"{today}\"\n"
    ));
    let later = (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    let err = fails_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x", "--at", &later],
    );
    assert!(err.contains("--at"), "{err}");
    assert!(
        err.contains("outside the access window of policy prod-web"),
        "{err}"
    );
    // Positive control: the same request for now is filed.
    ok_as(&d, "alice", &["request", "restart", "--justification", "x"]);
}

/// Path 11: resource-level delete works (the role granting it no longer
/// counts as a use of the record), and the grants on the deleted record go
/// with it, so a record made later under its name inherits no access.
#[test]
fn delete_access_to_a_named_task_deletes_it_and_its_grants() {
    let d = DataDir::new();
    let text = records("").replace(
        "[[user]]\nlogin = \"alice\"",
        "[[role]]\nname = \"restart-remover\"\nresources = [{ kind = \"task\", name = \"restart\", levels = [\"read\", \"delete\"] }]\n[[user]]\nlogin = \"dan\"\nroles = [\"User\", \"restart-remover\"]\n[[user]]\nlogin = \"alice\"",
    );
    assert!(text.contains("restart-remover"));
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    // Without delete access: refused (carol holds nothing on the task).
    let err = fails_as(&d, "carol", &["delete", "task", "restart"]);
    assert!(err.contains("may not delete tasks"), "{err}");
    ok_as(&d, "dan", &["delete", "task", "restart"]);
    let roles = d.ok(&["export"]);
    assert!(!roles.contains("name = \"restart\""), "{roles}");
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.contains("its access to task restart went with the deleted record"),
        "{audit}"
    );
}

/// Path 7: a request that went stale before anyone approved it is voided at
/// the first approval, not accepted at level 1 and voided only at the last.
#[test]
fn a_stale_request_is_voided_at_the_first_approval() {
    let d = setup("");
    let id = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x"],
    ));
    let changed = records("").replace("echo approved run of", "echo something else,");
    let file = d.write("changed.toml", &changed);
    d.ok(&["import", file.to_str().unwrap()]);
    let err = fails_as(&d, "bob", &["approve", &id]);
    assert!(err.contains(&format!("request {id} is void")), "{err}");
    assert!(
        err.contains("template 't' changed since it was approved"),
        "{err}"
    );
    let requests = d.ok(&["requests", "--json"]);
    assert!(requests.contains("\"state\":\"void\""), "{requests}");
    // Nothing can be decided on it any more.
    let err = fails_as(&d, "carol", &["approve", &id]);
    assert!(err.contains("not pending"), "{err}");
}

/// A task request declares the change it is for where the policy requires
/// one; the template's lines outside the declared plan are reported when
/// it is filed (before anyone approves), and approvers see the change.
#[test]
fn a_task_request_names_its_change_and_lines_outside_the_plan_are_reported() {
    let d = setup("requires_change = true\n");
    let err = fails_as(&d, "alice", &["request", "restart", "--justification", "x"]);
    assert!(
        err.contains("requires the change it is for (--change CODE)"),
        "{err}"
    );
    // A plan that expects the template's line: no deviation.
    let id = request_id(&ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--change",
            "CHG-3",
            "--plan",
            "echo approved run of *",
        ],
    ));
    let audit = d.ok(&["audit", "export"]);
    assert!(!audit.contains("change.deviation"), "{audit}");
    let queue = ok_as(&d, "bob", &["queue", "--json"]);
    let filed: serde_json::Value = queue
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["id"].as_u64().map(|n| n.to_string()) == Some(id.clone()))
        .expect("the request is in bob's queue");
    assert_eq!(filed["change"], "CHG-3", "{filed}");
    // A plan that does not: the line is reported.
    ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--change",
            "CHG-4",
            "--plan",
            "systemctl restart nginx",
        ],
    );
    let audit = d.ok(&["audit", "export"]);
    let deviation = audit
        .lines()
        .find(|l| l.contains("\"change.deviation\""))
        .expect("a deviation event");
    assert!(
        deviation.contains("outside the plan of change CHG-4: echo approved run of [#WHAT#]"),
        "{deviation}"
    );
}

/// A policy names the zone its windows are read in, and a window may run
/// past midnight; a zone that is not an IANA name is refused by field.
#[test]
fn a_policy_names_its_time_zone_and_an_overnight_window() {
    let d = setup("timezone = \"Europe/Berlin\"\n[[policy.window]]\ndays = [\"fri\"]\nfrom = \"22:00\"\nto = \"06:00\"\n");
    let export = d.ok(&["export"]);
    assert!(
        export.contains("timezone = \"Europe/Berlin\"")
            && export.contains("from = \"22:00\"")
            && export.contains("to = \"06:00\""),
        "{export}"
    );
    let bad = d.write(
        "bad.toml",
        "[[policy]]\nname = \"mars\"\nusers = [\"alice\"]\ntimezone = \"Mars/Olympus\"\n",
    );
    let err = d.fails(&["import", bad.to_str().unwrap()]);
    assert!(
        err.contains("timezone") && err.contains("'Mars/Olympus' is not an IANA time zone"),
        "{err}"
    );
}

/// One code and one comment approve several requests together; each
/// outcome is reported, one that cannot be decided fails the command
/// without stopping the others; a batch rejection needs its reason.
#[test]
fn one_code_and_one_comment_decide_a_batch_and_each_outcome_is_reported() {
    let d = setup("requires_mfa = true\n");
    let bob_uri = ok_as(&d, "bob", &["user", "totp-enroll", "bob"]);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            request_id(&ok_as(
                &d,
                "alice",
                &["request", "restart", "--justification", &format!("n{i}")],
            ))
        })
        .collect();
    let code = current_code(&bob_uri);
    let mut args = vec!["approve"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["--totp", &code, "--comment", "rollout batch"]);
    let out = ok_as(&d, "bob", &args);
    for id in &ids {
        assert!(
            out.contains(&format!("request {id}: pending at level 2")),
            "{out}"
        );
    }
    let audit = d.ok(&["audit", "export"]);
    let approvals = audit
        .lines()
        .filter(|l| {
            l.contains("\"request.approve\"") && l.contains("level 1 approved: rollout batch")
        })
        .count();
    assert_eq!(approvals, 3, "{audit}");
    // The code was used once, for the batch.
    let another = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "later"],
    ));
    assert!(fails_as(&d, "bob", &["approve", &another, "--totp", &code]).contains("already used"));

    // carol rejects two and names one that does not exist: two rejected,
    // the third reported, the command fails.
    let out = as_user(
        &d,
        "carol",
        &[
            "reject",
            &ids[0],
            &ids[1],
            "999999",
            "--comment",
            "not this week",
        ],
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains(&format!("request {}: rejected", ids[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("request {}: rejected", ids[1])),
        "{stdout}"
    );
    assert!(stderr.contains("request 999999: not rejected"), "{stderr}");
    assert!(
        stderr.contains("1 of 3 request(s) not rejected"),
        "{stderr}"
    );
    // Without a comment (and no terminal to ask on), a rejection is refused.
    let err = fails_as(&d, "carol", &["reject", &ids[2]]);
    assert!(err.contains("a rejection needs a comment"), "{err}");
    let requests = d.ok(&["requests", "--json"]);
    assert_eq!(
        requests.matches("\"state\":\"rejected\"").count(),
        2,
        "{requests}"
    );
}

/// An approver sees what a request will run on each device: the pinned
/// template rendered with the request's values (defaults marked), the
/// credential, the decisions so far; `queue --json` carries the same;
/// someone neither requester nor approver is refused.
#[test]
fn request_show_renders_what_runs_per_device_for_its_approvers_only() {
    let d = setup("");
    let id = request_id(&ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "x",
            "--var",
            "WHAT=cache",
        ],
    ));
    let defaulted = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "y"],
    ));
    let shown = ok_as(&d, "bob", &["request", "show", &id]);
    assert!(
        shown.contains("logs in with credential none (as root)"),
        "{shown}"
    );
    assert!(shown.contains("template t rev 1 (local)"), "{shown}");
    assert!(
        shown.contains("on here:\n  echo approved run of 'cache'"),
        "{shown}"
    );
    let shown = ok_as(&d, "bob", &["request", "show", &defaulted]);
    assert!(shown.contains("WHAT = nothing  (its default)"), "{shown}");
    assert!(shown.contains("echo approved run of 'nothing'"), "{shown}");
    // After bob's approval, carol (level 2) sees it with his comment.
    ok_as(&d, "bob", &["approve", &id, "--comment", "cache only"]);
    let shown = ok_as(&d, "carol", &["request", "show", &id]);
    assert!(shown.contains("level 1 approved by bob at "), "{shown}");
    assert!(shown.contains(": cache only"), "{shown}");
    // The queue's JSON carries what runs.
    let queue = ok_as(&d, "carol", &["queue", "--json"]);
    let first: Value = serde_json::from_str(queue.lines().next().unwrap()).unwrap();
    assert_eq!(first["runs"]["devices"][0]["devices"][0], "here", "{first}");
    assert!(
        first["runs"]["devices"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("echo approved run of"),
        "{first}"
    );
    // Someone else may not look.
    let eve = d.write(
        "eve.toml",
        "[[user]]\nlogin = \"eve\"\nroles = [\"User\"]\n",
    );
    d.ok(&["import", eve.to_str().unwrap()]);
    let err = fails_as(&d, "eve", &["request", "show", &id]);
    assert!(err.contains("may not see what request"), "{err}");
    let err = fails_as(&d, "bob", &["request", "show", "999999"]);
    assert!(
        err.contains("there is no request 999999") && !err.contains("no there is"),
        "{err}"
    );
}

/// An emergency run waits in its approvers' queues until one of them
/// reviews it (accepted, or flagged for follow-up, always with why); then
/// it leaves every queue, cannot be reviewed twice, and the review is
/// shown with the request and kept in the audit.
#[test]
fn an_emergency_run_waits_for_a_review_by_an_approver_and_then_leaves_the_queues() {
    let d = setup("");
    ok_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "site down",
            "--emergency",
        ],
    );
    let requests = d.ok(&["requests", "--json"]);
    let id =
        serde_json::from_str::<Value>(requests.lines().next().unwrap()).unwrap()["id"].to_string();
    let in_queue = |user: &str| {
        queue(&d, user).iter().any(|r| {
            r["id"].as_u64().map(|n| n.to_string()).as_deref() == Some(id.as_str())
                && r["emergency"] == true
        })
    };
    assert!(in_queue("bob") && in_queue("carol"));
    let shown = ok_as(&d, "bob", &["request", "show", &id]);
    assert!(shown.contains("emergency run: awaiting review"), "{shown}");
    // Not by its requester, not without why.
    let err = fails_as(
        &d,
        "alice",
        &["review", &id, "--accept", "--comment", "fine"],
    );
    assert!(err.contains("nobody reviews their own emergency"), "{err}");
    let err = fails_as(&d, "bob", &["review", &id, "--accept"]);
    assert!(err.contains("a review needs a comment"), "{err}");
    let out = ok_as(
        &d,
        "bob",
        &[
            "review",
            &id,
            "--flag",
            "--comment",
            "why was prod touched at night?",
        ],
    );
    assert!(
        out.contains(&format!(
            "request {id}: emergency reviewed: flagged for follow-up"
        )),
        "{out}"
    );
    assert!(!in_queue("bob") && !in_queue("carol"));
    let err = fails_as(&d, "carol", &["review", &id, "--accept", "--comment", "ok"]);
    assert!(err.contains("was reviewed already, by bob"), "{err}");
    let shown = ok_as(&d, "carol", &["request", "show", &id]);
    assert!(
        shown.contains("emergency run reviewed by bob at ")
            && shown.contains("flagged for follow-up: why was prod touched at night?"),
        "{shown}"
    );
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.lines().any(|l| l.contains("\"request.review\"")
            && l.contains("flagged for follow-up the emergency run of alice")),
        "{audit}"
    );
}

/// A policy may require every approval to say why; a rejection always must.
#[test]
fn a_policy_that_requires_approval_comments_refuses_an_empty_one() {
    let d = setup("requires_approval_comment = true\n");
    let id = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x"],
    ));
    let err = fails_as(&d, "bob", &["approve", &id]);
    assert!(
        err.contains("policy prod-web requires a comment with every approval"),
        "{err}"
    );
    // Positive control: with a comment it is approved.
    let out = ok_as(
        &d,
        "bob",
        &["approve", &id, "--comment", "checked the diff"],
    );
    assert!(out.contains("pending at level 2"), "{out}");
    assert!(d
        .ok(&["export"])
        .contains("requires_approval_comment = true"));
}

/// What a request runs names a device's address only to those who may see
/// the device (view-devices); its requester without that sees the mask.
#[test]
fn request_show_names_an_address_only_to_those_who_may_see_the_device() {
    let d = DataDir::new();
    let text = records("").replace(
        "content = \"echo approved run of [#WHAT#]\"",
        "content = \"echo approved run of [#WHAT#] on [#ADDRESS#]\"",
    );
    let file = d.write("r.toml", &text);
    d.ok(&["import", file.to_str().unwrap()]);
    let id = request_id(&ok_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x"],
    ));
    let hers = ok_as(&d, "alice", &["request", "show", &id]);
    assert!(
        hers.contains("on [#ADDRESS#]") && !hers.contains("127.0.0.1"),
        "{hers}"
    );
    // The owner (a Superuser) sees the device, and so its address.
    let mine = d.ok(&["request", "show", &id]);
    assert!(mine.contains("on 127.0.0.1"), "{mine}");
}
