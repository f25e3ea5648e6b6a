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

/// An export without its first line (which says when it was made).
fn records_of(export: &str) -> String {
    assert!(
        export.starts_with("# Gatehouse records, exported "),
        "{export}"
    );
    export.lines().skip(1).collect::<Vec<_>>().join("\n")
}

/// A data directory whose server keeps its records in the database at `url`.
fn jump_host(url: &str) -> DataDir {
    DataDir::on_shared_store(url, "")
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
    let asked = std::time::Instant::now();
    let refused = c.fails(&["list", "devices"]);
    // Said at once by the client, not after its whole start-up wait.
    assert!(asked.elapsed().as_secs() < 5, "took {:?}", asked.elapsed());
    assert!(refused.contains("could not start"), "{refused}");
    assert!(refused.contains("does not open"), "{refused}");
    assert!(refused.contains("same key file"), "{refused}");
    // Positive control: with A's key it starts.
    std::fs::copy(a.path().join("store.key"), c.path().join("store.key")).unwrap();
    c.ok(&["list", "devices"]);
}

#[test]
fn store_copy_moves_a_store_with_history_to_postgresql_and_back_with_the_same_records_output_and_chain(
) {
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let one = DataDir::new();
    let file = one.write("lab.toml", RECORDS);
    one.ok(&["import", file.to_str().unwrap()]);
    one.ok(&["request", "hello", "--wait"]);
    one.ok(&["request", "hello", "--wait"]);
    let exported = records_of(&one.ok(&["export"]));
    let history: Vec<serde_json::Value> = one
        .ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let op = history[0]["id"].to_string();
    let logs = one.ok(&["logs", &op]);
    assert!(logs.contains("hello from here"), "{logs}");
    // While its server runs, the directory is not copied.
    let busy = one.fails(&[
        "store",
        "copy",
        "--from",
        one.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(busy.contains("stop it first"), "{busy}");
    one.ok(&["shutdown"]);
    // A password on the command line is refused (ps shows it to everyone).
    let said = one.fails(&[
        "store",
        "copy",
        "--from",
        one.path().to_str().unwrap(),
        "--to",
        &format!("{url} password=hunter2"),
    ]);
    assert!(said.contains("holds a password"), "{said}");
    let copied = one.ok(&[
        "store",
        "copy",
        "--from",
        one.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(copied.contains("the audit chain verifies"), "{copied}");
    // Into a database that holds a store already: refused.
    let again = one.fails(&[
        "store",
        "copy",
        "--from",
        one.path().to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(again.contains("already holds a store"), "{again}");

    // A server on the database sees the same records, output and chain.
    let shared = jump_host(&url);
    std::fs::copy(
        one.path().join("store.key"),
        shared.path().join("store.key"),
    )
    .unwrap();
    assert_eq!(records_of(&shared.ok(&["export"])), exported);
    assert_eq!(shared.ok(&["logs", &op]), logs);
    assert!(shared.ok(&["audit", "verify"]).contains("chain intact"));
    shared.ok(&["shutdown"]);

    // And back into a new data directory.
    let two = DataDir::new();
    let back = two.ok(&[
        "store",
        "copy",
        "--from",
        &url,
        "--to",
        two.path().to_str().unwrap(),
        "--key",
        one.path().join("store.key").to_str().unwrap(),
    ]);
    assert!(back.contains("the audit chain verifies"), "{back}");
    assert_eq!(records_of(&two.ok(&["export"])), exported);
    assert_eq!(two.ok(&["logs", &op]), logs);
    assert!(two.ok(&["audit", "verify"]).contains("chain intact"));
    // New ids come after the copied ones.
    two.ok(&["request", "hello", "--wait"]);
    let newest: serde_json::Value =
        serde_json::from_str(two.ok(&["history", "--json"]).lines().next().unwrap()).unwrap();
    assert!(
        newest["id"].as_u64().unwrap() > history[0]["id"].as_u64().unwrap(),
        "{newest}"
    );
}

const APPROVALS: &str = r#"
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
name = "ticks"
executor = "local"
content = "for i in 1 2 3 4 5 6 7 8; do echo tick-$i; sleep 0.4; done"
[[task]]
name = "ticks"
template = "ticks"
environment = "lab"
system = "box"
devices = ["here"]
credential = "none"
[[role]]
name = "local-runner"
grants = [{ action = "run-local" }, { action = "view-executions" }]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[user]]
login = "bob"
roles = ["User", "local-runner"]
[[policy]]
name = "lab-ticks"
requires_approval = true
requires_justification = true
users = ["alice"]
environments = ["lab"]
approvers = [{ user = "bob", level = 1 }]
"#;

#[test]
fn a_request_filed_on_one_jump_host_reaches_an_approver_on_another_at_once_and_its_output_streams_back(
) {
    use common::tmux::Tmux;
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let a = jump_host(&url);
    let file = a.write("lab.toml", APPROVALS);
    a.ok(&["import", file.to_str().unwrap()]);
    let b = jump_host(&url);
    std::fs::copy(a.path().join("store.key"), b.path().join("store.key")).unwrap();
    let tui = |d: &DataDir, login: &str| {
        Tmux::start(&format!(
            "env GATEHOUSE_CONFIG={} {} --data-dir {} --as {login}; sleep 30",
            d.env[0].1,
            common::bin(),
            d.path().display()
        ))
    };
    // Bob watches his queue on B; alice her operations on A.
    let bob = tui(&b, "bob");
    bob.wait_for("bob");
    bob.keys(&["3"]);
    bob.wait_for("Waiting for you (0)");
    let alice = tui(&a, "alice");
    alice.wait_for("alice");
    alice.keys(&["4"]);
    // Filed on A: on bob's screen on B within seconds, without a key pressed.
    let filed_at = std::time::Instant::now();
    a.ok_as(
        "alice",
        &[
            "request",
            "ticks",
            "--justification",
            "filed on jump host A",
        ],
    );
    bob.wait_for("filed on jump host A");
    let took = filed_at.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    // Approved on B: it runs, and alice on A follows its output live.
    bob.keys(&["a"]);
    bob.wait_for("comment:");
    bob.keys(&["from B", "Enter"]);
    alice.wait_for("tick-2");
    let live = alice.wait_for("tick-8");
    assert!(live.contains("ticks"), "{live}");
    alice.wait_for("succeeded");
}

/// A jump host on `url` whose server counts another dead after `lease` seconds.
fn jump_host_with_lease(url: &str, lease: u64) -> DataDir {
    DataDir::on_shared_store(url, &format!("lease_secs = {lease}\n"))
}

const SLOW: &str = r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
[[device]]
name = "first"
address = "127.0.0.1"
environment = "lab"
system = "box"
[[device]]
name = "second"
address = "127.0.0.1"
environment = "lab"
system = "box"
[[credential]]
name = "none"
username = "nobody"
[[template]]
name = "slow"
executor = "local"
content = "echo started on [#DEVICE#]; if [ ! -e FLAG ]; then touch FLAG; sleep 15; fi; echo done on [#DEVICE#]"
[[task]]
name = "slow"
template = "slow"
environment = "lab"
system = "box"
devices = ["first", "second"]
credential = "none"
parallelism = 1
[[template]]
name = "tick"
executor = "local"
content = "echo tick"
[[task]]
name = "tick"
template = "tick"
environment = "lab"
system = "box"
devices = ["first"]
credential = "none"
schedule = "* * * * * *"
"#;

fn ops_of(d: &DataDir, task: &str) -> Vec<serde_json::Value> {
    d.ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|o| o["task"] == task)
        .collect()
}

#[test]
fn a_killed_servers_running_work_is_interrupted_its_queued_work_runs_on_a_survivor_and_nothing_runs_twice_when_it_rejoins(
) {
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let a = jump_host_with_lease(&url, 3);
    // The first run to start sleeps; the one after it does not.
    let flag = a.scratch.path().join("slept");
    let file = a.write("lab.toml", &SLOW.replace("FLAG", flag.to_str().unwrap()));
    a.ok(&["import", file.to_str().unwrap()]);
    let b = jump_host_with_lease(&url, 3);
    std::fs::copy(a.path().join("store.key"), b.path().join("store.key")).unwrap();
    b.ok(&["list", "devices"]);
    // On A: one device's run sleeps, the other waits behind it (parallelism 1).
    a.ok(&["request", "slow"]);
    let started = std::time::Instant::now();
    let (running, queued) = loop {
        let ops = ops_of(&b, "slow");
        let running = ops.iter().find(|o| o["state"] == "running");
        let queued = ops.iter().find(|o| o["state"] == "queued");
        if let (Some(r), Some(q)) = (running, queued) {
            break (r["id"].clone(), q["id"].clone());
        }
        assert!(started.elapsed().as_secs() < 10, "{ops:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // A server starting meanwhile leaves a live server's work alone.
    let c = jump_host_with_lease(&url, 3);
    std::fs::copy(a.path().join("store.key"), c.path().join("store.key")).unwrap();
    c.ok(&["list", "devices"]);
    let still = ops_of(&c, "slow");
    assert_eq!(
        still.iter().find(|o| o["id"] == running).unwrap()["state"],
        "running",
        "{still:?}"
    );
    drop(c);
    // cluster status: A holds both operations; B holds none.
    let status: serde_json::Value =
        serde_json::from_str(&b.ok(&["cluster", "status", "--json"])).unwrap();
    assert_eq!(status["shared"], true, "{status}");
    let servers = status["servers"].as_array().unwrap();
    let held: Vec<u64> = servers
        .iter()
        .filter(|s| s["alive"] == true)
        .map(|s| s["operations"].as_u64().unwrap())
        .collect();
    assert!(held.contains(&2), "{status}");
    assert_eq!(
        servers.iter().filter(|s| s["this_server"] == true).count(),
        1,
        "{status}"
    );
    let before = servers.len();
    // A dies without a word.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(common::server_pid(a.path()).expect("A's server runs") as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let killed = std::time::Instant::now();
    // B takes over within the lease (and a renewal): the running one is
    // interrupted, honestly; the queued one runs on B.
    loop {
        let ops = ops_of(&b, "slow");
        let was_running = ops.iter().find(|o| o["id"] == running).unwrap();
        let was_queued = ops.iter().find(|o| o["id"] == queued).unwrap();
        if was_running["state"] == "interrupted" && was_queued["state"] == "succeeded" {
            assert!(
                was_running["error"]
                    .as_str()
                    .unwrap()
                    .contains("the jump host running it stopped; the remote command may have run"),
                "{was_running}"
            );
            break;
        }
        assert!(killed.elapsed().as_secs() < 12, "not taken over: {ops:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let took = killed.elapsed();
    assert!(took.as_secs() < 8, "took {took:?} with a 3 s lease");
    // The dead server is gone from the list.
    let status: serde_json::Value =
        serde_json::from_str(&b.ok(&["cluster", "status", "--json"])).unwrap();
    assert!(
        status["servers"].as_array().unwrap().len() < before,
        "{status}"
    );
    let table = b.ok(&["cluster", "status"]);
    assert!(
        table.contains("LAST RENEWAL") && table.contains("shared"),
        "{table}"
    );
    assert!(b.ok(&["audit", "verify"]).contains("chain intact"));
    let logs = b.ok(&["logs", &queued.to_string()]);
    assert!(logs.contains("done on"), "{logs}");
    let interrupted = b
        .ok(&["audit", "export"])
        .lines()
        .filter(|l| l.contains("operation.interrupted"))
        .count();
    assert_eq!(interrupted, 1, "interrupted once, by one survivor");

    // A comes back: it joins the cluster as a new server and runs nothing
    // again (the taken-over work stays as the survivor left it).
    let starts = |d: &DataDir| {
        d.ok(&["audit", "export"])
            .lines()
            .filter(|l| l.contains("operation.start"))
            .count()
    };
    let started_before = starts(&b);
    assert_eq!(started_before, 2, "each operation started once");
    a.ok(&["list", "devices"]);
    let rejoined = std::time::Instant::now();
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&b.ok(&["cluster", "status", "--json"])).unwrap();
        let alive = status["servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["alive"] == true)
            .count();
        if alive == 2 {
            break;
        }
        assert!(
            rejoined.elapsed().as_secs() < 10,
            "A did not rejoin: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Two of its renewal rounds (a quarter of the lease each) go by.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let ops = ops_of(&a, "slow");
    assert_eq!(ops.len(), 2, "no operation added: {ops:?}");
    assert_eq!(
        ops.iter().find(|o| o["id"] == running).unwrap()["state"],
        "interrupted"
    );
    assert_eq!(
        ops.iter().find(|o| o["id"] == queued).unwrap()["state"],
        "succeeded"
    );
    assert_eq!(starts(&a), started_before, "nothing ran twice");
    let audit = a.ok(&["audit", "export"]);
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("operation.interrupted"))
            .count(),
        1
    );
    assert!(a.ok(&["audit", "verify"]).contains("chain intact"));
}

#[test]
fn a_schedule_fires_once_per_due_time_with_two_servers_up() {
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let a = jump_host(&url);
    let file = a.write("lab.toml", SLOW);
    a.ok(&["import", file.to_str().unwrap()]);
    let b = jump_host(&url);
    std::fs::copy(a.path().join("store.key"), b.path().join("store.key")).unwrap();
    b.ok(&["list", "devices"]);
    // The Superuser authorises the schedule; both servers tick every second.
    a.ok(&["request", "tick", "--schedule"]);
    std::thread::sleep(std::time::Duration::from_secs(8));
    let fired: Vec<String> = a
        .ok(&["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "task.schedule")
        .map(|e| {
            let details = e["details"].as_str().unwrap().to_string();
            details.split(';').next().unwrap().to_string()
        })
        .collect();
    assert!(fired.len() >= 5, "{fired:?}");
    let distinct: std::collections::BTreeSet<&String> = fired.iter().collect();
    assert_eq!(
        distinct.len(),
        fired.len(),
        "a due run fired twice: {fired:?}"
    );
    // Positive control: both servers were up and ticking all along.
    assert!(a.ok(&["list", "devices"]).contains("first"));
    assert!(b.ok(&["list", "devices"]).contains("first"));
}

/// A jump host on `url` that reaches only `environments`.
fn jump_host_reaching(url: &str, environments: &[&str]) -> DataDir {
    let list: Vec<String> = environments.iter().map(|e| format!("\"{e}\"")).collect();
    DataDir::on_shared_store(
        url,
        &format!(
            "lease_secs = 2\n[cluster]\nenvironments = [{}]\n",
            list.join(", ")
        ),
    )
}

const TWO_ZONES: &str = r#"
[[environment]]
name = "eu"
[[environment]]
name = "us"
[[system]]
name = "box"
[[device]]
name = "eu-box"
address = "127.0.0.1"
environment = "eu"
system = "box"
[[device]]
name = "us-box"
address = "127.0.0.1"
environment = "us"
system = "box"
[[credential]]
name = "none"
username = "nobody"
[[template]]
name = "where"
executor = "local"
content = "echo ran for [#DEVICE#]"
[[task]]
name = "us-only"
template = "where"
environment = "us"
system = "box"
devices = ["us-box"]
credential = "none"
"#;

#[test]
fn an_operation_runs_on_the_server_that_reaches_its_environment() {
    let pg = Postgres::start();
    let (_, url) = pg.database();
    let eu = jump_host_reaching(&url, &["eu"]);
    let file = eu.write("zones.toml", TWO_ZONES);
    eu.ok(&["import", file.to_str().unwrap()]);
    let us = jump_host_reaching(&url, &["us"]);
    std::fs::copy(eu.path().join("store.key"), us.path().join("store.key")).unwrap();
    us.ok(&["list", "devices"]);
    // Filed on the EU jump host, for a device in the US: the US server runs it.
    eu.ok(&["request", "us-only"]);
    let started = std::time::Instant::now();
    let op = loop {
        let ops = ops_of(&eu, "us-only");
        if let Some(o) = ops.iter().find(|o| o["state"] == "succeeded") {
            break o.clone();
        }
        assert!(started.elapsed().as_secs() < 15, "{ops:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(eu
        .ok(&["logs", &op["id"].to_string()])
        .contains("ran for us-box"));
    // cluster status says who reaches what; the EU server holds nothing.
    let status: serde_json::Value =
        serde_json::from_str(&eu.ok(&["cluster", "status", "--json"])).unwrap();
    let servers = status["servers"].as_array().unwrap();
    let envs: Vec<String> = servers
        .iter()
        .map(|s| s["environments"].to_string())
        .collect();
    assert!(envs.contains(&"[\"eu\"]".to_string()), "{status}");
    assert!(envs.contains(&"[\"us\"]".to_string()), "{status}");
    // Positive control: with the US server gone, a new US run waits.
    us.ok(&["shutdown"]);
    eu.ok(&["request", "us-only"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let waiting = ops_of(&eu, "us-only");
    assert!(
        waiting.iter().any(|o| o["state"] == "queued"),
        "{waiting:?}"
    );
}
