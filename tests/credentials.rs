//! The credential lifecycle on real accounts behind a real sshd: a
//! password changed by `passwd` and by root's `chpasswd`, verified by
//! logging in before it is stored; a change that did nothing leaves the
//! credential out of sync until a reconcile; maximum age; parent and
//! children; reveal under its own permission.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::{eventually, history, logs, wait_final};
use common::sshd::Sshd;
use common::DataDir;
use serde_json::Value;
use std::time::Duration;

/// Makes an OS account with this password (bash as its shell).
fn account(login: &str, password: &str) {
    common::sshd::os_account(login, std::path::Path::new("/bin/bash"), password);
}

/// A user changing their own password: `passwd` asks the current one,
/// then the new one twice.
const PASSWD_SELF: &str = r#"[[template]]
name = "passwd-self"
executor = "ssh-expect"
execution_type = "password-change"
content = '''
expect "*$ " timeout 10
exec "passwd"
expect "*urrent password:" timeout 10
exec "[#OLD_PASSWORD#]"
expect "*ew password:" timeout 10
exec "[#NEW_PASSWORD#]"
expect "*ew password:" timeout 10
exec "[#NEW_PASSWORD#]"
expect "*updated successfully*$ " timeout 10
end
'''
"#;

/// Root setting another account's password. In a script a secret's mask
/// is one shell word already quoted: it goes outside quotes.
const CHPASSWD: &str = r#"[[template]]
name = "chpasswd"
executor = "ssh-script"
execution_type = "password-change"
content = '''
echo [#USERNAME#]:[#NEW_PASSWORD#] | chpasswd
echo "set the password of [#USERNAME#]"
'''
"#;

/// A change template that says it worked and changed nothing.
const PRETEND: &str = r#"[[template]]
name = "pretend"
executor = "ssh-script"
execution_type = "password-change"
content = "echo [#NEW_PASSWORD#] > /dev/null\necho 'password changed (not really)'\n"
"#;

/// One that fails.
const BROKEN: &str = r#"[[template]]
name = "broken"
executor = "ssh-script"
execution_type = "password-change"
content = "echo [#NEW_PASSWORD#] > /dev/null\necho 'cannot change it here' >&2\nexit 2\n"
"#;

/// A task that logs in with a credential and says who it is.
const WHOAMI: &str = r#"[[template]]
name = "whoami"
executor = "ssh-script"
content = "echo \"logged in as $(id -un)\"\n"
"#;

fn base(sshd: &Sshd) -> String {
    format!(
        "[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n\
         [[device]]\nname = \"box-1\"\naddress = \"{}\"\nport = {}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_keys = [\"{}\"]\n\
         [[credential]]\nname = \"root-key\"\nusername = \"root\"\nprivate_key_file = \"{}\"\ndevice = \"box-1\"\n\
         {PASSWD_SELF}{CHPASSWD}{PRETEND}{BROKEN}{WHOAMI}",
        sshd.address,
        sshd.port,
        sshd.host_key_line(),
        sshd.client_key().display()
    )
}

/// A password credential for `login` on box-1, with extra lines.
fn credential(name: &str, login: &str, password: &str, extra: &str) -> String {
    format!(
        "[[credential]]\nname = \"{name}\"\nusername = \"{login}\"\npassword = \"{password}\"\ndevice = \"box-1\"\n{extra}\n"
    )
}

/// A task that logs in with `credential` and prints who it is.
fn login_task(name: &str, credential: &str) -> String {
    format!(
        "[[task]]\nname = \"{name}\"\ntemplate = \"whoami\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"{credential}\"\ndevices = [\"box-1\"]\nretries = 0\n"
    )
}

fn import(d: &DataDir, records: &str) {
    let file = d.write("records.toml", records);
    d.ok(&["import", file.to_str().unwrap()]);
}

/// Runs a login task; its one operation.
fn run(d: &DataDir, task: &str) -> Value {
    let before = history(d).len();
    d.run(&["request", task]);
    wait_final(d, before + 1, Duration::from_secs(60))[0].clone()
}

fn status(d: &DataDir, name: &str) -> Value {
    d.ok(&["credential", "status", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no status for {name}"))
}

/// The TUI's Dashboard as root sees it, through the real server.
fn dashboard(d: &DataDir) -> String {
    let socket = gatehouse::paths::socket_in(d.path());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::drive::every_screen(&socket, "root"))
        .swap_remove(0)
}

fn reveal(d: &DataDir, name: &str) -> String {
    d.ok(&[
        "credential",
        "reveal",
        name,
        "--reason",
        "test",
        "--justification",
        "checking the stored password",
    ])
    .trim()
    .to_string()
}

/// `passwd` run by the account itself: the new password is verified and
/// stored; the old one no longer logs in, the stored one does; the new
/// password is in no output, log or audit event.
#[test]
fn a_user_changes_their_own_password_verified_before_it_is_stored() {
    let old = "Old-pass-4831x";
    account("gh-rot-self", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}{}",
            base(&sshd),
            credential(
                "self",
                "gh-rot-self",
                old,
                "change_template = \"passwd-self\""
            ),
            credential("self-old", "gh-rot-self", old, ""),
            login_task("as-self", "self"),
            login_task("as-old", "self-old")
        ),
    );
    // Positive control: the old password logs in before the change.
    assert_eq!(run(&d, "as-old")["state"], "succeeded");

    d.ok(&["credential", "change", "self", "--wait"]);
    let st = status(&d, "self");
    assert_eq!(st["state"], "ok", "{st}");
    assert_eq!(st["changes"], 1, "{st}");
    let new = reveal(&d, "self");
    assert_ne!(new, old);
    assert_eq!(new.chars().count(), 24, "the default policy's length");

    let op = run(&d, "as-self");
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(logs(&d, &op).contains("logged in as gh-rot-self"));
    let op = run(&d, "as-old");
    assert_eq!(
        op["state"], "failed",
        "the old password still logs in: {op}"
    );
    assert!(
        op["error"]
            .as_str()
            .unwrap()
            .contains("refused the password"),
        "{op}"
    );

    // The change's own output shows the masks, never the passwords.
    let change = history(&d)
        .into_iter()
        .find(|o| o["task"] == "password change of self")
        .unwrap();
    let out = logs(&d, &change);
    assert!(out.contains("verified: the new password logs in"), "{out}");
    let audit = d.ok(&["audit", "export"]);
    assert!(audit.contains("credential.changed"), "{audit}");
    for place in [&out, &audit, &d.ok(&["history", "--json"])] {
        assert!(!place.contains(&new), "the new password leaked");
        assert!(!place.contains(old), "the old password leaked");
    }
}

/// Root changes another account's password with `chpasswd` (`change_with`).
#[test]
fn root_sets_another_accounts_password_through_change_with() {
    let old = "Old-pass-7712y";
    account("gh-rot-root", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}",
            base(&sshd),
            credential(
                "svc",
                "gh-rot-root",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\npassword_policy = { length = 16, symbols = false }"
            ),
            login_task("as-svc", "svc")
        ),
    );
    d.ok(&["credential", "change", "svc", "--wait"]);
    assert_eq!(status(&d, "svc")["state"], "ok");
    let new = reveal(&d, "svc");
    assert_eq!(new.chars().count(), 16);
    assert!(new.chars().all(|c| c.is_ascii_alphanumeric()), "{new}");
    let op = run(&d, "as-svc");
    assert_eq!(op["state"], "succeeded", "{op}");
}

/// A change template that "succeeds" without changing anything: the new
/// password does not log in, so the credential is out of sync and keeps
/// its old password (still in use); a reconcile through root repairs it.
#[test]
fn a_change_that_changed_nothing_is_out_of_sync_until_reconciled() {
    let old = "Old-pass-2290z";
    account("gh-rot-fake", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}",
            base(&sshd),
            credential(
                "fake",
                "gh-rot-fake",
                old,
                "change_template = \"pretend\"\nreconcile_with = \"root-key\"\nreconcile_template = \"chpasswd\""
            ),
            credential("fake-old", "gh-rot-fake", old, ""),
            login_task("as-fake", "fake")
        ),
    );
    let out = d.run(&["credential", "change", "fake", "--wait"]);
    assert!(!out.status.success());
    let st = status(&d, "fake");
    assert_eq!(st["state"], "out-of-sync", "{st}");
    assert!(
        st["detail"].as_str().unwrap().contains("does not log in"),
        "{st}"
    );
    assert_eq!(reveal(&d, "fake"), old, "the old password is kept");
    assert_eq!(
        run(&d, "as-fake")["state"],
        "succeeded",
        "the old one is in use"
    );
    let audit = d.ok(&["audit", "export"]);
    assert!(audit.contains("credential.out-of-sync"), "{audit}");
    // The Dashboard says so, with the credential's name.
    let dashboard = dashboard(&d);
    assert!(dashboard.contains("1 out-of-sync"), "{dashboard}");
    assert!(dashboard.contains("fake out-of-sync"), "{dashboard}");

    d.ok(&["credential", "reconcile", "fake", "--wait"]);
    let st = status(&d, "fake");
    assert_eq!(st["state"], "ok", "{st}");
    let new = reveal(&d, "fake");
    assert_ne!(new, old);
    assert_eq!(run(&d, "as-fake")["state"], "succeeded");
}

/// `rotate_every` starts a change by itself when the password is that old.
#[test]
fn a_password_past_its_maximum_age_is_changed() {
    let old = "Old-pass-6614w";
    account("gh-rot-age", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}",
            base(&sshd),
            credential(
                "aging",
                "gh-rot-age",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nrotate_every = \"3s\""
            )
        ),
    );
    let st = status(&d, "aging");
    assert!(st["next_due"].is_string(), "{st}");
    eventually(
        "no change after the maximum age",
        Duration::from_secs(30),
        || status(&d, "aging")["changes"].as_u64().unwrap_or(0) >= 1,
    );
    let audit = d.ok(&["audit", "export"]);
    assert!(audit.contains("maximum age reached"), "{audit}");
    assert_ne!(reveal(&d, "aging"), old);
}

/// A parent's verified change starts its children's; a child that fails
/// changes neither the parent's result nor its sibling's.
#[test]
fn a_parents_change_starts_its_childrens_and_one_failing_child_stays_its_own() {
    account("gh-rot-parent", "Old-pass-1001a");
    account("gh-rot-child1", "Old-pass-1002b");
    account("gh-rot-child2", "Old-pass-1003c");
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let root = "change_template = \"chpasswd\"\nchange_with = \"root-key\"";
    import(
        &d,
        &format!(
            "{}{}{}{}",
            base(&sshd),
            credential(
                "parent",
                "gh-rot-parent",
                "Old-pass-1001a",
                &format!("{root}\nchildren = [\"child-ok\", \"child-broken\"]")
            ),
            credential("child-ok", "gh-rot-child1", "Old-pass-1002b", root),
            credential(
                "child-broken",
                "gh-rot-child2",
                "Old-pass-1003c",
                "change_template = \"broken\"\nchange_with = \"root-key\""
            ),
        ),
    );
    d.ok(&["credential", "change", "parent", "--wait"]);
    eventually(
        "the children's changes did not end",
        Duration::from_secs(30),
        || {
            status(&d, "child-ok")["state"] == "ok"
                && status(&d, "child-broken")["state"] == "change-failed"
        },
    );
    assert_eq!(status(&d, "parent")["state"], "ok");
    assert_eq!(status(&d, "parent")["changes"], 1);
    assert_eq!(status(&d, "child-ok")["changes"], 1);
    assert_eq!(reveal(&d, "child-broken"), "Old-pass-1003c");
    let ops = history(&d);
    let triggers: Vec<String> = ops
        .iter()
        .map(|o| o["trigger"].as_str().unwrap().to_string())
        .collect();
    assert!(
        triggers
            .iter()
            .filter(|t| t.contains("its parent credential parent changed"))
            .count()
            == 2,
        "{triggers:?}"
    );
}

/// Revealing needs view-credential-secrets, not manage-credentials; every
/// reveal is audited with its justification; `rotate_after_view` changes
/// the password after it was shown.
#[test]
fn reveal_needs_its_own_permission_is_audited_and_rotates_after_view() {
    let old = "Old-pass-5150v";
    account("gh-rot-view", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}[[role]]\nname = \"cred-admin\"\ngrants = [{{ action = \"manage-credentials\" }}]\n\
             [[role]]\nname = \"cred-viewer\"\ngrants = [{{ action = \"view-credential-secrets\", environments = [\"lab\"] }}]\n\
             [[user]]\nlogin = \"mallory\"\nroles = [\"User\", \"cred-admin\"]\n\
             [[user]]\nlogin = \"vera\"\nroles = [\"User\", \"cred-viewer\"]\n",
            base(&sshd),
            credential(
                "watched",
                "gh-rot-view",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nrotate_after_view = true"
            )
        ),
    );
    let args = [
        "credential",
        "reveal",
        "watched",
        "--reason",
        "incident",
        "--justification",
        "INC-42 restore",
    ];
    let refused = d.fails_as("mallory", &args);
    assert!(refused.contains("view-credential-secrets"), "{refused}");
    assert!(!refused.contains(old));
    let shown = d.ok_as("vera", &args);
    assert_eq!(shown.trim(), old);
    let audit = d.ok(&["audit", "export"]);
    let reveal_event = audit
        .lines()
        .find(|l| l.contains("credential.reveal"))
        .expect("the reveal is audited");
    assert!(
        reveal_event.contains("vera") && reveal_event.contains("INC-42 restore"),
        "{reveal_event}"
    );
    assert!(!audit.contains(old), "the password is in the audit");
    // Only the allowed reveal was audited as one.
    assert_eq!(audit.matches("credential.reveal").count(), 1);
    eventually("no change after the view", Duration::from_secs(30), || {
        status(&d, "watched")["changes"] == 1
    });
    let audit = d.ok(&["audit", "export"]);
    assert!(audit.contains("after a view by vera"), "{audit}");
    assert_ne!(reveal(&d, "watched"), old);
}

/// A credential named by a policy is revealed only under it: its access
/// reason and approval apply. The first reveal files a request and prints
/// nothing; an approver decides it from their queue; the same reveal then
/// prints the password, once; the next one asks again. Someone the policy
/// does not list is refused although they hold view-credential-secrets,
/// and every refusal is audited. `rotate_after_view` then changes it.
#[test]
fn a_reveal_under_a_policy_waits_for_approval_and_shows_the_password_once() {
    let old = "Old-pass-6061w";
    account("gh-rot-guard", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}[[role]]\nname = \"cred-viewer\"\ngrants = [{{ action = \"view-credential-secrets\", environments = [\"lab\"] }}]\n\
             [[user]]\nlogin = \"vera\"\nroles = [\"User\", \"cred-viewer\"]\n\
             [[user]]\nlogin = \"otto\"\nroles = [\"User\", \"cred-viewer\"]\n\
             [[user]]\nlogin = \"bob\"\nroles = [\"User\"]\n\
             [[reason]]\nname = \"incident\"\ntype = \"incident\"\n\
             [[policy]]\nname = \"guarded-reveals\"\nusers = [\"vera\"]\nenvironments = [\"lab\"]\ncovers = [\"reveals\"]\ncredentials = [\"guarded\"]\n\
             requires_reason = true\nrequires_justification = true\nrequires_approval = true\napprovers = [{{ user = \"bob\", level = 1 }}]\n",
            base(&sshd),
            credential(
                "guarded",
                "gh-rot-guard",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nrotate_after_view = true"
            )
        ),
    );
    let reveal_as = |user: &str, extra: &[&str]| {
        let mut args = vec![
            "--as",
            user,
            "credential",
            "reveal",
            "guarded",
            "--justification",
            "INC-77 restore",
        ];
        args.extend_from_slice(extra);
        d.run(&args)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // The policy's field is required: no access reason, no request.
    let out = reveal_as("vera", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("requires an access reason"),
        "{}",
        text(&out.stderr)
    );
    // Someone the policy does not list: refused, permission or not.
    let out = reveal_as("otto", &["--reason", "incident"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("none lists 'otto'"),
        "{}",
        text(&out.stderr)
    );

    // Filed, not shown: nothing on stdout, exit status 3.
    let out = reveal_as("vera", &["--reason", "incident"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("pending at level 1"),
        "{}",
        text(&out.stderr)
    );
    let queue = d.ok_as("bob", &["queue", "--json"]);
    let request: Value =
        serde_json::from_str(queue.lines().next().expect("bob's queue is empty")).unwrap();
    assert_eq!(request["reveal"]["credential"], "guarded", "{request}");
    let id = request["id"].as_u64().unwrap().to_string();
    // Asking again while it waits files nothing new.
    let out = reveal_as("vera", &["--reason", "incident"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains(&format!("request {id} ")));
    assert_eq!(d.ok_as("bob", &["queue", "--json"]).lines().count(), 1);
    // Nobody approves their own.
    assert!(d
        .fails_as("vera", &["approve", &id])
        .contains("nobody approves their own request"));

    d.ok_as("bob", &["approve", &id, "--comment", "ok for INC-77"]);
    let out = reveal_as("vera", &["--reason", "incident"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), old);
    // Once: the used request is refused by id, and a new reveal asks again.
    let out = reveal_as("vera", &["--reason", "incident", "--request", &id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("shows the password once"));
    let out = reveal_as("vera", &["--reason", "incident"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(old));

    let audit = d.ok(&["audit", "export"]);
    let shown = audit
        .lines()
        .find(|l| l.contains("\"credential.reveal\""))
        .expect("the reveal is audited");
    assert!(
        shown.contains("vera")
            && shown.contains("policy guarded-reveals")
            && shown.contains(&format!("under request {id}")),
        "{shown}"
    );
    assert_eq!(audit.matches("\"credential.reveal\"").count(), 1);
    assert_eq!(audit.matches("\"credential.reveal.refused\"").count(), 3);
    assert!(!audit.contains(old), "the password is in the audit");

    eventually("a change after the view", Duration::from_secs(30), || {
        status(&d, "guarded")["changes"] == 1
    });
}

/// A task that logs in with a credential whose password is being changed
/// waits for the change to end, then logs in with the new password.
#[test]
fn a_run_waits_while_its_credentials_password_is_changed() {
    let old = "Old-pass-3388q";
    account("gh-rot-busy", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let slow = "[[template]]\nname = \"slow-chpasswd\"\nexecutor = \"ssh-script\"\nexecution_type = \"password-change\"\ncontent = '''\nsleep 2\necho [#USERNAME#]:[#NEW_PASSWORD#] | chpasswd\n'''\n";
    import(
        &d,
        &format!(
            "{}{slow}{}{}",
            base(&sshd),
            credential(
                "busy",
                "gh-rot-busy",
                old,
                "change_template = \"slow-chpasswd\"\nchange_with = \"root-key\""
            ),
            login_task("as-busy", "busy")
        ),
    );
    d.ok(&["credential", "change", "busy"]);
    let op = run(&d, "as-busy");
    assert_eq!(op["state"], "succeeded", "{op}");
    let change = history(&d)
        .into_iter()
        .find(|o| o["task"] == "password change of busy")
        .unwrap();
    assert_eq!(change["state"], "succeeded", "{change}");
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(
        time(&op["started_at"]) >= time(&change["finished_at"]),
        "the run started at {} while the change ran until {}",
        op["started_at"],
        change["finished_at"]
    );
    assert_eq!(status(&d, "busy")["changes"], 1);
}

/// A bulk change lists what it will change and needs a confirmation
/// (refused off a terminal without --yes, nothing changed); with it, every
/// credential with a change template in the environment changes.
#[test]
fn a_bulk_change_lists_what_it_changes_and_needs_a_confirmation() {
    account("gh-rot-bulk1", "Old-pass-8001k");
    account("gh-rot-bulk2", "Old-pass-8002k");
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let root = "change_template = \"chpasswd\"\nchange_with = \"root-key\"";
    import(
        &d,
        &format!(
            "{}{}{}",
            base(&sshd),
            credential("bulk-1", "gh-rot-bulk1", "Old-pass-8001k", root),
            credential("bulk-2", "gh-rot-bulk2", "Old-pass-8002k", root),
        ),
    );
    let args = ["credential", "change", "--all", "--environment", "lab"];
    let out = d.run(&args);
    assert!(!out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("these 2 credential(s)"), "{listed}");
    assert!(
        listed.contains("bulk-1") && listed.contains("bulk-2"),
        "{listed}"
    );
    assert!(
        !listed.contains("root-key"),
        "it has no change template: {listed}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing changed"));
    assert_eq!(status(&d, "bulk-1")["state"], "ok");
    assert_eq!(status(&d, "bulk-1")["changes"], 0);

    let mut yes = args.to_vec();
    yes.push("--yes");
    d.ok(&yes);
    eventually(
        "the bulk changes did not end",
        Duration::from_secs(30),
        || status(&d, "bulk-1")["changes"] == 1 && status(&d, "bulk-2")["changes"] == 1,
    );
}

/// `verify_every` logs in with the stored password now and then: a
/// password changed behind Gatehouse's back marks the credential out of
/// sync (audited); a reconcile repairs it.
#[test]
fn a_password_changed_behind_gatehouses_back_is_found_by_the_periodic_check() {
    let old = "Old-pass-9191c";
    account("gh-rot-drift", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}",
            base(&sshd),
            credential(
                "drift",
                "gh-rot-drift",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nverify_every = \"1s\""
            )
        ),
    );
    // Positive control: the check runs and finds nothing wrong.
    eventually(
        "the periodic check never ran",
        Duration::from_secs(15),
        || status(&d, "drift")["verified_at"].is_string(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(status(&d, "drift")["state"], "ok");
    // Someone changes it on the device.
    account("gh-rot-drift", "Changed-by-hand-77");
    eventually(
        "the changed password was not found",
        Duration::from_secs(20),
        || status(&d, "drift")["state"] == "out-of-sync",
    );
    let st = status(&d, "drift");
    assert!(
        st["detail"]
            .as_str()
            .unwrap()
            .contains("no longer logs in to box-1"),
        "{st}"
    );
    assert!(d
        .ok(&["audit", "export"])
        .contains("credential.verify.failed"));
    d.ok(&["credential", "reconcile", "drift", "--wait"]);
    assert_eq!(status(&d, "drift")["state"], "ok");
}

/// `rotate_after_use`: once a run that logged in with the credential
/// ended, its password is changed (and the run used the old one).
#[test]
fn a_password_is_changed_after_a_run_used_it() {
    let old = "Old-pass-4545u";
    account("gh-rot-use", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}",
            base(&sshd),
            credential(
                "used",
                "gh-rot-use",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nrotate_after_use = true"
            ),
            login_task("as-used", "used")
        ),
    );
    assert_eq!(status(&d, "used")["changes"], 0);
    d.ok(&["request", "as-used", "--wait"]);
    // The change starts as the run ends: find the run by its task.
    let op = history(&d)
        .into_iter()
        .find(|o| o["task"] == "as-used")
        .unwrap();
    assert_eq!(op["state"], "succeeded", "{op}");
    eventually("no change after the run", Duration::from_secs(30), || {
        status(&d, "used")["changes"] == 1
    });
    let audit = d.ok(&["audit", "export"]);
    assert!(
        audit.contains(&format!("after operation {} used it", op["id"])),
        "{audit}"
    );
    assert_ne!(reveal(&d, "used"), old);
}

/// The new and the old password of a change are in no command line on the
/// jump host or the target while the change runs, and nowhere a person or
/// a collector can look afterwards: output, history, the audit (and a SIEM
/// file fed from it), the server's log, every file of the store.
#[test]
fn a_changes_passwords_are_in_no_process_list_output_log_or_file() {
    use common::leaks::{leak, watch_processes};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let old = "Old-pass-6060L";
    account("gh-rot-leak", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let siem = d.scratch.path().join("siem.jsonl");
    let config = d.write(
        "config.toml",
        &format!(
            "[[forward]]\nname = \"siem\"\nkind = \"jsonl\"\nfile = \"{}\"\n",
            siem.display()
        ),
    );
    let config = config.to_str().unwrap();
    // A change template that shows both passwords and pauses, so that the
    // process lists are read while it runs.
    let loud = "[[template]]\nname = \"loud\"\nexecutor = \"ssh-script\"\nexecution_type = \"password-change\"\ncontent = '''\nprintf 'old %s new %s\\n' [#OLD_PASSWORD#] [#NEW_PASSWORD#]\nsleep 0.5\necho [#USERNAME#]:[#NEW_PASSWORD#] | chpasswd\n'''\n";
    let file = d.write(
        "records.toml",
        &format!(
            "{}{loud}{}",
            base(&sshd),
            credential(
                "loud-svc",
                "gh-rot-leak",
                old,
                "change_template = \"loud\"\nchange_with = \"root-key\""
            )
        ),
    );
    d.ok(&["--config", config, "import", file.to_str().unwrap()]);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_processes(stop.clone());
    d.ok(&[
        "--config",
        config,
        "credential",
        "change",
        "loud-svc",
        "--wait",
    ]);
    stop.store(true, Ordering::Relaxed);
    let processes = watcher.join().unwrap();
    // Positive control: the watcher saw the change's commands run.
    assert!(
        processes.windows(9).any(|w| w == b"sleep\x000.5"),
        "the process watcher saw no run"
    );
    let new = reveal(&d, "loud-svc");
    assert_ne!(new, old);
    let change = history(&d)
        .into_iter()
        .find(|o| o["task"] == "password change of loud-svc")
        .unwrap();
    let out = logs(&d, &change);
    // Positive control: the template did print both, as masks.
    assert!(
        out.contains("old [#OLD_PASSWORD#] new [#NEW_PASSWORD#]"),
        "{out}"
    );
    d.ok(&["--config", config, "shutdown"]);
    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("process lists".into(), processes),
        ("the output".into(), out.into_bytes()),
        ("the SIEM file".into(), std::fs::read(&siem).unwrap()),
    ];
    for f in common::files_under(d.path()) {
        if let Ok(bytes) = std::fs::read(&f) {
            places.push((f.display().to_string(), bytes));
        }
    }
    for (place, bytes) in &places {
        for (which, secret) in [("new", new.as_str()), ("old", old)] {
            if let Some(form) = leak(bytes, secret) {
                panic!("the {which} password ({form:?}) is in {place}");
            }
        }
    }
}

/// A credential without its own password policy takes its environment's.
#[test]
fn a_credential_takes_its_environments_password_policy() {
    account("gh-rot-envpol", "Old-pass-1234e");
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let records = base(&sshd).replacen(
        "[[environment]]\nname = \"lab\"\n",
        "[[environment]]\nname = \"lab\"\npassword_policy = { length = 14, symbols = false }\n",
        1,
    );
    assert!(records.contains("length = 14"));
    import(
        &d,
        &format!(
            "{records}{}",
            credential(
                "env-policy",
                "gh-rot-envpol",
                "Old-pass-1234e",
                "change_template = \"chpasswd\"\nchange_with = \"root-key\""
            )
        ),
    );
    d.ok(&["credential", "change", "env-policy", "--wait"]);
    let new = reveal(&d, "env-policy");
    assert_eq!(new.chars().count(), 14, "{new}");
    assert!(new.chars().all(|c| c.is_ascii_alphanumeric()), "{new}");
}

/// With a check-out period, the change `rotate_after_view` asks for waits
/// until the period ends (audited), then runs.
#[test]
fn a_check_out_period_delays_the_change_after_a_view() {
    let old = "Old-pass-7777k";
    account("gh-rot-checkout", old);
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}",
            base(&sshd),
            credential(
                "borrowed",
                "gh-rot-checkout",
                old,
                "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nrotate_after_view = true\ncheckout = \"3s\""
            )
        ),
    );
    let shown_at = std::time::Instant::now();
    assert_eq!(reveal(&d, "borrowed"), old);
    assert!(d.ok(&["audit", "export"]).contains("credential.checkout"));
    // Still the same within the period.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&d, "borrowed")["changes"], 0);
    eventually(
        "no change after the check-out",
        Duration::from_secs(30),
        || status(&d, "borrowed")["changes"] == 1,
    );
    assert!(shown_at.elapsed() >= Duration::from_secs(3));
    assert!(d.ok(&["audit", "export"]).contains("after a view by root"));
}

/// Maximum-age changes start inside the credential's rotation window only.
#[test]
fn a_maximum_age_change_waits_for_its_rotation_window() {
    use chrono::Timelike;
    account("gh-rot-window", "Old-pass-5656n");
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let now = chrono::Local::now();
    let at = |minutes: u32| {
        let m = (now.hour() * 60 + now.minute() + minutes) % (24 * 60);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let with_window = |from: String, to: String| {
        format!(
            "{}{}",
            base(&sshd),
            credential(
                "nightly",
                "gh-rot-window",
                "Old-pass-5656n",
                &format!(
                    "change_template = \"chpasswd\"\nchange_with = \"root-key\"\nrotate_every = \"1s\"\nrotation_window = {{ from = \"{from}\", to = \"{to}\" }}"
                )
            )
        )
    };
    // A window that starts in two hours: nothing yet, however old.
    import(&d, &with_window(at(120), at(180)));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(status(&d, "nightly")["changes"], 0);
    // One around now (from a minute ago to two hours on): it runs.
    import(&d, &with_window(at(24 * 60 - 1), at(120)));
    eventually(
        "no change inside the window",
        Duration::from_secs(30),
        || status(&d, "nightly")["changes"].as_u64().unwrap_or(0) >= 1,
    );
}

/// A change template that uses `[#NEW_PUBLIC_KEY#]` rotates the key: a new
/// ed25519 pair is made, its public half authorized by the template, the
/// new key verified by logging in with it alone, then stored; the old key
/// no longer logs in.
#[test]
fn a_key_is_rotated_verified_and_the_old_one_no_longer_logs_in() {
    account("gh-rot-key", "Old-pass-3131r");
    let sshd = Sshd::start("");
    let keys = tempfile::tempdir().unwrap();
    let old_key = common::sshd::keygen(keys.path(), "keyed", "ed25519", "", None);
    sshd.authorize(&old_key.with_extension("pub"));
    let authorized = sshd.dir.path().join("authorized_keys");
    let rotate = format!(
        "[[template]]\nname = \"rotate-key\"\nexecutor = \"ssh-script\"\nexecution_type = \"password-change\"\ncontent = '''\n\
         f={}\nold=$(echo '[#OLD_PUBLIC_KEY#]' | cut -d' ' -f2)\necho '[#NEW_PUBLIC_KEY#]' >> $f\n\
         grep -v -F \"$old\" $f > $f.new; cat $f.new > $f; rm $f.new\necho rotated\n'''\n",
        authorized.display()
    );
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{rotate}[[credential]]\nname = \"keyed\"\nusername = \"gh-rot-key\"\nprivate_key_file = \"{}\"\ndevice = \"box-1\"\n\
             change_template = \"rotate-key\"\nchange_with = \"root-key\"\n\
             [[credential]]\nname = \"keyed-old\"\nusername = \"gh-rot-key\"\nprivate_key_file = \"{}\"\n{}{}",
            base(&sshd),
            old_key.display(),
            old_key.display(),
            login_task("as-keyed", "keyed"),
            login_task("as-keyed-old", "keyed-old")
        ),
    );
    // Positive control: the old key logs in before.
    assert_eq!(run(&d, "as-keyed-old")["state"], "succeeded");
    let out = d.ok(&["credential", "change", "keyed", "--wait"]);
    assert!(out.contains("verified: the new key logs in"), "{out}");
    assert_eq!(status(&d, "keyed")["state"], "ok");
    let op = run(&d, "as-keyed");
    assert_eq!(op["state"], "succeeded", "the stored new key: {op}");
    let op = run(&d, "as-keyed-old");
    assert_eq!(op["state"], "failed", "the old key still logs in: {op}");
    // The private half never shows: not in the output, not in the export.
    let change = history(&d)
        .into_iter()
        .find(|o| o["task"] == "password change of keyed")
        .unwrap();
    let shown = format!("{}{}", logs(&d, &change), d.ok(&["export"]));
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("rotated"));
}

/// A change template that would change nothing (it fills neither a new
/// password nor a new key) is refused before anything runs.
#[test]
fn a_change_template_that_fills_no_new_secret_is_refused() {
    account("gh-rot-none", "Old-pass-0000z");
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}[[template]]\nname = \"noop\"\nexecutor = \"ssh-script\"\nexecution_type = \"password-change\"\ncontent = \"true\\n\"\n{}",
            base(&sshd),
            credential(
                "idle",
                "gh-rot-none",
                "Old-pass-0000z",
                "change_template = \"noop\"\nchange_with = \"root-key\""
            )
        ),
    );
    let err = d.fails(&["credential", "change", "idle"]);
    assert!(
        err.contains("neither [#NEW_PASSWORD#] nor [#NEW_PUBLIC_KEY#]"),
        "{err}"
    );
    assert!(history(&d).is_empty(), "nothing ran");
}

/// Changing a password needs manage-credentials: someone who may run
/// tasks (and see the credential's runs) is refused by name, and nothing runs.
#[test]
fn a_change_needs_manage_credentials() {
    account("gh-rot-perm", "Old-pass-2468p");
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}[[role]]\nname = \"runner\"\ngrants = [{{ action = \"request-tasks\" }}, {{ action = \"view-executions\" }}]\n\
             [[user]]\nlogin = \"otto\"\nroles = [\"User\", \"runner\"]\n",
            base(&sshd),
            credential(
                "guarded",
                "gh-rot-perm",
                "Old-pass-2468p",
                "change_template = \"chpasswd\"\nchange_with = \"root-key\""
            )
        ),
    );
    let refused = d.fails_as("otto", &["credential", "change", "guarded"]);
    assert!(refused.contains("manage-credentials"), "{refused}");
    // Nor does he see where credentials stand.
    let refused = d.fails_as("otto", &["credential", "status"]);
    assert!(refused.contains("manage-credentials"), "{refused}");
    assert!(history(&d).is_empty(), "nothing ran");
    // Positive control: the owner may.
    d.ok(&["credential", "change", "guarded", "--wait"]);
    assert_eq!(status(&d, "guarded")["changes"], 1);
}
