//! The real binary, in tmux, against a real sshd on loopback: an approver
//! approves from the queue and watches the run's output arrive; an operator
//! fills and submits a request form; an administrator creates a device and a
//! template whose syntax error the form shows at its line.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::sshd::{Sshd, TEST_PASSWORD, TEST_USER};
use common::tmux::Tmux;
use common::DataDir;

fn records(sshd: &Sshd) -> String {
    format!(
        r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
[[reason]]
name = "incident"
type = "incident"
[[device]]
name = "box-1"
address = "127.0.0.1"
port = {port}
environment = "lab"
system = "box"
host_key = "{host_key}"
[[credential]]
name = "tester"
username = "{TEST_USER}"
password = "{TEST_PASSWORD}"
[[template]]
name = "tick"
executor = "ssh-script"
content = "for i in 1 2 3 4 5 6; do echo tick-$i-[#WHAT#]; sleep 0.5; done"
[[template.variable]]
name = "WHAT"
description = "what the ticks say"
default = "hello"
[[task]]
name = "tick"
template = "tick"
environment = "lab"
system = "box"
devices = ["box-1"]
credential = "tester"
[[user]]
login = "alice"
roles = ["User"]
[[user]]
login = "bob"
roles = ["User"]
[[policy]]
name = "lab-tick"
requires_approval = true
requires_justification = true
users = ["alice"]
environments = ["lab"]
approvers = [{{ user = "bob", level = 1 }}]
"#,
        port = sshd.port,
        host_key = sshd.host_key_line()
    )
}

fn setup() -> (DataDir, Sshd) {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let file = d.write("lab.toml", &records(&sshd));
    d.ok(&["import", file.to_str().unwrap()]);
    (d, sshd)
}

fn tui_as(d: &DataDir, login: &str) -> Tmux {
    Tmux::start(&format!(
        "{} --data-dir {} --as {login}; sleep 30",
        common::bin(),
        d.path().display()
    ))
}

#[test]
fn an_approver_approves_from_the_queue_and_watches_the_output_arrive() {
    let (d, _sshd) = setup();
    let filed = d.ok(&[
        "--as",
        "alice",
        "request",
        "tick",
        "--justification",
        "e2e check",
        "--var",
        "WHAT=approved",
    ]);
    assert!(filed.contains("pending at level 1"), "{filed}");
    let tmux = tui_as(&d, "bob");
    tmux.wait_for("1 Dashboard");
    tmux.keys(&["3"]);
    tmux.wait_for("e2e check");
    // What runs on box-1, the variable's value in place (shell-quoted).
    tmux.wait_for("on box-1:");
    tmux.wait_for("echo tick-$i-'approved'");
    tmux.keys(&["a"]);
    tmux.wait_for("comment:");
    tmux.keys(&["looks right", "Enter"]);
    tmux.keys(&["4"]);
    tmux.wait_for("tick-1-approved");
    let screen = tmux.wait_for("tick-3-approved");
    assert!(
        screen.contains("Running and queued (1)") || screen.contains("running"),
        "{screen}"
    );
    // It ends and moves to History with the whole output.
    tmux.keys(&["5"]);
    tmux.wait_for("succeeded");
    tmux.wait_for("tick-6-approved");
    let decided = d.ok(&["requests", "--json"]);
    assert!(decided.contains("looks right"), "{decided}");
}

#[test]
fn an_operator_fills_and_submits_a_request_form() {
    let (d, _sshd) = setup();
    let tmux = tui_as(&d, "alice");
    tmux.wait_for("1 Dashboard");
    tmux.keys(&["2"]);
    tmux.wait_for("tick");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Request tick");
    tmux.wait_for("Policy lab-tick: approval at 1 level, needs a justification");
    // Submitting without the justification is stopped in the form.
    tmux.keys(&["C-s"]);
    tmux.wait_for("Justification is required");
    tmux.keys(&["from the form"]);
    // The variable: back to it, replace the default with a bad value, then a good one.
    tmux.keys(&[
        "BTab", "BTab", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "x;y",
    ]);
    tmux.wait_for("does not match its pattern");
    tmux.keys(&["BSpace", "BSpace", "BSpace", "formed"]);
    tmux.keys(&["C-s"]);
    tmux.wait_for("is waiting for approval at level 1");
    let requests = d.ok(&["--as", "alice", "requests", "--mine", "--json"]);
    assert!(requests.contains("from the form"), "{requests}");
    assert!(requests.contains("formed"), "{requests}");
}

#[test]
fn an_administrator_creates_a_device_and_a_template_whose_error_is_shown_at_its_line() {
    let (d, _sshd) = setup();
    let tmux = tui_as(&d, "root");
    tmux.wait_for("1 Dashboard");
    tmux.keys(&["7", "Right", "Right", "Right"]);
    tmux.wait_for("box-1");
    tmux.keys(&["n"]);
    tmux.wait_for("New device");
    tmux.keys(&["box-2", "Tab", "127.0.0.2", "C-s"]);
    tmux.wait_for("created device box-2");
    tmux.keys(&["Right", "Right"]);
    tmux.wait_for("tick");
    tmux.keys(&["n"]);
    tmux.wait_for("New template");
    tmux.keys(&["broken", "Tab", "Tab", "Tab", "Tab"]);
    tmux.keys(&["echo fine", "Enter", "echo [#NOPE#]"]);
    tmux.wait_for("line 2, column 6: unknown mask [#NOPE#]");
    tmux.keys(&["C-s"]);
    tmux.wait_for("line 2, column 6: unknown mask [#NOPE#]");
    let templates = d.ok(&["list", "templates"]);
    assert!(!templates.contains("broken"), "{templates}");
    let devices = d.ok(&["list", "devices"]);
    assert!(devices.contains("box-2"), "{devices}");
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.contains("\"device.create\"") && audit.contains("device box-2"),
        "{audit}"
    );
}

/// An approver marks three waiting requests with space, approves them
/// together with one comment and one TOTP code, and all three run.
#[test]
fn an_approver_approves_three_requests_in_one_batch_with_a_totp_code() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let file = d.write(
        "lab.toml",
        &format!("{}requires_mfa = true\n", records(&sshd)),
    );
    d.ok(&["import", file.to_str().unwrap()]);
    let uri = d.ok(&["--as", "bob", "user", "totp-enroll", "bob"]);
    let totp = totp_rs::TOTP::from_url_unchecked(uri.lines().next().unwrap().trim()).unwrap();
    for i in 1..=3 {
        let filed = d.ok(&[
            "--as",
            "alice",
            "request",
            "tick",
            "--justification",
            &format!("batch-{i}"),
            "--var",
            &format!("WHAT=b{i}"),
        ]);
        assert!(filed.contains("pending at level 1"), "{filed}");
    }
    let tmux = tui_as(&d, "bob");
    tmux.wait_for("1 Dashboard");
    tmux.keys(&["3"]);
    tmux.wait_for("batch-3");
    tmux.keys(&["Space", "Space", "Space"]);
    tmux.wait_for("3 marked");
    tmux.keys(&["a"]);
    tmux.wait_for("comment:");
    tmux.keys(&["all three", "Enter"]);
    tmux.wait_for("TOTP code for requests");
    tmux.keys(&[&totp.generate_current().unwrap(), "Enter"]);
    tmux.wait_for("approved");
    let requests: Vec<serde_json::Value> = d
        .ok(&["requests", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r["state"], "approved", "{r}");
        assert!(r.to_string().contains("all three"), "{r}");
    }
    // All three run, each with its own values.
    tmux.keys(&["5"]);
    let start = std::time::Instant::now();
    loop {
        let screen = tmux.screen();
        let rows = screen
            .lines()
            .filter(|l| l.contains(" tick ") && l.contains(" succeeded "))
            .count();
        if rows == 3 {
            break;
        }
        assert!(start.elapsed().as_secs() < 30, "{screen}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let history = d.ok(&["history", "--json"]);
    let mut said = String::new();
    for line in history.lines() {
        let op: serde_json::Value = serde_json::from_str(line).unwrap();
        said.push_str(&d.ok(&["logs", &op["id"].to_string()]));
    }
    for i in 1..=3 {
        assert!(said.contains(&format!("tick-6-b{i}")), "{said}");
    }
}
