//! Privileged sessions through the real binary in tmux, on a real sshd
//! account: the shell works, the password never reaches the screen, the
//! recording or the audit; every typed command line is audited; the
//! terminal is restored however the session ends; a policy must cover it.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::eventually;
use common::sshd::Sshd;
use common::tmux::Tmux;
use common::DataDir;
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = "Sess-pass-7301k";

fn records(sshd: &Sshd) -> String {
    format!(
        r#"[[environment]]
name = "lab"
[[system]]
name = "box"
[[device]]
name = "box-1"
address = "{address}"
port = {port}
environment = "lab"
system = "box"
host_keys = ["{host_key}"]
[[credential]]
name = "sess"
username = "gh-sess"
password = "{PASSWORD}"
device = "box-1"
[[role]]
name = "sessioner"
grants = [{{ action = "open-sessions", environments = ["lab"] }}]
[[user]]
login = "alice"
roles = ["User", "sessioner"]
[[user]]
login = "bob"
roles = ["User", "sessioner"]
[[user]]
login = "carol"
roles = ["User"]
[[policy]]
name = "lab-sessions"
covers = ["sessions"]
users = ["alice", "carol"]
environments = ["lab"]
requires_justification = true
"#,
        address = sshd.address,
        port = sshd.port,
        host_key = sshd.host_key_line()
    )
}

fn setup() -> (DataDir, Sshd) {
    common::sshd::os_account("gh-sess", std::path::Path::new("/bin/bash"), PASSWORD);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let file = d.write("lab.toml", &records(&sshd));
    d.ok(&["import", file.to_str().unwrap()]);
    (d, sshd)
}

/// `gatehouse ARGS` on this data directory in tmux; after it ends, the
/// terminal's modes are written to `stty.txt` and CLIENT-DONE is printed.
fn client_in_tmux(d: &DataDir, args: &str) -> Tmux {
    Tmux::start(&format!(
        "{bin} --data-dir {dir} {args}; stty -a > {dir}/stty.txt; echo CLIENT-DONE; sleep 30",
        bin = common::bin(),
        dir = d.path().display()
    ))
}

/// `gatehouse connect` as alice in tmux (see [`client_in_tmux`]).
fn connect_in_tmux(d: &DataDir) -> Tmux {
    client_in_tmux(d, "--as alice connect box-1 --justification 'INC-9 disk'")
}

fn sessions(d: &DataDir) -> Vec<Value> {
    d.ok(&["sessions", "--all", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The terminal is back in cooked mode with echo, as before the session.
fn assert_terminal_restored(d: &DataDir) {
    let path = d.path().join("stty.txt");
    eventually("stty ran", Duration::from_secs(10), || path.exists());
    let modes = std::fs::read_to_string(&path).unwrap();
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo") && !words.contains(&"-icanon"),
        "the terminal was left raw:\n{modes}"
    );
}

#[test]
fn an_operator_works_in_a_recorded_session_and_never_sees_the_password() {
    let (d, _sshd) = setup();
    let tmux = connect_in_tmux(&d);
    tmux.wait_for("gh-sess@");
    // While it runs, the terminal is raw (the positive control for the
    // restore check below) and the session is listed as open.
    let open = sessions(&d);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["state"], "open");
    assert_eq!(open[0]["user"], "alice");

    tmux.keys(&["echo \"hello-$((6*7))\"", "Enter"]);
    tmux.wait_for("hello-42");
    // The password printed by the device is masked on the user's screen.
    tmux.keys(&[&format!("echo {PASSWORD}"), "Enter"]);
    let screen = tmux.wait_for("[#PASSWORD#]");
    assert!(!screen.contains(PASSWORD), "{screen}");
    tmux.keys(&["exit", "Enter"]);
    let screen = tmux.wait_for("CLIENT-DONE");
    assert!(
        screen.contains("ended: the shell exited with status 0"),
        "{screen}"
    );
    assert_terminal_restored(&d);

    let all = sessions(&d);
    let s = &all[0];
    assert_eq!(s["state"], "exited", "{s}");
    assert_eq!(s["commands"], 3, "{s}");
    assert_eq!(s["policy"], "lab-sessions");
    let id = s["id"].as_u64().unwrap().to_string();

    let cast = d.ok(&["session", "export", &id]);
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(cast.contains("hello-42"), "{cast}");
    assert!(cast.contains("[#PASSWORD#]"));
    assert!(!cast.contains(PASSWORD), "the password is in the recording");

    let audit = d.ok(&["audit", "export"]);
    for action in ["session.start", "session.end", "session.recording.read"] {
        assert!(audit.contains(action), "no {action}:\n{audit}");
    }
    let commands: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\"session.command\""))
        .collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(
        commands[0].contains(r#"echo \"hello-$((6*7))\""#),
        "{}",
        commands[0]
    );
    assert!(commands[1].contains("echo [#PASSWORD#]"), "{}", commands[1]);
    assert!(!audit.contains(PASSWORD), "the password is in the audit");
    // The output is searchable: the session that printed it, and no other.
    let found = d.ok(&["sessions", "--text", "hello-42", "--json"]);
    assert_eq!(found.lines().count(), 1, "{found}");
    assert!(d
        .ok(&["sessions", "--text", "never-printed", "--json"])
        .is_empty());
    assert!(
        d.ok(&["sessions", "--text", PASSWORD, "--json"]).is_empty(),
        "the search sees the password behind the mask"
    );

    // Someone else without view-executions or monitor-sessions sees
    // neither the session nor its recording (alice, its user, does).
    assert_eq!(
        d.ok_as("alice", &["sessions", "--all", "--json"])
            .lines()
            .count(),
        1
    );
    assert!(d.ok_as("bob", &["sessions", "--all", "--json"]).is_empty());
    let missing = d.fails(&["session", "export", "999999"]);
    assert!(missing.contains("there is no session 999999"), "{missing}");
    let refused = d.fails_as("bob", &["session", "export", &id]);
    assert!(refused.contains("view-executions"), "{refused}");

    // What was typed is its own permission: alice started the session and
    // may see its output, not its input; a Superuser sees both.
    let refused = d.fails_as("alice", &["session", "export", &id, "--input"]);
    assert!(refused.contains("view-session-input"), "{refused}");
    assert!(d
        .ok_as("alice", &["session", "export", &id])
        .contains("hello-42"));
    let typed = d.ok(&["session", "export", &id, "--input"]);
    assert!(typed.contains(r#"\"hello-$((6*7))"#), "{typed}");

    // A backup holds the recordings: restored, the session replays the same.
    let backup = d.path().join("sessions.backup");
    d.ok(&["backup", backup.to_str().unwrap()]);
    let restored = DataDir::new();
    restored.ok(&["restore", backup.to_str().unwrap()]);
    std::fs::copy(
        d.path().join("store.key"),
        restored.path().join("store.key"),
    )
    .unwrap();
    assert_eq!(restored.ok(&["session", "export", &id]), cast);
    assert_eq!(restored.ok(&["session", "export", &id, "--input"]), typed);
}

/// A session needs open-sessions, a policy that covers sessions and lists
/// the user, and the fields the policy requires; each refusal is audited.
#[test]
fn a_session_opens_only_under_a_policy_that_covers_it() {
    let (d, _sshd) = setup();
    let connect = |user: &str, extra: &[&str]| {
        let mut args = vec!["--as", user, "connect", "box-1"];
        args.extend_from_slice(extra);
        d.fails(&args)
    };
    let err = connect("carol", &["--justification", "x"]);
    assert!(err.contains("open-sessions"), "{err}");
    let err = connect("bob", &["--justification", "x"]);
    assert!(err.contains("no enabled access policy lets 'bob'"), "{err}");
    let err = connect("alice", &[]);
    assert!(err.contains("requires a justification"), "{err}");
    let err = connect("alice", &["--justification", "x", "--credential", "nope"]);
    assert!(err.contains("no credential named 'nope'"), "{err}");
    // A credential of no device is used only where a policy names it.
    let floating = d.write(
        "floating.toml",
        &format!("[[credential]]\nname = \"floating\"\nusername = \"gh-sess\"\npassword = \"{PASSWORD}\"\n"),
    );
    d.ok(&["import", floating.to_str().unwrap()]);
    let err = connect(
        "alice",
        &["--justification", "x", "--credential", "floating"],
    );
    assert!(
        err.contains("belongs to no device: policy lab-sessions must name it"),
        "{err}"
    );
    // The reference's criteria: the credential's username, the device's
    // product and tags.
    let narrowed = d.write(
        "narrowed.toml",
        "[[policy]]\nname = \"lab-sessions\"\ncovers = [\"sessions\"]\nusers = [\"alice\", \"carol\"]\n\
         environments = [\"lab\"]\nrequires_justification = true\nusernames = [\"svc-*\"]\n",
    );
    d.ok(&["import", narrowed.to_str().unwrap()]);
    let err = connect("alice", &["--justification", "x"]);
    assert!(err.contains("does not cover username 'gh-sess'"), "{err}");
    let audit = d.ok(&["audit", "export"]);
    assert_eq!(audit.matches("\"session.refused\"").count(), 6, "{audit}");
    assert!(sessions(&d).is_empty());
}

/// A client killed mid-session: the session ends as disconnected on the
/// server, and a client stopped with SIGTERM restores its terminal first.
#[test]
fn a_client_that_goes_away_ends_its_session_and_restores_the_terminal() {
    let (d, _sshd) = setup();
    let tmux = connect_in_tmux(&d);
    tmux.wait_for("gh-sess@");
    let pids = std::process::Command::new("pgrep")
        // Anchored at the binary: not the shell that tmux runs it in.
        .args([
            "-f",
            &format!(
                "^{} --data-dir {} --as alice connect",
                common::bin(),
                d.path().display()
            ),
        ])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&pids.stdout).into_owned();
    assert!(!pids.trim().is_empty(), "no client process");
    for pid in pids.split_whitespace() {
        std::process::Command::new("kill")
            .args(["-TERM", pid])
            .status()
            .unwrap();
    }
    tmux.wait_for("CLIENT-DONE");
    assert_terminal_restored(&d);
    eventually(
        "the session ends as disconnected",
        Duration::from_secs(15),
        || {
            sessions(&d)
                .first()
                .is_some_and(|s| s["state"] == "disconnected")
        },
    );
}

/// Records with a second policy: sessions for dave need two approval
/// levels and a second factor to start; erin and frank monitor sessions.
fn guarded(sshd: &Sshd) -> String {
    format!(
        r#"{}
[[role]]
name = "monitor"
grants = [{{ action = "monitor-sessions", environments = ["lab"] }}]
[[user]]
login = "dave"
roles = ["User", "sessioner"]
[[user]]
login = "erin"
roles = ["User", "monitor"]
[[policy]]
name = "guarded-sessions"
covers = ["sessions"]
users = ["dave"]
environments = ["lab"]
requires_approval = true
requires_mfa = true
approvers = [{{ user = "bob", level = 1 }}, {{ user = "erin", level = 2 }}]
deny_commands = ["rm -rf *"]
"#,
        records(sshd)
    )
}

fn setup_guarded() -> (DataDir, Sshd) {
    common::sshd::os_account("gh-sess", std::path::Path::new("/bin/bash"), PASSWORD);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let file = d.write("lab.toml", &guarded(&sshd));
    d.ok(&["import", file.to_str().unwrap()]);
    (d, sshd)
}

fn current_code(enrolled: &str) -> String {
    let uri = enrolled.lines().next().unwrap_or_default();
    totp_rs::TOTP::from_url_unchecked(uri.trim())
        .unwrap()
        .generate_current()
        .unwrap()
}

/// Two approval levels and a second factor to start: the first connect
/// files a request and opens nothing; once both levels approve, the same
/// connect with a current code opens it, once; its window ends it, with
/// a warning first; the next connect asks again.
#[test]
fn a_session_under_two_level_approval_with_mfa_opens_once_and_ends_with_its_window() {
    let (d, _sshd) = setup_guarded();
    let dave_uri = d.ok_as("dave", &["user", "totp-enroll", "dave"]);
    let out = d.run(&["--as", "dave", "connect", "box-1", "--duration", "25s"]);
    assert_eq!(out.status.code(), Some(3), "{:?}", out);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("pending at level 1"), "{said}");
    assert!(sessions(&d).is_empty(), "a session opened before approval");
    let queue: Value =
        serde_json::from_str(d.ok_as("bob", &["queue", "--json"]).lines().next().unwrap()).unwrap();
    assert_eq!(queue["session"]["device"], "box-1", "{queue}");
    let id = queue["id"].as_u64().unwrap().to_string();
    let bob_uri = d.ok_as("bob", &["user", "totp-enroll", "bob"]);
    d.ok_as("bob", &["approve", &id, "--totp", &current_code(&bob_uri)]);
    // Level 1 is not enough.
    let out = d.run(&["--as", "dave", "connect", "box-1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pending at level 2"));
    // The approvers give codes too, under MFA.
    let erin_uri = d.ok_as("erin", &["user", "totp-enroll", "erin"]);
    d.ok_as(
        "erin",
        &["approve", &id, "--totp", &current_code(&erin_uri)],
    );
    // Without a code it does not open.
    let err = d.fails_as("dave", &["connect", "box-1"]);
    assert!(err.contains("TOTP") || err.contains("code"), "{err}");

    let tmux = client_in_tmux(
        &d,
        &format!("--as dave connect box-1 --totp {}", current_code(&dave_uri)),
    );
    tmux.wait_for("gh-sess@");
    let s = &sessions(&d)[0];
    assert_eq!(s["request"], id.parse::<u64>().unwrap(), "{s}");
    tmux.wait_for("[gatehouse: this session ends at");
    let screen = tmux.wait_for("CLIENT-DONE");
    assert!(
        screen.contains("[gatehouse: the session's window ended]"),
        "{screen}"
    );
    assert!(screen.contains("ended: its window ended"), "{screen}");
    assert_terminal_restored(&d);
    assert_eq!(sessions(&d)[0]["state"], "window-ended");
    // Used once: the next connect files a new request.
    let out = d.run(&["--as", "dave", "connect", "box-1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&format!("request {id} ")));
}

/// A monitor watches a session live, read-only, and ends it with a reason
/// its user sees; someone without monitor-sessions may do neither; both
/// are audited.
#[test]
fn a_monitor_watches_a_session_live_and_ends_it() {
    let (d, _sshd) = setup_guarded();
    let user = connect_in_tmux(&d);
    user.wait_for("gh-sess@");
    let id = sessions(&d)[0]["id"].as_u64().unwrap().to_string();
    assert!(d
        .fails_as("bob", &["session", "watch", &id])
        .contains("monitor-sessions"));
    assert!(d
        .fails_as("bob", &["session", "end", &id, "--reason", "x"])
        .contains("monitor-sessions"));
    user.keys(&["echo before-watch", "Enter"]);
    user.wait_for("before-watch\r\n".trim());
    let watcher = Tmux::start(&format!(
        "{} --data-dir {} --as erin session watch {id}; echo WATCH-DONE; sleep 30",
        common::bin(),
        d.path().display()
    ));
    // The screen so far, then what happens.
    watcher.wait_for("before-watch");
    user.keys(&["echo \"watched-$((2+3))\"", "Enter"]);
    watcher.wait_for("watched-5");
    // Typing in the watcher reaches nobody.
    watcher.keys(&["echo from-watcher", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!user.screen().contains("from-watcher"));

    d.ok_as("erin", &["session", "end", &id, "--reason", "policy check"]);
    let screen = user.wait_for("CLIENT-DONE");
    assert!(
        screen.contains("[gatehouse: session ended by erin: policy check]"),
        "{screen}"
    );
    watcher.wait_for("WATCH-DONE");
    assert_terminal_restored(&d);
    let s = &sessions(&d)[0];
    assert_eq!(s["state"], "terminated", "{s}");
    let audit = d.ok(&["audit", "export"]);
    assert!(audit.contains("\"session.watch\""), "{audit}");
    assert!(audit.contains("ended by erin: policy check"), "{audit}");
}

/// A declared change: command lines outside its plan are deviations
/// (live and in the session's summary); a line matching the policy's deny
/// pattern never reaches the device (the file it would remove stays).
#[test]
fn commands_outside_the_declared_plan_are_deviations_and_denied_lines_are_not_sent() {
    let (d, _sshd) = setup_guarded();
    let victim = format!("/tmp/gh-sess-victim-{}", std::process::id());
    let _ = std::fs::remove_file(&victim);
    let policy = "[[policy]]\nname = \"lab-sessions\"\ncovers = [\"sessions\"]\nusers = [\"alice\"]\nenvironments = [\"lab\"]\nrequires_change = true\ndeny_commands = [\"rm -rf *\"]\n";
    let file = d.write("p.toml", policy);
    d.ok(&["import", file.to_str().unwrap()]);
    let err = d.fails_as("alice", &["connect", "box-1"]);
    assert!(err.contains("requires the change it is for"), "{err}");
    let tmux = client_in_tmux(
        &d,
        "--as alice connect box-1 --change CHG-7 --plan uptime --plan 'df *' --plan 'touch /tmp/*'",
    );
    tmux.wait_for("gh-sess@");
    tmux.keys(&["uptime", "Enter"]);
    tmux.keys(&["df -h /", "Enter"]);
    tmux.keys(&[&format!("touch {victim}"), "Enter"]);
    tmux.wait_for("Filesystem");
    tmux.keys(&[&format!("rm -rf {victim}"), "Enter"]);
    tmux.wait_for("which policy lab-sessions denies");
    tmux.keys(&["whoami", "Enter"]);
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_for("CLIENT-DONE");
    assert!(
        std::path::Path::new(&victim).exists(),
        "the denied line reached the device"
    );
    let _ = std::fs::remove_file(&victim);
    let s = &sessions(&d)[0];
    let deviations: Vec<&str> = s["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(deviations, vec!["whoami", "exit"], "{s}");
    assert_eq!(s["denied"], 1);
    let audit = d.ok(&["audit", "export"]);
    assert_eq!(audit.matches("\"session.denied\"").count(), 1, "{audit}");
    // Two live, one summary at the end.
    assert_eq!(audit.matches("\"change.deviation\"").count(), 3, "{audit}");
    assert!(audit.contains("change CHG-7: 2 command line(s) outside its plan: whoami | exit"));
    // On the Dashboard of whoever may see the session.
    let socket = gatehouse::paths::socket_in(d.path());
    let screens = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::drive::every_screen(&socket, "root"))
        .join("\n");
    assert!(
        screens.contains("1 with deviations today") && screens.contains("outside change CHG-7"),
        "{screens}"
    );
}

/// Records where the session's credential has grant and revoke templates:
/// the grant leaves a flag file on the device (the same machine here), the
/// revoke removes it.
fn elevated(sshd: &Sshd, flag: &str) -> String {
    records(sshd).replace(
        "device = \"box-1\"\n[[role]]",
        &format!(
            "device = \"box-1\"\njit_grant_template = \"grant-flag\"\njit_revoke_template = \"revoke-flag\"\n\
             [[template]]\nname = \"grant-flag\"\nexecutor = \"ssh-script\"\nexecution_type = \"jit-grant\"\ncontent = \"touch {flag}\"\n\
             [[template]]\nname = \"revoke-flag\"\nexecutor = \"ssh-script\"\nexecution_type = \"jit-revoke\"\ncontent = \"rm -f {flag}\"\n\
             [[role]]"
        ),
    )
}

/// The credential's grant runs before the session opens and its revoke
/// when the session ends: at exit, when the client is killed, when the
/// server itself was killed with the session open (revoked at its start),
/// and when its window ends.
#[test]
fn a_jit_grant_runs_before_the_session_and_is_revoked_however_it_ends() {
    common::sshd::os_account("gh-sess", std::path::Path::new("/bin/bash"), PASSWORD);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let flag = format!("/tmp/gh-sess-jit-{}", std::process::id());
    let _ = std::fs::remove_file(&flag);
    let file = d.write("lab.toml", &elevated(&sshd, &flag));
    d.ok(&["import", file.to_str().unwrap()]);
    let granted = || std::path::Path::new(&flag).exists();

    // 1. The shell exits.
    let tmux = connect_in_tmux(&d);
    tmux.wait_for("gh-sess@");
    assert!(granted(), "the session opened before its grant");
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_for("CLIENT-DONE");
    eventually("revoked after exit", Duration::from_secs(20), || !granted());
    drop(tmux);

    // 2. The client is killed.
    let tmux = connect_in_tmux(&d);
    tmux.wait_for("gh-sess@");
    assert!(granted());
    let client = format!(
        "^{} --data-dir {} --as alice connect",
        common::bin(),
        d.path().display()
    );
    std::process::Command::new("pkill")
        .args(["-KILL", "-f", &client])
        .status()
        .unwrap();
    eventually(
        "revoked after the client died",
        Duration::from_secs(20),
        || !granted(),
    );
    drop(tmux);

    // 3. The server is killed with the session open: revoked at its start.
    let tmux = connect_in_tmux(&d);
    tmux.wait_for("gh-sess@");
    assert!(granted());
    let pid = common::server_pid(d.path()).expect("the server's pid");
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    tmux.wait_for("CLIENT-DONE");
    // Any command starts it again.
    let all = sessions(&d);
    assert_eq!(all[0]["state"], "interrupted", "{all:?}");
    eventually("revoked at the next start", Duration::from_secs(20), || {
        !granted()
    });
    drop(tmux);

    // 4. Its window ends.
    let tmux = client_in_tmux(
        &d,
        "--as alice connect box-1 --justification x --duration 4s",
    );
    tmux.wait_for("gh-sess@");
    assert!(granted());
    let screen = tmux.wait_for("CLIENT-DONE");
    assert!(screen.contains("ended: its window ended"), "{screen}");
    eventually(
        "revoked when the window ended",
        Duration::from_secs(20),
        || !granted(),
    );
    eventually(
        "every grant settled as revoked",
        Duration::from_secs(20),
        || {
            let grants: Vec<Value> = d
                .ok(&["jit", "--all", "--json"])
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            grants.len() == 4 && grants.iter().all(|g| g["revoked"] == true)
        },
    );
    let audit = d.ok(&["audit", "export"]);
    assert_eq!(audit.matches("\"session.jit.grant\"").count(), 4, "{audit}");
}

/// `rotate_after_use`: the password a session logged in with is changed
/// when the session ends (here by root with `chpasswd`), and the next
/// session logs in with the new one.
#[test]
fn a_credential_set_to_rotate_after_use_is_changed_after_a_session() {
    common::sshd::os_account("gh-sess-rot", std::path::Path::new("/bin/bash"), PASSWORD);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let records = records(&sshd)
        .replace("username = \"gh-sess\"", "username = \"gh-sess-rot\"")
        .replace(
            "device = \"box-1\"\n[[role]]",
            &format!(
                "device = \"box-1\"\nrotate_after_use = true\nchange_template = \"chpasswd\"\nchange_with = \"root-key\"\n\
                 [[credential]]\nname = \"root-key\"\nusername = \"root\"\nprivate_key_file = \"{}\"\n\
                 [[template]]\nname = \"chpasswd\"\nexecutor = \"ssh-script\"\nexecution_type = \"password-change\"\n\
                 content = \"echo [#USERNAME#]:[#NEW_PASSWORD#] | chpasswd\"\n[[role]]",
                sshd.client_key().display()
            ),
        );
    let file = d.write("lab.toml", &records);
    d.ok(&["import", file.to_str().unwrap()]);
    let tmux = client_in_tmux(
        &d,
        "--as alice connect box-1 --credential sess --justification x",
    );
    tmux.wait_for("gh-sess-rot@");
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_for("CLIENT-DONE");
    let changes = || -> u64 {
        d.ok(&["credential", "status", "--json"])
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|s| s["name"] == "sess")
            .map(|s| s["changes"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    eventually("changed after the session", Duration::from_secs(30), || {
        changes() == 1
    });
    let audit = d.ok(&["audit", "export"]);
    assert!(audit.contains("after session"), "{audit}");
    assert!(!audit.contains(PASSWORD));
    // The next session logs in with the new password.
    let tmux = client_in_tmux(
        &d,
        "--as alice connect box-1 --credential sess --justification x",
    );
    tmux.wait_for("gh-sess-rot@");
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_for("CLIENT-DONE");
}

/// From the TUI: `C` on a device in Admin hands the terminal to a session
/// and takes it back when the shell exits; History's sessions view (`S`)
/// lists it, and Enter replays its recording in the terminal.
#[test]
fn the_tui_connects_to_a_device_and_replays_the_session() {
    let (d, _sshd) = setup();
    let tmux = Tmux::start(&format!(
        "{} --data-dir {}; sleep 30",
        common::bin(),
        d.path().display()
    ));
    tmux.wait_for("1 Dashboard");
    tmux.keys(&["7", "Right", "Right", "Right"]);
    tmux.wait_for("┌ devices");
    tmux.keys(&["C"]);
    tmux.wait_for("open a session on box-1; why (justification):");
    tmux.keys(&["from the TUI", "Enter"]);
    tmux.wait_for("gh-sess@");
    tmux.keys(&["echo \"tui-$((40+2))\"", "Enter"]);
    tmux.wait_for("tui-42");
    tmux.keys(&["exit", "Enter"]);
    let screen = tmux.wait_for("ended: the shell exited with status 0");
    assert!(
        screen.contains("1 Dashboard"),
        "the TUI did not come back:\n{screen}"
    );
    let id = sessions(&d)[0]["id"].as_u64().unwrap().to_string();

    tmux.keys(&["5", "S"]);
    tmux.wait_for("Sessions, newest first (1)");
    tmux.keys(&["Enter"]);
    let replay = tmux.wait_for("end of the recording");
    assert!(replay.contains("tui-42"), "{replay}");
    assert!(!replay.contains("1 Dashboard"), "{replay}");
    tmux.keys(&["q"]);
    tmux.wait_for(&format!("replayed session {id}"));
}

/// A JIT account: the credential's account exists only around its
/// sessions. Its grant (run as root, its `change_with`) creates the account
/// with the stored password; the session logs in as it; the revoke removes
/// it when the session ends.
#[test]
fn a_jit_account_is_created_before_the_session_and_removed_after() {
    let account = "gh-jitacct";
    let _ = std::process::Command::new("userdel")
        .args(["-r", "-f", account])
        .output();
    let exists = || {
        std::process::Command::new("id")
            .arg(account)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    assert!(!exists());
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let records = format!(
        "{}[[credential]]\nname = \"root-key\"\nusername = \"root\"\nprivate_key_file = \"{}\"\n\
         [[credential]]\nname = \"jit-acct\"\nusername = \"{account}\"\npassword = \"Jit-acct-5511q\"\n\
         change_with = \"root-key\"\njit_grant_template = \"make-account\"\njit_revoke_template = \"remove-account\"\n\
         [[template]]\nname = \"make-account\"\nexecutor = \"ssh-script\"\nexecution_type = \"jit-grant\"\n\
         content = \"useradd -m -s /bin/bash [#USERNAME#]\\necho [#USERNAME#]:[#PASSWORD#] | chpasswd\\n\"\n\
         [[template]]\nname = \"remove-account\"\nexecutor = \"ssh-script\"\nexecution_type = \"jit-revoke\"\n\
         content = \"pkill -KILL -u [#USERNAME#] || true\\nuserdel -r -f [#USERNAME#]\\n\"\n",
        records(&sshd),
        sshd.client_key().display()
    );
    let file = d.write("lab.toml", &records);
    d.ok(&["import", file.to_str().unwrap()]);
    let tmux = client_in_tmux(&d, "connect box-1 --credential jit-acct");
    tmux.wait_for(&format!("{account}@"));
    assert!(exists(), "the session opened without its account");
    tmux.keys(&["id -un", "Enter"]);
    tmux.keys(&["exit", "Enter"]);
    let screen = tmux.wait_for("CLIENT-DONE");
    assert!(screen.contains(&format!("\n{account}")), "{screen}");
    eventually("the account is removed", Duration::from_secs(30), || {
        !exists()
    });
    // The grant ran as root (only root can useradd); nothing shows the password.
    let history = d.ok(&["history", "--json"]);
    let audit = d.ok(&["audit", "export"]);
    assert!(!audit.contains("Jit-acct-5511q") && !history.contains("Jit-acct-5511q"));
}

/// Two jump hosts on one shared store (B given A's key) and a session
/// opened through A in tmux by alice; returns them with the session's id
/// as B lists it open.
fn session_through_a(
    sshd: &Sshd,
    url: &str,
    more: &str,
    justification: &str,
) -> (DataDir, DataDir, Tmux, String) {
    let a = DataDir::on_shared_store(url, more);
    let file = a.write("lab.toml", &records(sshd));
    a.ok(&["import", file.to_str().unwrap()]);
    let b = DataDir::on_shared_store(url, more);
    std::fs::copy(a.path().join("store.key"), b.path().join("store.key")).unwrap();
    let tmux = Tmux::start(&format!(
        "env GATEHOUSE_CONFIG={config} {bin} --data-dir {dir} --as alice connect box-1 --justification '{justification}'; echo CLIENT-DONE; sleep 30",
        config = a.env[0].1,
        bin = common::bin(),
        dir = a.path().display()
    ));
    tmux.wait_for("gh-sess@");
    let open: Vec<Value> = b
        .ok(&["sessions", "--all", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|s| s["state"] == "open")
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    let id = open[0]["id"].as_u64().unwrap().to_string();
    (a, b, tmux, id)
}

#[test]
fn a_session_recorded_on_one_jump_host_is_listed_and_exported_on_another() {
    common::sshd::os_account("gh-sess", std::path::Path::new("/bin/bash"), PASSWORD);
    let sshd = Sshd::start("");
    let pg = common::postgres::Postgres::start();
    let (_, url) = pg.database();
    let (a, b, tmux, open_id) = session_through_a(&sshd, &url, "", "INC-7 shared");
    tmux.keys(&["echo \"shared-$((6*7))\"", "Enter"]);
    tmux.wait_for("shared-42");
    // A monitor on jump host B watches it live: what was and what comes.
    let watcher = Tmux::start(&format!(
        "env GATEHOUSE_CONFIG={config} {bin} --data-dir {dir} session watch {open_id}; echo WATCH-DONE; sleep 30",
        config = b.env[0].1,
        bin = common::bin(),
        dir = b.path().display()
    ));
    watcher.wait_for("shared-42");
    tmux.keys(&["echo \"watched-$((2+3))\"", "Enter"]);
    watcher.wait_for("watched-5");
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_for("CLIENT-DONE");
    // The watch ends with the session.
    watcher.wait_for("WATCH-DONE");
    // Jump host B lists it and exports both tracks, as recorded on A.
    let listed: Vec<Value> = b
        .ok(&["sessions", "--all", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_u64().unwrap().to_string();
    let cast = b.ok(&["session", "export", &id]);
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{cast}");
    assert!(cast.contains("shared-42"), "{cast}");
    let typed = b.ok(&["session", "export", &id, "--input"]);
    assert!(typed.contains("echo"), "{typed}");
    // Neither data directory holds the recording as a file: the database does.
    assert!(!a
        .path()
        .join("sessions")
        .join(format!("{id}.cast"))
        .exists());
    // Positive control: A exports the same.
    assert_eq!(a.ok(&["session", "export", &id]), cast);
}

/// A monitor on jump host B ends a session open through jump host A: A's
/// server ends it at its next round, its user sees who ended it and why,
/// and B answers once it has ended.
#[test]
fn a_session_open_on_one_jump_host_is_ended_by_a_monitor_on_another() {
    common::sshd::os_account("gh-sess", std::path::Path::new("/bin/bash"), PASSWORD);
    let sshd = Sshd::start("");
    let pg = common::postgres::Postgres::start();
    let (_, url) = pg.database();
    // A short lease: each server looks every second.
    let (a, b, tmux, id) = session_through_a(&sshd, &url, "lease_secs = 4\n", "INC-8 shared");
    // B ends it; its answer waits for the end.
    let said = b.ok(&["session", "end", &id, "--reason", "INC-8 closed by the NOC"]);
    assert!(said.contains("ended"), "{said}");
    let screen = tmux.wait_for("CLIENT-DONE");
    assert!(
        screen.contains("session ended by root: INC-8 closed by the NOC"),
        "{screen}"
    );
    let ended: Vec<Value> = a
        .ok(&["sessions", "--all", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_ne!(ended[0]["state"], "open", "{ended:?}");
    let audit = a.ok(&["audit", "export"]);
    assert!(audit.contains("session.end-asked"), "{audit}");
    // Positive control: an ended session cannot be ended again.
    assert!(b
        .fails(&["session", "end", &id, "--reason", "again"])
        .contains("is not open"));
}
