//! People from the directory, with real OS groups and users made by
//! `groupadd`/`useradd`: a role held through an OS group, and lost when the
//! person leaves the group; policies and approver levels that name
//! `@groups`; members of an admitted group let in without an import.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::eventually;
use common::DataDir;
use std::process::Command;
use std::time::Duration;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    // 9: made by another test binary first.
    assert!(
        out.status.success() || out.status.code() == Some(9),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn group(name: &str) {
    run("groupadd", &["-f", name]);
}

/// An OS user in exactly these supplementary groups.
fn person(login: &str, groups: &[&str]) {
    let exists = Command::new("id")
        .arg(login)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        run("useradd", &["-M", "-s", "/usr/sbin/nologin", login]);
    }
    run("usermod", &["-G", &groups.join(","), login]);
}

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
username = "root"
[[template]]
name = "t"
executor = "local"
content = "echo dba work"
[[task]]
name = "dba-work"
template = "t"
environment = "lab"
system = "box"
devices = ["here"]
credential = "none"
[[role]]
name = "DBA"
os_groups = ["gh-pp-dba"]
grants = [{ action = "request-tasks", environments = ["lab"] }, { action = "run-local" }]
[[user]]
login = "gh-pp-dba1"
roles = ["User"]
[[user]]
login = "gh-pp-appr1"
roles = ["User"]
[[policy]]
name = "dba-tasks"
users = ["@gh-pp-dba"]
environments = ["lab"]
requires_approval = true
approvers = [{ user = "@gh-pp-apprs", level = 1 }]
"#;

fn whoami(d: &DataDir, login: &str) -> String {
    d.ok_as(login, &["whoami"])
}

/// A member of gh-pp-dba holds DBA through the group (said by whoami), may
/// request under the `@gh-pp-dba` policy; one member of `@gh-pp-apprs`
/// approves, and never the requester although they are in that group too;
/// removed from gh-pp-dba, they lose the role at their next command.
#[test]
fn a_group_gives_its_members_roles_policies_and_approver_levels() {
    for g in ["gh-pp-dba", "gh-pp-apprs"] {
        group(g);
    }
    person("gh-pp-dba1", &["gh-pp-dba", "gh-pp-apprs"]);
    person("gh-pp-appr1", &["gh-pp-apprs"]);
    let d = DataDir::new();
    let file = d.write("r.toml", RECORDS);
    d.ok(&["import", file.to_str().unwrap()]);

    let me = whoami(&d, "gh-pp-dba1");
    assert!(me.contains("role DBA (group gh-pp-dba)"), "{me}");
    assert!(me.contains("role User (own)"), "{me}");
    // The user check weighs the group's role too (DBA's run-local).
    let check = d.ok(&["user", "check", "gh-pp-dba1"]);
    assert!(check.contains("run-local"), "{check}");
    // The groups in use, with their members: CLI, and under Admin's users.
    let groups = d.ok(&["groups"]);
    assert!(
        groups.contains("gh-pp-dba: roles DBA; policies dba-tasks (users)")
            && groups.contains("gh-pp-apprs: policies dba-tasks (approvers level 1)")
            && groups.contains("members: gh-pp-dba1"),
        "{groups}"
    );
    // Who is in which group is for those who may list users.
    let refused = d.fails_as("gh-pp-appr1", &["groups"]);
    assert!(refused.contains("may not"), "{refused}");
    let socket = gatehouse::paths::socket_in(d.path());
    use crossterm::event::KeyCode;
    let keys = [KeyCode::Char('7')]
        .into_iter()
        .chain(std::iter::repeat_n(KeyCode::Right, 8))
        .collect::<Vec<_>>();
    let admin = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::drive::screen_after(&socket, "root", &keys));
    assert!(
        admin.contains("OS groups in use") && admin.contains("@gh-pp-dba: roles DBA"),
        "{admin}"
    );
    // The TUI's top line says which roles come from groups.
    let tui = common::tmux::Tmux::start(&format!(
        "{} --data-dir {} --as gh-pp-dba1; sleep 30",
        common::bin(),
        d.path().display()
    ));
    tui.wait_for("DBA via @gh-pp-dba");
    drop(tui);
    // Positive control: someone outside the group does not hold it.
    assert!(!whoami(&d, "gh-pp-appr1").contains("DBA"));

    let filed = d.ok_as("gh-pp-dba1", &["request", "dba-work"]);
    let id = common::runs::request_id(&filed);
    assert!(filed.contains("pending at level 1"), "{filed}");
    // In @gh-pp-apprs too, but nobody approves their own request.
    let own = d.fails_as("gh-pp-dba1", &["approve", &id]);
    assert!(own.contains("nobody approves their own request"), "{own}");
    // One member of the group decides the level.
    assert!(d.ok_as("gh-pp-appr1", &["queue"]).contains("dba-work"));
    d.ok_as("gh-pp-appr1", &["approve", &id, "--comment", "ok"]);
    let requests = d.ok_as("gh-pp-dba1", &["requests", "--mine", "--json"]);
    assert!(requests.contains("\"approved\""), "{requests}");

    // Out of the group: out of the role and the policy at the next command.
    person("gh-pp-dba1", &["gh-pp-apprs"]);
    eventually(
        "the role goes with the group",
        Duration::from_secs(15),
        || !whoami(&d, "gh-pp-dba1").contains("DBA"),
    );
    // DBA was their only source of run-local.
    let refused = d.fails_as("gh-pp-dba1", &["request", "dba-work"]);
    assert!(refused.contains("run-local"), "{refused}");
    assert!(!d.ok(&["user", "check", "gh-pp-dba1"]).contains("run-local"));
}

/// `[people] admit_groups`: a member of gh-pp-staff without a record is
/// let in, made a user once (audited) with the default role; someone
/// outside it is refused; a disabled admitted user stays out.
#[test]
fn members_of_an_admitted_group_need_no_import() {
    group("gh-pp-staff");
    person("gh-pp-new", &["gh-pp-staff"]);
    person("gh-pp-outsider", &[]);
    let d = DataDir::new();
    let config = d.write(
        "config.toml",
        "[people]\nadmit_groups = [\"gh-pp-staff\"]\n",
    );
    let config = config.to_str().unwrap();
    d.ok(&["--config", config, "whoami"]);

    let me = d.ok_as("gh-pp-new", &["whoami"]);
    assert!(me.contains("role User (own)"), "{me}");
    d.ok_as("gh-pp-new", &["whoami"]);
    let audit = d.ok(&["audit", "export"]);
    assert_eq!(audit.matches("\"user.admit\"").count(), 1, "{audit}");
    assert!(
        audit.contains("a member of OS group gh-pp-staff"),
        "{audit}"
    );
    assert!(d.ok(&["list", "users"]).contains("gh-pp-new"));

    let outsider = d.fails_as("gh-pp-outsider", &["whoami"]);
    assert!(outsider.contains("not a Gatehouse user"), "{outsider}");

    d.ok(&["disable", "users", "gh-pp-new"]);
    let disabled = d.fails_as("gh-pp-new", &["whoami"]);
    assert!(disabled.contains("disabled"), "{disabled}");
}
