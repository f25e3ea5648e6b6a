//! Two servers (two data directories, as two jump hosts would have) on one
//! PostgreSQL database: one set of records, one history with its output,
//! one audit chain; a server whose key cannot open the store is refused.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::postgres::Postgres;
use common::DataDir;

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
[[credential]]
name = "none"
username = "nobody"
[[template]]
name = "hello"
executor = "local"
content = "echo hello from [#DEVICE#]; echo second line"
[[task]]
name = "hello"
template = "hello"
environment = "lab"
system = "box"
devices = ["here"]
credential = "none"
"#;

/// A data directory whose server keeps its records in the database at `url`.
fn jump_host(url: &str) -> DataDir {
    let mut d = DataDir::new();
    let config = d.write("config.toml", &format!("[store]\nurl = \"{url}\"\n"));
    d.env
        .push(("GATEHOUSE_CONFIG".into(), config.display().to_string()));
    d
}

#[test]
fn two_servers_on_one_database_share_records_history_output_and_one_audit_chain() {
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let a = jump_host(&url);
    let file = a.write("lab.toml", RECORDS);
    a.ok(&["import", file.to_str().unwrap()]);
    // The second jump host has the same sealing key, copied by the admin.
    let b = jump_host(&url);
    std::fs::copy(a.path().join("store.key"), b.path().join("store.key")).unwrap();
    // Records made on A are B's.
    assert!(b.ok(&["list", "tasks"]).contains("hello"));
    // A run on A: B lists it and reads its output.
    let ran = a.ok(&["request", "hello", "--wait"]);
    assert!(ran.contains("on here"), "{ran}");
    let history: Vec<serde_json::Value> = b
        .ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let op = history
        .iter()
        .find(|o| o["task"] == "hello")
        .expect("A's run is in B's history");
    assert_eq!(op["state"], "succeeded", "{op}");
    let logs = b.ok(&["logs", &op["id"].to_string()]);
    assert!(logs.contains("hello from here"), "{logs}");
    assert!(logs.contains("second line"), "{logs}");
    // B appends to the same chain; both verify all of it.
    b.ok(&["request", "hello", "--wait"]);
    let on_a = a.ok(&["audit", "verify"]);
    let on_b = b.ok(&["audit", "verify"]);
    assert_eq!(on_a, on_b);
    let events: Vec<serde_json::Value> = a
        .ok(&["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one chain, no gap"
    );
    assert!(on_a.contains("chain intact"), "{on_a}");
    // Both servers' runs are in it.
    let finished = events
        .iter()
        .filter(|e| e["action"] == "operation.finish")
        .count();
    assert_eq!(finished, 2, "{events:?}");
    // Nothing about the records is in either data directory's sled store:
    // the records are the database's.
    assert!(!a.path().join("store").exists());
    assert!(!b.path().join("store").exists());
}

#[test]
fn a_server_whose_key_cannot_open_the_store_refuses_to_start() {
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let a = jump_host(&url);
    a.ok(&["list", "devices"]);
    // Another jump host with its own, different key.
    let c = jump_host(&url);
    let refused = c.fails(&["list", "devices"]);
    let log = std::fs::read_dir(c.path().join("logs"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect::<String>()
        })
        .unwrap_or_default();
    let said = format!("{refused}{log}");
    assert!(said.contains("does not open"), "{said}");
    assert!(said.contains("same key file"), "{said}");
    // Positive control: with A's key it starts.
    std::fs::copy(a.path().join("store.key"), c.path().join("store.key")).unwrap();
    c.ok(&["list", "devices"]);
}
