//! Reading what a run did: history, output, and the target's processes.

use super::sshd::TEST_USER;
use super::DataDir;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The request id a `request` command printed first (`request 42: …`).
pub fn request_id(out: &str) -> String {
    out.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no request id in: {out}"))
        .trim_end_matches(':')
        .to_string()
}

pub fn history(d: &DataDir) -> Vec<Value> {
    d.ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn logs(d: &DataDir, op: &Value) -> String {
    d.ok(&["logs", &op["id"].to_string()])
}

/// Waits until the newest operations all reach a final state.
pub fn wait_final(d: &DataDir, count: usize, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let h = history(d);
        let finals = ["succeeded", "failed", "cancelled", "interrupted", "skipped"];
        if h.len() >= count
            && h.iter()
                .take(count)
                .all(|o| finals.contains(&o["state"].as_str().unwrap()))
        {
            return h;
        }
        assert!(start.elapsed() < limit, "operations did not finish: {h:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes of the test user whose command line is exactly `pattern`.
pub fn remote_processes(pattern: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-u", TEST_USER, "-f", &format!("^{pattern}$")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Waits until `check` holds, or panics naming `what`.
pub fn eventually(what: &str, limit: Duration, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
