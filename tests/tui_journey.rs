//! The operator's journey through the real binary in tmux, at 120x40 and at
//! 80x24, against a real sshd on loopback: request a task from Tasks, see
//! it in "Your requests", watch it run with its progress once approved,
//! search its output forward, retry the device that failed, and find both
//! runs in History.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::sshd::{Sshd, TEST_PASSWORD, TEST_USER};
use common::tmux::Tmux;
use common::DataDir;

/// Two names for the loopback sshd; on box-2 the script fails until the
/// flag file exists.
fn records(sshd: &Sshd, flag: &std::path::Path) -> String {
    let device = |name: &str| {
        format!(
            r#"
[[device]]
name = "{name}"
address = "127.0.0.1"
port = {port}
environment = "lab"
system = "box"
host_key = "{host_key}"
"#,
            port = sshd.port,
            host_key = sshd.host_key_line()
        )
    };
    format!(
        r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
{box1}{box2}
[[credential]]
name = "tester"
username = "{TEST_USER}"
password = "{TEST_PASSWORD}"
[[template]]
name = "count"
executor = "ssh-script"
content = """
i=1
while [ $i -le 60 ]; do echo "line-$i on [#DEVICE#]"; i=$((i+1)); done
if [ "[#DEVICE#]" = box-2 ] && [ ! -e {flag} ]; then echo "box-2 is not ready" >&2; exit 3; fi
echo "all done on [#DEVICE#]"
"""
[[task]]
name = "count"
template = "count"
environment = "lab"
system = "box"
devices = ["box-1", "box-2"]
credential = "tester"
[[user]]
login = "alice"
roles = ["User"]
[[user]]
login = "bob"
roles = ["User"]
[[policy]]
name = "lab-count"
requires_approval = true
requires_justification = true
users = ["alice"]
environments = ["lab"]
approvers = [{{ user = "bob", level = 1 }}]
"#,
        box1 = device("box-1"),
        box2 = device("box-2"),
        flag = flag.display()
    )
}

/// The id of alice's newest request.
fn newest_request(d: &DataDir) -> String {
    let mine = d.ok(&["--as", "alice", "requests", "--mine", "--json"]);
    let first: serde_json::Value = serde_json::from_str(mine.lines().next().unwrap()).unwrap();
    first["id"].to_string()
}

fn journey(columns: u16, rows: u16) {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    // Where the test user (the sshd's) can see it.
    let flag = std::env::temp_dir().join(format!(
        "gh-journey-{}-{columns}x{rows}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&flag);
    let file = d.write("lab.toml", &records(&sshd, &flag));
    d.ok(&["import", file.to_str().unwrap()]);
    let tmux = Tmux::start_sized(
        &format!(
            "{} --data-dir {} --as alice; sleep 30",
            common::bin(),
            d.path().display()
        ),
        columns,
        rows,
    );
    tmux.wait_for("alice");

    // 1. From Tasks, the request form; the justification is asked for.
    tmux.keys(&["2"]);
    tmux.wait_for("count");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Request count");
    tmux.keys(&["C-s"]);
    tmux.wait_for("Justification is required");
    tmux.keys(&["journey", "C-s"]);
    tmux.wait_for("is waiting for approval at level 1");
    let request = newest_request(&d);

    // 2. Your requests: pending, then approved as bob decides elsewhere.
    tmux.keys(&["3", "m"]);
    tmux.wait_for("Your requests (1)");
    tmux.wait_for("pending at level 1");
    d.ok(&["--as", "bob", "approve", &request, "--comment", "go"]);

    // 3. It runs: Operations shows the request's progress and how it ended.
    tmux.keys(&["4"]);
    let ended = tmux.wait_for(&format!("request {request} count"));
    assert!(ended.contains("Running and queued"), "{ended}");
    let ended = tmux.wait_for("1/2 done · 1 failed · 0 running");
    assert!(ended.contains("ended lately (2)"), "{ended}");
    assert!(ended.contains("· ended"), "{ended}");

    // 4. Search box-1's output forward: to the first line, then n.
    tmux.keys(&["/", "box-1", "Enter"]);
    tmux.wait_for("matching 'box-1'");
    tmux.wait_for("all done on box-1");
    tmux.keys(&["s", "line-40 on", "Enter"]);
    tmux.keys(&["<"]);
    let top = tmux.wait_for("line-1 on box-1");
    assert!(!top.contains("line-40 on box-1"), "{top}");
    tmux.keys(&["n"]);
    tmux.wait_for("line-40 on box-1");
    tmux.keys(&["n"]);
    tmux.wait_for("'line-40 on' not found below");

    // 5. Retry the device that failed: R fills the form with box-2 alone.
    tmux.keys(&["/", "BSpace", "2", "Enter"]);
    tmux.wait_for("matching 'box-2'");
    tmux.wait_for("box-2 is not ready");
    std::fs::write(&flag, "").unwrap();
    tmux.keys(&["R"]);
    let form = tmux.wait_for("Request count");
    assert!(form.contains("[x] box-2"), "{form}");
    assert!(form.contains("[ ] box-1"), "{form}");
    tmux.keys(&["C-s"]);
    tmux.wait_for("Justification is required");
    tmux.keys(&["retry box-2", "C-s"]);
    tmux.wait_for("is waiting for approval at level 1");
    let retry = newest_request(&d);
    assert_ne!(retry, request);
    d.ok(&["--as", "bob", "approve", &retry, "--comment", "again"]);
    tmux.wait_for(&format!("request {retry} finished: 1 succeeded, 0 failed"));

    // 6. History has both runs of box-2: the failure and the retry.
    tmux.keys(&["5", "/", "device:box-2", "Enter"]);
    let history = tmux.wait_for("History matching 'device:box-2' (2");
    assert!(history.contains("failed"), "{history}");
    assert!(history.contains("succeeded"), "{history}");
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.contains("retry box-2"),
        "the retry went through the policy: {audit}"
    );
    let _ = std::fs::remove_file(&flag);
}

#[test]
fn the_operators_journey_runs_without_a_dead_end_at_120x40() {
    journey(120, 40);
}

#[test]
fn the_operators_journey_runs_without_a_dead_end_at_80x24() {
    journey(80, 24);
}
