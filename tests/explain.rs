//! Refusals that explain every policy that could apply, and `policy
//! explain` for oneself and (with view-policies) for others, through the
//! real binary.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::DataDir;
use serde_json::Value;

/// alice is listed by three policies for production web: one only for
/// Sunday 03:00–04:00 (so it fails on its window, unless the test runs
/// then), one for the db system, one for the lab environment; a fourth
/// does not list her.
const RECORDS: &str = r#"
[[environment]]
name = "production"
[[environment]]
name = "lab"
[[system]]
name = "web"
[[system]]
name = "db"
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
content = "echo ran"
[[task]]
name = "hello-prod"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
[[role]]
name = "local-runner"
grants = [{ action = "run-local" }]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[user]]
login = "bob"
roles = ["User"]
[[user]]
login = "audrey"
roles = ["Auditor"]
[[policy]]
name = "lab-ops"
users = ["alice"]
environments = ["lab"]
[[policy]]
name = "prod-db"
users = ["alice"]
environments = ["production"]
systems = ["db"]
[[policy]]
name = "prod-web"
users = ["alice"]
environments = ["production"]
systems = ["web"]
timezone = "UTC"
[[policy.window]]
days = ["sun"]
from = "03:00"
to = "04:00"
[[policy]]
name = "bobs-only"
users = ["bob"]
environments = ["production"]
"#;

fn setup() -> DataDir {
    let d = DataDir::new();
    let file = d.write("r.toml", RECORDS);
    d.ok(&["import", file.to_str().unwrap()]);
    d
}

/// A Monday noon, a week or more ahead: outside prod-web's window.
fn monday_noon() -> String {
    use chrono::{Datelike, Duration, Utc, Weekday};
    let mut day = Utc::now().date_naive() + Duration::days(7);
    while day.weekday() != Weekday::Mon {
        day += Duration::days(1);
    }
    format!("{day}T12:00:00Z")
}

#[test]
fn a_refusal_lists_the_three_policies_that_could_apply_closest_first() {
    let d = setup();
    let err = d.fails_as("alice", &["request", "hello-prod", "--at", &monday_noon()]);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].contains(
            "outside the access window of policy prod-web: Sun 03:00–04:00 (UTC; Mon 12:00 there)"
        ),
        "{err}"
    );
    assert_eq!(
        lines[1], "policies that could apply, most promising first:",
        "{err}"
    );
    assert!(lines[2].starts_with("  prod-web: fails window:"), "{err}");
    assert!(lines[3].starts_with("  prod-db: fails system:"), "{err}");
    assert!(
        lines[4].starts_with("  lab-ops: fails environment:"),
        "{err}"
    );
    // bob's policy is not told to alice.
    assert!(!err.contains("bobs-only"), "{err}");
}

#[test]
fn policy_explain_answers_for_oneself_and_with_view_policies_for_others() {
    let d = setup();
    let at = monday_noon();
    let table = d.ok_as("alice", &["policy", "explain", "hello-prod", "--at", &at]);
    println!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("may alice request hello-prod on here at ")
            && lines[0].ends_with("? no: no policy covers it"),
        "{table}"
    );
    let order: Vec<&str> = lines[3..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["prod-web", "prod-db", "lab-ops", "bobs-only"],
        "{table}"
    );
    assert!(lines[6].contains("refuses  user"), "{table}");

    // The same verdicts as the decision: at a Sunday 03:30 prod-web covers,
    // and the request there is filed under it.
    let sunday = {
        use chrono::{Datelike, Duration, Utc, Weekday};
        let mut day = Utc::now().date_naive() + Duration::days(1);
        while day.weekday() != Weekday::Sun {
            day += Duration::days(1);
        }
        format!("{day}T03:30:00Z")
    };
    let json: Value = serde_json::from_str(&d.ok_as(
        "alice",
        &["policy", "explain", "hello-prod", "--at", &sunday, "--json"],
    ))
    .unwrap();
    assert_eq!(json["covered_by"], "prod-web", "{json}");
    d.ok_as("alice", &["request", "hello-prod", "--at", &sunday]);

    // Someone else: bob (no view-policies) may not ask about alice; the
    // auditor may.
    let err = d.fails_as(
        "bob",
        &["policy", "explain", "hello-prod", "--user", "alice"],
    );
    assert!(
        err.contains("may not see how the policies judge 'alice'"),
        "{err}"
    );
    let json: Value = serde_json::from_str(&d.ok_as(
        "audrey",
        &[
            "policy",
            "explain",
            "hello-prod",
            "--user",
            "bob",
            "--at",
            &at,
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(json["user"], "bob");
    assert_eq!(json["covered_by"], "bobs-only", "{json}");
    // bob holds no run-local: the permission, not a policy, stops him.
    assert!(
        json["permission"]
            .as_str()
            .unwrap_or("")
            .contains("run-local"),
        "{json}"
    );
}
