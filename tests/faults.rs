//! Faults: remote machines that misbehave in every way one fan-out can
//! meet, each ending in a clear state and message while the rest of the
//! fan-out runs on; and a server killed with SIGKILL at random moments, many
//! times, while operations run and requests are decided.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::sshd::{Sshd, TEST_PASSWORD, TEST_USER};
use common::DataDir;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn history(d: &DataDir) -> Vec<Value> {
    // Every operation, not the first page: a long loop has thousands.
    d.ok(&["history", "--json", "--all"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A peer that takes TCP connections and never says a word.
fn silent_peer() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in accepting.incoming().flatten() {
            held.push(stream);
        }
    });
    (listener, port)
}

#[test]
fn every_remote_fault_ends_clearly_and_the_rest_of_the_fan_out_runs() {
    let good = Sshd::start("");
    // Another sshd that lets nobody in: the credential is refused there.
    let no_passwords = Sshd::start("AllowUsers nobody-here\n");
    let (_silent, silent_port) = silent_peer();
    let other_key = common::sshd::keygen(
        tempfile::tempdir().unwrap().keep().as_path(),
        "other",
        "ed25519",
        "",
        None,
    );
    let wrong_fingerprint = common::sshd::fingerprint(&other_key.with_extension("pub"));
    let pin = good.host_key_line();
    let device = |name: &str, port: u16, key: &str| {
        format!(
            "[[device]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {port}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_key = \"{key}\"\n"
        )
    };
    let mut records = String::from("[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n");
    records.push_str(&device("fine", good.port, &pin));
    records.push_str(&device("drops", good.port, &pin));
    records.push_str(&device("full-disk", good.port, &pin));
    records.push_str(&device("silent", silent_port, &pin));
    records.push_str(&device("changed-key", good.port, &wrong_fingerprint));
    records.push_str(&device(
        "no-password",
        no_passwords.port,
        &no_passwords.host_key_line(),
    ));
    records.push_str(&format!(
        r#"[[credential]]
name = "login"
username = "{TEST_USER}"
password = "{TEST_PASSWORD}"
[[template]]
name = "t"
executor = "ssh-script"
content = '''
echo started on [#DEVICE#]
case [#DEVICE#] in
  drops) echo "half of it"; sleep 0.2; kill -9 $PPID ;;
  full-disk) echo "some data" > /dev/full ;;
  *) echo "all of it" ;;
esac
'''
[[task]]
name = "fan"
template = "t"
environment = "lab"
system = "box"
credential = "login"
devices = ["fine", "drops", "full-disk", "silent", "changed-key", "no-password"]
retries = 0
"#
    ));
    let d = DataDir::new();
    let config = d.write("config.toml", "[limits]\nconnect_timeout_secs = 3\n");
    let file = d.write("records.toml", &records);
    let cfg = config.to_str().unwrap();
    d.ok(&["--config", cfg, "import", file.to_str().unwrap()]);
    let started = Instant::now();
    let out = d.run(&["--config", cfg, "request", "fan", "--wait"]);
    let took = started.elapsed();
    assert!(
        !out.status.success(),
        "some devices fail, so the request does"
    );
    assert!(
        took < Duration::from_secs(30),
        "the silent peer held the fan-out up: {took:?}"
    );
    let ops: BTreeMap<String, Value> = history(&d)
        .into_iter()
        .map(|o| (o["device"].as_str().unwrap().to_string(), o))
        .collect();
    let state = |device: &str| ops[device]["state"].as_str().unwrap().to_string();
    let error = |device: &str| ops[device]["error"].as_str().unwrap_or("").to_string();
    let output = |device: &str| d.ok(&["logs", &ops[device]["id"].as_u64().unwrap().to_string()]);

    assert_eq!(state("fine"), "succeeded");
    assert!(output("fine").contains("all of it"));

    assert_eq!(state("drops"), "failed", "{:?}", ops["drops"]);
    assert!(
        output("drops").contains("half of it"),
        "what came before the drop is kept"
    );
    let e = error("drops");
    assert!(
        e.contains("without an exit status") || e.contains("closed") || e.contains("dropped"),
        "{e}"
    );

    assert_eq!(state("full-disk"), "failed");
    assert_eq!(ops["full-disk"]["exit_status"], 1);
    assert!(output("full-disk").contains("No space left on device"));

    assert_eq!(state("silent"), "failed");
    let e = error("silent");
    assert!(
        e.contains("no SSH session with device 'silent' at 127.0.0.1:") && e.contains("within 3 s"),
        "{e}"
    );

    assert_eq!(state("changed-key"), "failed");
    assert!(
        error("changed-key").contains("HOST KEY CHANGED"),
        "{}",
        error("changed-key")
    );

    assert_eq!(state("no-password"), "failed");
    let e = error("no-password");
    assert!(e.contains("authentication") || e.contains("refused"), "{e}");
    assert!(!e.contains(TEST_PASSWORD));

    // Nothing is left running, and the audit says how each one ended.
    assert!(ops
        .values()
        .all(|o| o["state"] != "running" && o["state"] != "queued"));

    // A wrong password on the healthy sshd: refused, the password never shown.
    let wrong = "not-the-Password-4711";
    let file = d.write(
        "wrong.toml",
        &format!(
            "[[credential]]\nname = \"wrong\"\nusername = \"{TEST_USER}\"\npassword = \"{wrong}\"\n\
             [[task]]\nname = \"wrong\"\ntemplate = \"t\"\nenvironment = \"lab\"\nsystem = \"box\"\n\
             credential = \"wrong\"\ndevices = [\"fine\"]\nretries = 0\n"
        ),
    );
    d.ok(&["--config", cfg, "import", file.to_str().unwrap()]);
    let out = d.run(&["--config", cfg, "request", "wrong", "--wait"]);
    assert!(!out.status.success());
    let op = history(&d)
        .into_iter()
        .find(|o| o["task"] == "wrong")
        .expect("the wrong-password operation");
    assert_eq!(op["state"], "failed", "{op}");
    let e = op["error"].as_str().unwrap_or("");
    assert!(
        e.contains("refused the password") && e.contains(TEST_USER),
        "{e}"
    );
    let id = op["id"].as_u64().unwrap().to_string();
    for text in [
        e.to_string(),
        d.ok(&["logs", &id]),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        d.ok(&["audit", "export"]),
    ] {
        assert!(!text.contains(wrong), "the password was shown: {text}");
    }
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
}

fn crash_records(devices: usize) -> String {
    let mut text = String::from(
        "[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n[[credential]]\nname = \"none\"\nusername = \"root\"\n",
    );
    let names: Vec<String> = (0..devices).map(|i| format!("n{i:02}")).collect();
    for n in &names {
        text.push_str(&format!(
            "[[device]]\nname = \"{n}\"\naddress = \"127.0.0.1\"\nenvironment = \"lab\"\nsystem = \"box\"\n"
        ));
    }
    text.push_str(&format!(
        r#"[[template]]
name = "work"
executor = "local"
content = "for i in 1 2 3 4 5; do echo step $i; sleep 0.1; done"
[[task]]
name = "work"
template = "work"
environment = "lab"
system = "box"
credential = "none"
devices = [{}]
parallelism = 50
retries = 1
[[task]]
name = "gated"
template = "work"
environment = "lab"
system = "box"
credential = "none"
devices = ["n00"]
[[user]]
login = "alice"
roles = ["User"]
[[user]]
login = "bob"
roles = ["User"]
[[policy]]
name = "gate"
requires_approval = true
users = ["alice"]
environments = ["lab"]
approvers = [{{ user = "bob", level = 1 }}]
"#,
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    text
}

/// Imports a task `t` that runs `script` on this host with the local executor.
fn local_task(d: &DataDir, script: &str) {
    let records = format!(
        "[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n\
         [[credential]]\nname = \"none\"\nusername = \"root\"\n\
         [[device]]\nname = \"here\"\naddress = \"127.0.0.1\"\nenvironment = \"lab\"\nsystem = \"box\"\n\
         [[template]]\nname = \"t\"\nexecutor = \"local\"\ncontent = \"{script}\"\n\
         [[task]]\nname = \"t\"\ntemplate = \"t\"\nenvironment = \"lab\"\nsystem = \"box\"\n\
         credential = \"none\"\ndevices = [\"here\"]\n"
    );
    let file = d.write("records.toml", &records);
    d.ok(&["import", file.to_str().unwrap()]);
}

/// The server's own disk failing under it: output that cannot be stored is
/// still shown live, the watcher is told at once, and the operation's end
/// says so (in its error, in history and in the audit), not only a log file.
#[test]
fn output_that_cannot_be_stored_is_said_not_lost_in_silence() {
    let d = DataDir::new();
    local_task(&d, "echo visible anyway");
    // The output folder is gone and a file stands in its place.
    let folder = d.path().join("output");
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();

    let out = d.run(&["request", "t", "--wait"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the work itself succeeded: {shown} {said}"
    );
    // The end says what was not stored and why; reading the store back
    // fails too, which is said, and the end still comes. (The output went
    // by live, but a watcher that was not reading at that moment cannot get
    // it back from a store that does not have it: not asserted.)
    assert!(
        said.contains(" here: succeeded (its output was not stored"),
        "{said}"
    );
    assert!(said.contains("Not a directory"), "{said}");
    assert!(said.contains("cannot read its stored output"), "{said}");
    let op = history(&d).into_iter().next().unwrap();
    assert_eq!(op["state"], "succeeded");
    let e = op["error"].as_str().unwrap_or_default();
    assert!(e.contains("its output was not stored"), "{op}");
    assert!(d
        .ok(&["audit", "export"])
        .contains("its output was not stored"));
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
}

/// Unmounts a test's filesystem however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The disk under the output filling up in the middle of a run (a 64 KiB
/// tmpfs mounted over `output/`; the tests run as root): what fits is kept,
/// the rest goes to the live watchers only, and the operation's end says
/// where storing stopped and why.
#[test]
fn a_disk_that_fills_in_the_middle_of_a_run_is_said_at_the_byte_it_filled() {
    let d = DataDir::new();
    local_task(&d, "seq 1 50000; echo last line");
    let folder = d.path().join("output");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&folder)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let _unmount = Mounted(folder);

    let out = d.run(&["request", "t", "--wait"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // The output went by live (a watcher that falls behind reads skipped
    // chunks back from the store, so only the stored part is certain to be
    // shown), and the operation's end says where storing stopped.
    assert!(shown.contains("[here] 1\n"), "{shown}");
    assert!(
        said.contains("succeeded (its output from byte")
            && said.contains("No space left on device"),
        "{said}"
    );
    let op = history(&d).into_iter().next().unwrap();
    assert_eq!(op["state"], "succeeded");
    let e = op["error"].as_str().unwrap_or_default().to_string();
    let from: u64 = e
        .split("from byte ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte in: {e}"));
    assert!(from > 0 && from < 64 * 1024, "{e}");
    // What fit is kept and reads back, up to where it stopped.
    let id = op["id"].as_u64().unwrap().to_string();
    let logs = d.ok(&["logs", &id]);
    assert!(
        logs.contains("[here] 1\n") && !logs.contains("last line"),
        "{logs}"
    );
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
}

/// A small pseudo-random sequence, so that a failure can be replayed by its seed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_leaves_nothing_stuck() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    crash_loop(DataDir::new(), rounds);
}

/// The same crash loop on a shared PostgreSQL store: the server that
/// starts after each kill takes over the dead one's operations once its
/// (short) lease has run out.
#[test]
fn kill_9_at_random_moments_on_postgresql_loses_nothing_and_leaves_nothing_stuck() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let pg = common::postgres::Postgres::start();
    let (_, url) = pg.database();
    crash_loop(DataDir::on_shared_store(&url, "lease_secs = 2\n"), rounds);
}

fn crash_loop(d: DataDir, rounds: usize) {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash loop seed {seed} (CRASH_SEED={seed} replays it)");
    let mut rng = Lcg(seed);
    let file = d.write("records.toml", &crash_records(50));
    d.ok(&["import", file.to_str().unwrap()]);
    // The export without its first line, which says when it was made.
    let records = |d: &DataDir| {
        d.ok(&["export"])
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let baseline = records(&d);
    // Every operation and request the server said it had stored.
    let mut acknowledged_ops: Vec<u64> = Vec::new();
    let mut acknowledged_requests: Vec<u64> = Vec::new();

    for round in 0..rounds {
        // 50 operations start; requests are filed and decided meanwhile.
        // "request N: 50 operation(s): 16 on n00, 17 on n01, …" (on stderr).
        let out = d.run(&["request", "work"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        let ids: Vec<u64> = said
            .split_once("operation(s):")
            .map(|(_, rest)| {
                rest.split(',')
                    .filter_map(|p| p.split_whitespace().next()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(ids.len(), 50, "{said}");
        acknowledged_ops.extend(ids);
        let data = d.path().to_path_buf();
        let env = d.env.clone();
        let decider = std::thread::spawn(move || {
            let mut filed = Vec::new();
            for _ in 0..5 {
                let out = std::process::Command::new(common::bin())
                    .arg("--data-dir")
                    .arg(&data)
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .args(["--as", "alice", "request", "gated"])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                if let Some(id) = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|w| w.trim_end_matches(':').parse::<u64>().ok())
                {
                    filed.push(id);
                    let _ = std::process::Command::new(common::bin())
                        .arg("--data-dir")
                        .arg(&data)
                        .envs(env.iter().map(|(k, v)| (k, v)))
                        .args(["--as", "bob", "approve", &id.to_string(), "--comment", "ok"])
                        .output();
                }
            }
            filed
        });
        std::thread::sleep(Duration::from_millis(50 + rng.next(600)));
        let pid = common::server_pid(d.path()).expect("a server is running");
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        acknowledged_requests.extend(decider.join().unwrap());

        // The next command starts a server on the same store.
        let verify = d.run(&["audit", "verify"]);
        let verify_text = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success() && verify_text.contains("chain intact"),
            "round {round} (seed {seed}): {verify_text} {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        assert!(
            records(&d) == baseline,
            "round {round} (seed {seed}): records changed"
        );
        // Nothing stays running or queued: interrupted ones were retried or ended.
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let ops = history(&d);
            let stuck: Vec<&Value> = ops
                .iter()
                .filter(|o| matches!(o["state"].as_str(), Some("running" | "queued" | "retrying")))
                .collect();
            if stuck.is_empty() {
                // A set: a long loop holds tens of thousands of operations.
                let present: std::collections::HashSet<u64> =
                    ops.iter().filter_map(|o| o["id"].as_u64()).collect();
                for id in &acknowledged_ops {
                    assert!(
                        present.contains(id),
                        "round {round} (seed {seed}): operation {id} was lost"
                    );
                }
                // Every operation of this round that succeeded has its whole
                // output, even where a kill tore the file of an earlier attempt.
                let this_round = &acknowledged_ops[acknowledged_ops.len() - 50..];
                for op in ops.iter().filter(|o| {
                    o["state"] == "succeeded"
                        && o["id"].as_u64().is_some_and(|id| this_round.contains(&id))
                }) {
                    let id = op["id"].as_u64().unwrap().to_string();
                    let logs = d.ok(&["logs", &id]);
                    let last_attempt = logs.rsplit("* attempt").next().unwrap_or_default();
                    for step in 1..=5 {
                        assert!(
                            last_attempt.contains(&format!("step {step}\n")),
                            "round {round} (seed {seed}): operation {id} lost output:\n{logs}"
                        );
                    }
                    assert!(
                        last_attempt.trim_end().ends_with("exit status 0"),
                        "round {round} (seed {seed}): operation {id}:\n{logs}"
                    );
                }
                break;
            }
            assert!(
                Instant::now() < until,
                "round {round} (seed {seed}): still unfinished: {stuck:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let requests: std::collections::HashSet<u64> = d
            .ok(&["requests", "--json"])
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|r| r["id"].as_u64())
            .collect();
        for id in &acknowledged_requests {
            assert!(
                requests.contains(id),
                "round {round} (seed {seed}): request {id} was lost"
            );
        }
        println!(
            "round {round}: {} operations and {} requests acknowledged, all there",
            acknowledged_ops.len(),
            acknowledged_requests.len()
        );
    }
    let ops = history(&d);
    assert!(
        ops.iter()
            .any(|o| o["state"] == "interrupted" || o["attempts"].as_u64() > Some(1)),
        "no kill ever hit a running operation"
    );
}
