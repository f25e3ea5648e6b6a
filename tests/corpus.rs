//! Hostile text in every field an approver, an auditor or an operator sees
//! (a request's justification and governance id, variable values, approvers'
//! comments, remote output on both streams, the error of a failed run), and
//! then every CLI verb that shows them and every TUI screen, driven through
//! the real server: nothing that could drive a terminal comes out (no ESC,
//! no C1 control, no bidi override), only the colours Gatehouse draws itself.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::request_id;

use common::DataDir;

/// OSC 52 (set the clipboard), OSC 8 (a link), CSI 2J (clear), CSI 6n
/// (report the cursor), C1 CSI and DCS, and a right-to-left override.
const HOSTILE: &str = "A\u{1b}]52;c;aGFja2Vk\u{7}B\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\C\u{1b}[2JD\u{1b}[6nE\u{9b}2JF\u{90}qG\u{202e}gnp.exe";

fn records() -> String {
    r#"
[[environment]]
name = "lab"
[[system]]
name = "tools"
[[device]]
name = "jump"
address = "127.0.0.1"
environment = "lab"
system = "tools"
[[reason]]
name = "check"
type = "incident"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "shout"
executor = "local"
content = '''
printf '%s\n' [#NOTE#]
printf 'err %s\n' [#NOTE#] >&2
printf '\033[1;31mred\033[0m plain\n'
exit 3
'''
variable = [{ name = "NOTE", pattern = "(?s).*" }]
[[task]]
name = "shout"
template = "shout"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
[[role]]
name = "shouter"
resources = [{ kind = "task", name = "shout", levels = ["read", "run"] }]
[[policy]]
name = "lab"
users = ["alice"]
environments = ["lab"]
requires_approval = true
requires_justification = true
requires_governance_id = true
approvers = [{ user = "bob", level = 1 }]
[[role]]
name = "local-runner"
# The fixtures' tasks run on this host: that is its own permission.
grants = [{ action = "run-local" }]
[[user]]
login = "alice"
roles = ["User", "local-runner", "shouter"]
[[user]]
login = "bob"
roles = ["User", "local-runner", "Auditor"]
"#
    .to_string()
}

/// What would drive a terminal: ESC, C1 controls, bidi formatting.
fn drives_a_terminal(text: &str) -> Option<char> {
    text.chars().find(|c| {
        *c == '\u{1b}'
            || ('\u{80}'..='\u{9f}').contains(c)
            || matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

fn as_user(d: &DataDir, user: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--as", user];
    all.extend_from_slice(args);
    d.run(&all)
}

/// Files two requests with hostile fields; bob approves one (it runs and
/// fails with hostile output) and rejects the other, both with hostile comments.
fn hostile_store() -> DataDir {
    let d = DataDir::new();
    let file = d.write("r.toml", &records());
    d.ok(&["import", file.to_str().unwrap()]);
    let var = format!("NOTE={HOSTILE}");
    let file_request = |justification: &str| {
        let out = as_user(
            &d,
            "alice",
            &[
                "request",
                "shout",
                "--reason",
                "check",
                "--justification",
                justification,
                "--governance-id",
                HOSTILE,
                "--var",
                &var,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        request_id(&String::from_utf8_lossy(&out.stdout))
    };
    let approved = file_request(HOSTILE);
    let rejected = file_request(&format!("second {HOSTILE}"));
    assert!(
        as_user(&d, "bob", &["reject", &rejected, "--comment", HOSTILE])
            .status
            .success()
    );
    // The last request stays pending, for the approver's queue.
    file_request(&format!("pending {HOSTILE}"));
    let out = as_user(&d, "bob", &["approve", &approved, "--comment", HOSTILE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Wait for the run to end.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let history = d.ok(&["history", "--json"]);
        if history.contains("\"state\":\"failed\"") {
            break;
        }
        assert!(std::time::Instant::now() < until, "{history}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    d
}

#[test]
fn no_cli_output_carries_a_terminal_control_from_any_field() {
    let d = hostile_store();
    let op = d
        .ok(&["history", "--json"])
        .lines()
        .next()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .unwrap();
    let mut checked = 0;
    for (user, args) in [
        ("bob", vec!["queue"]),
        ("bob", vec!["queue", "--json"]),
        ("bob", vec!["requests"]),
        ("bob", vec!["requests", "--json"]),
        ("root", vec!["history"]),
        ("root", vec!["history", "--json"]),
        ("root", vec!["logs", op.as_str()]),
        ("root", vec!["audit", "export"]),
        ("root", vec!["audit", "verify"]),
        ("alice", vec!["requests", "--mine"]),
        ("root", vec!["list", "users"]),
    ] {
        let out = as_user(&d, user, &args);
        for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            if let Some(c) = drives_a_terminal(&text) {
                panic!("{user} {args:?} {what} holds U+{:04X}:\n{text}", c as u32);
            }
        }
        checked += out.stdout.len();
    }
    // Positive control: the hostile fields are there, made visible.
    let logs = d.ok(&["logs", &op]);
    assert!(logs.contains("A\u{fffd}]52;c;aGFja2Vk"), "{logs}");
    let export = d.ok(&["audit", "export"]);
    assert!(export.contains(r"\u001b]52;c;aGFja2Vk"), "{export}");
    assert!(export.contains(r"\u202egnp.exe"), "{export}");
    assert!(checked > 1000);
}

#[test]
fn no_tui_screen_carries_a_terminal_control_from_any_field() {
    let d = hostile_store();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let socket = gatehouse::paths::socket_in(d.path());
    for login in ["bob", "root"] {
        let screens = runtime.block_on(common::drive::every_screen(&socket, login));
        for (n, shown) in screens.iter().enumerate() {
            if let Some(c) = drives_a_terminal(shown) {
                panic!("{login}, screen {n} holds U+{:04X}:\n{shown}", c as u32);
            }
        }
        // Positive control: the hostile text reached the screens, defused.
        assert!(
            screens.concat().contains("aGFja2Vk"),
            "{login} never saw the hostile text"
        );
    }
}
