//! `gatehouse search`: stored output across operations, through the real
//! binary: what matches (colours stripped, a last line without a newline
//! included), the filters, visibility, and the audit of the search.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::DataDir;
use serde_json::Value;

const RECORDS: &str = r#"
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
name = "say"
executor = "local"
content = "echo start; printf 'the \\033[31mBOOM\\033[0m from %s\\n' [#WHAT#]; echo quiet; printf 'tail boom without newline'"
[[template.variable]]
name = "WHAT"
default = "nobody"
[[template]]
name = "calm"
executor = "local"
content = "echo nothing to see"
[[task]]
name = "say"
template = "say"
environment = "lab"
system = "box"
devices = ["here", "there"]
credential = "none"
[[task]]
name = "calm"
template = "calm"
environment = "lab"
system = "box"
devices = ["here"]
credential = "none"
[[role]]
name = "local-runner"
grants = [{ action = "run-local" }]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[policy]]
name = "lab"
users = ["alice"]
environments = ["lab"]
"#;

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn search_finds_lines_across_operations_within_the_filters_and_what_one_may_see() {
    let d = DataDir::new();
    let file = d.write("r.toml", RECORDS);
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["request", "say", "--var", "WHAT=root-run", "--wait"]);
    d.ok(&["request", "calm", "--wait"]);
    d.ok_as(
        "alice",
        &[
            "request",
            "say",
            "--device",
            "here",
            "--var",
            "WHAT=alice-run",
            "--wait",
        ],
    );

    // Every run of `say` on both devices: the coloured line with its
    // escapes stripped, and the last line that has no newline.
    let all = lines(&d.ok(&["search", "boom", "--json"]));
    assert_eq!(all.len(), 6, "{all:?}");
    let coloured: Vec<&str> = all
        .iter()
        .filter_map(|m| m["line"].as_str())
        .filter(|l| l.starts_with("the BOOM from"))
        .collect();
    assert_eq!(coloured.len(), 3, "{all:?}");
    assert!(coloured.contains(&"the BOOM from root-run"), "{coloured:?}");
    assert!(
        coloured.contains(&"the BOOM from alice-run"),
        "{coloured:?}"
    );
    assert!(
        all.iter()
            .any(|m| m["line"] == "tail boom without newline" && m["line_number"] == 4),
        "{all:?}"
    );
    assert!(all.iter().all(|m| m["task"] == "say"));
    // Newest first: alice's run comes first.
    assert_eq!(all[0]["requested_by"], "alice");

    // Filters: a device, a user, a time.
    let there = lines(&d.ok(&["search", "BOOM", "--device", "there", "--json"]));
    assert_eq!(there.len(), 2, "{there:?}");
    assert!(there.iter().all(|m| m["device"] == "there"));
    let alices = lines(&d.ok(&["search", "boom", "--user", "alice", "--json"]));
    assert_eq!(alices.len(), 2, "{alices:?}");
    let future = d.ok(&[
        "search",
        "boom",
        "--since",
        "2099-01-01T00:00:00Z",
        "--json",
    ]);
    assert!(future.is_empty(), "{future}");
    // The text form names operation, task, device, time and line.
    let text = d.ok(&["search", "from alice-run"]);
    assert!(
        text.lines().count() == 1
            && text.contains(" say ")
            && text.contains(" here ")
            && text.contains("out:2 the BOOM from alice-run"),
        "{text}"
    );
    // --limit stops early and says so.
    let out = d.run(&["search", "boom", "--limit", "1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped at --limit 1"));

    // History narrowed to operations whose output holds the text.
    let ops = lines(&d.ok(&["history", "--output", "BOOM", "--json"]));
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(ops.iter().all(|o| o["task"] == "say"), "{ops:?}");
    assert!(d
        .ok(&["history", "--output", "no such words", "--json"])
        .is_empty());

    // alice sees her own operations only.
    let hers = lines(&d.ok_as("alice", &["search", "boom", "--json"]));
    assert_eq!(hers.len(), 2, "{hers:?}");
    assert!(
        hers.iter().all(|m| m["requested_by"] == "alice"),
        "{hers:?}"
    );

    // Every search is audited, with what was looked for.
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.lines().any(|l| l.contains("\"output.search\"")
            && l.contains("\"root as alice\"")
            && l.contains("searched for \\\"boom\\\"")),
        "{audit}"
    );
}

/// History and the audit export as CSV (one row per line of JSON), and
/// every event of one request and its operations found by its id.
#[test]
fn history_and_audit_export_as_csv_and_a_requests_events_are_found_by_its_id() {
    let d = DataDir::new();
    let file = d.write("r.toml", RECORDS);
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok_as(
        "alice",
        &["request", "say", "--var", "WHAT=first", "--wait"],
    );
    d.ok_as("alice", &["request", "calm", "--wait"]);

    let jsonl = lines(&d.ok(&["history", "--format", "jsonl"]));
    let csv_text = d.ok(&["history", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..3], ["id", "request", "task"], "{csv_text}");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), jsonl.len(), "{csv_text}");
    assert_eq!(
        rows.len(),
        3,
        "two devices for say, one for calm: {csv_text}"
    );
    assert_eq!(rows[0][0], jsonl[0]["id"].to_string());
    assert_eq!(&rows[0][6], jsonl[0]["state"].as_str().unwrap());

    let audit_csv = d.ok(&["audit", "export", "--format", "csv"]);
    let audit_rows = csv::Reader::from_reader(audit_csv.as_bytes())
        .records()
        .count();
    // The second export holds one event more: the first export's own.
    assert_eq!(
        audit_rows + 1,
        d.ok(&["audit", "export"]).lines().count(),
        "{audit_csv}"
    );

    // The `say` request: its creation, its run and both operations' ends,
    // and nothing of the `calm` request.
    let say = jsonl.iter().find(|o| o["task"] == "say").unwrap();
    let calm = jsonl.iter().find(|o| o["task"] == "calm").unwrap();
    let id = say["request"].to_string();
    let events = lines(&d.ok(&["audit", "export", "--request", &id]));
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"request.create"), "{actions:?}");
    assert!(actions.contains(&"request.run"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "operation.finish").count(),
        2,
        "{events:?}"
    );
    let calm_id = calm["request"].to_string();
    assert!(
        events
            .iter()
            .all(|e| !e.to_string().contains(&format!("request {calm_id}"))),
        "{events:?}"
    );
}

fn events(d: &DataDir, action: &str) -> Vec<Value> {
    lines(&d.ok(&["audit", "export"]))
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

/// The audit tells the whole story: what an update changed, where a clone
/// came from, when an operation started, the server's start and stop, and
/// the reads: exports, someone else's output (not one's own).
#[test]
fn the_audit_holds_changes_field_by_field_clones_starts_server_life_and_reads() {
    let d = DataDir::new();
    let file = d.write("r.toml", RECORDS);
    d.ok(&["import", file.to_str().unwrap()]);
    let moved = RECORDS.replace(
        "address = \"127.0.0.2\"",
        "address = \"127.0.0.3\"\nport = 2222",
    );
    let file = d.write("moved.toml", &moved);
    d.ok(&["import", file.to_str().unwrap()]);
    let update = events(&d, "device.update");
    assert_eq!(update.len(), 1, "{update:?}");
    assert_eq!(
        update[0]["details"],
        "revision 2; address: \"127.0.0.2\" → \"127.0.0.3\"; port: 22 → 2222"
    );
    d.ok(&["clone", "template", "say", "say-copy"]);
    let created = events(&d, "template.create");
    assert!(
        created.iter().any(|e| e["target"] == "template say-copy"
            && e["details"] == "revision 1; cloned from template say"),
        "{created:?}"
    );

    d.ok_as("alice", &["request", "calm", "--wait"]);
    let start = events(&d, "operation.start");
    assert_eq!(start.len(), 1, "{start:?}");
    assert!(
        start[0]["target"]
            .as_str()
            .unwrap()
            .starts_with("operation ")
            && start[0]["target"]
                .as_str()
                .unwrap()
                .contains("calm on here, request "),
        "{start:?}"
    );
    let op = lines(&d.ok(&["history", "--json"]))[0]["id"].to_string();
    // alice reads her own output: not audited; root reads it: audited.
    d.ok_as("alice", &["logs", &op]);
    assert!(events(&d, "output.read").is_empty());
    d.ok(&["logs", &op]);
    // Read again: audited once per reader and operation, not at every look.
    d.ok(&["logs", &op]);
    let read = events(&d, "output.read");
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0]["actor"], "root");
    assert_eq!(read[0]["details"], "output of alice's operation");

    d.ok(&["export"]);
    assert_eq!(events(&d, "records.export").len(), 1);
    assert!(!events(&d, "audit.export").is_empty());

    // The server's life: started once so far; a stop and a new start.
    assert_eq!(events(&d, "server.start").len(), 1);
    d.ok(&["shutdown"]);
    let stop = events(&d, "server.stop");
    assert_eq!(stop.len(), 1, "{stop:?}");
    assert!(stop[0]["details"]
        .as_str()
        .unwrap()
        .ends_with("shutdown requested"));
    assert_eq!(events(&d, "server.start").len(), 2);
}

/// One operation with more matching lines than a page holds fills the
/// page, is said to hold more, and the older operations are still
/// searched; memory stays bounded by the page.
#[test]
fn an_operation_that_fills_a_page_is_said_and_older_ones_are_still_searched() {
    let d = DataDir::new();
    let many = RECORDS.to_string()
        + r#"
[[template]]
name = "many"
executor = "local"
content = "i=0; while [ $i -lt 1500 ]; do echo boom $i; i=$((i+1)); done"
[[task]]
name = "many"
template = "many"
environment = "lab"
system = "box"
devices = ["here"]
credential = "none"
"#;
    let file = d.write("r.toml", &many);
    d.ok(&["import", file.to_str().unwrap()]);
    d.ok(&["request", "say", "--wait"]);
    d.ok(&["request", "many", "--wait"]);
    let out = d.run(&["search", "boom", "--limit", "100000", "--json"]);
    assert!(out.status.success());
    let found = lines(&String::from_utf8_lossy(&out.stdout));
    let from_many = found.iter().filter(|m| m["task"] == "many").count();
    let from_say = found.iter().filter(|m| m["task"] == "say").count();
    assert_eq!(from_many, 1000, "a page's worth");
    assert_eq!(from_say, 4, "the older operations are searched too");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("may hold more matching lines than shown"),
        "{stderr}"
    );
}
