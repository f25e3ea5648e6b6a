//! Ansible playbooks as an executor, for real: ansible-core from the
//! distribution against a real sshd on loopback, the real binary and its
//! server.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::{history, logs, request_id, wait_final};
use common::sshd::{Sshd, TEST_PASSWORD, TEST_USER};
use common::DataDir;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Three devices on one sshd (and a dead one when asked), a credential
/// with the test account's password, and a task running `playbook`.
fn records(sshd: &Sshd, playbook: &str, devices: &[(&str, u16)], extra: &str) -> String {
    let mut text = String::from("[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n");
    for (name, port) in devices {
        text.push_str(&format!(
            "[[device]]\nname = \"{name}\"\naddress = \"{}\"\nport = {port}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_key = \"{}\"\n",
            sshd.address,
            sshd.host_key_line()
        ));
    }
    text.push_str(&format!(
        "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\npassword = \"{TEST_PASSWORD}\"\n"
    ));
    text.push_str(&format!(
        "[[template]]\nname = \"pb\"\nexecutor = \"ansible-playbook\"\ncontent = '''\n{playbook}'''\n{extra}"
    ));
    text.push_str(&format!(
        "[[task]]\nname = \"play\"\ntemplate = \"pb\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"login\"\ndevices = [{}]\nparallelism = 2\n",
        devices
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    text
}

fn load(d: &DataDir, text: &str) {
    let file = d.write("records.toml", text);
    d.ok(&["import", file.to_str().unwrap()]);
}

/// A directory the test account may write, fresh for each test.
fn scratch(name: &str) -> std::path::PathBuf {
    common::sshd::ensure_test_user();
    let dir =
        std::path::Path::new("/tmp").join(format!("gh-ansible-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::process::Command::new("chown")
        .arg(format!("{TEST_USER}:"))
        .arg(&dir)
        .status()
        .unwrap();
    dir
}

/// A playbook whose one task, "touch the mark", touches a file named for
/// the device in `dir` (no facts gathered).
fn touch_playbook(dir: &std::path::Path) -> String {
    format!(
        "- gather_facts: false\n  tasks:\n    - name: touch the mark\n      file:\n        path: \"{}/{{{{ inventory_hostname }}}}\"\n        state: touch\n",
        dir.display()
    )
}

#[test]
fn a_playbook_changes_a_file_on_three_devices_with_a_result_for_each() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("three");
    let playbook = format!(
        "- name: mark each device\n  tasks:\n    - name: write the mark\n      copy:\n        dest: \"{}/{{{{ inventory_hostname }}}}\"\n        content: \"marked {{{{ NOTE }}}}\\n\"\n",
        dir.display()
    );
    load(
        &d,
        &records(
            &sshd,
            &playbook,
            &[
                ("box-1", sshd.port),
                ("box-2", sshd.port),
                ("box-3", sshd.port),
            ],
            "[[template.variable]]\nname = \"NOTE\"\n",
        ),
    );
    let out = d.run(&["request", "play", "--var", "NOTE=by-gatehouse", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = history(&d);
    assert_eq!(h.len(), 3, "{h:?}");
    for op in &h {
        assert_eq!(op["state"], "succeeded", "{op}");
        let log = logs(&d, op);
        let device = op["device"].as_str().unwrap();
        assert!(
            log.contains("TASK [write the mark] changed"),
            "{device}: {log}"
        );
        // One process served all three.
        assert!(log.contains("for 3 device(s) at once"), "{log}");
        let written = std::fs::read_to_string(dir.join(device)).unwrap();
        assert_eq!(written, "marked by-gatehouse\n");
    }
}

#[test]
fn a_device_where_every_task_was_skipped_is_skipped_with_why_and_nothing_is_retried() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("skipped");
    // Facts are gathered on both (the default); the one task runs on box-1 only.
    let playbook = format!(
        "- name: mark one\n  tasks:\n    - name: write the mark\n      when: inventory_hostname == \"box-1\"\n      copy:\n        dest: \"{}/{{{{ inventory_hostname }}}}\"\n        content: \"marked\\n\"\n",
        dir.display()
    );
    // Failures are retried here: a skip must not be.
    let mut text = records(
        &sshd,
        &playbook,
        &[("box-1", sshd.port), ("box-2", sshd.port)],
        "",
    );
    text.push_str("retries = 2\nretry_on_failure = true\n");
    load(&d, &text);
    let out = d.run(&["request", "play", "--wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a skip is not a failure: {stderr}");
    let h = wait_final(&d, 2, Duration::from_secs(60));
    let by = |name: &str| h.iter().find(|o| o["device"] == name).unwrap().clone();
    // Control: the device the task ran on succeeded and was changed.
    assert_eq!(by("box-1")["state"], "succeeded", "{h:?}");
    assert!(dir.join("box-1").exists());
    let skipped = by("box-2");
    assert_eq!(skipped["state"], "skipped", "{skipped}");
    assert_eq!(
        skipped["error"],
        "every task was skipped on this device, nothing was done (the first: 'write the mark': Conditional result was False)",
        "{skipped}"
    );
    assert!(!dir.join("box-2").exists());
    let log = logs(&d, &skipped);
    assert!(log.contains("TASK [write the mark] skipped"), "{log}");
    assert!(log.contains("skipped: every task was skipped"), "{log}");
    assert!(!log.contains("attempt 2 of"), "never retried: {log}");
    // Listed by its state, and not among the failures a re-run retries.
    let listed = d.ok(&["history", "--state", "skipped", "--json"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("\"box-2\""), "{listed}");
    let rerun = d.ok(&["rerun", &skipped["id"].to_string(), "--failed"]);
    assert!(
        rerun.contains("nothing to re-run: no device of it failed"),
        "{rerun}"
    );
}

/// A jump host without ansible-core: the server runs where the program is
/// hidden (a mount namespace with /dev/null over it), and a run says what
/// is missing and how to install it, instead of a bare "not found".
#[test]
fn a_jump_host_without_ansible_playbook_says_what_to_install() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let playbook =
        "- gather_facts: false\n  tasks:\n    - name: hello\n      command: echo hello\n";
    let file = d.write(
        "records.toml",
        &records(&sshd, playbook, &[("box-1", sshd.port)], ""),
    );
    // Where the jump host has it (the server looks only there).
    let installed: Vec<String> = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|dir| format!("{dir}/ansible-playbook"))
    .filter(|p| std::path::Path::new(p).is_file())
    .collect();
    assert!(!installed.is_empty(), "the tests need ansible-core");
    // The first command starts the server inside the namespace.
    let hide: String = installed
        .iter()
        .map(|p| format!("mount --bind /dev/null {p} && "))
        .collect();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("{hide}exec \"$0\" \"$@\""))
        .arg(common::bin())
        .arg("--data-dir")
        .arg(d.path())
        .args(["import", file.to_str().unwrap()])
        .env_remove("GATEHOUSE_SOCKET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.run(&["request", "play", "--wait"]);
    assert!(!out.status.success());
    let h = wait_final(&d, 1, Duration::from_secs(60));
    assert_eq!(h[0]["state"], "failed", "{h:?}");
    assert_eq!(
        h[0]["error"],
        "ansible-playbook is not installed on this jump host: install ansible-core (apt-get install ansible-core sshpass) and run it again",
        "{h:?}"
    );
    // Control: outside the server's namespace the program is there.
    for p in &installed {
        assert!(std::path::Path::new(p).is_file(), "{p}");
    }
}

/// Records for a device `inner` (on `target`) reached through `bastion`
/// (on `bastion`), whose own credential is `bastion_login`.
fn behind_a_bastion(target: &Sshd, bastion: &Sshd, bastion_login: &str, playbook: &str) -> String {
    let device = |name: &str, sshd: &Sshd, extra: &str| {
        format!(
            "[[device]]\nname = \"{name}\"\naddress = \"{}\"\nport = {}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_key = \"{}\"\n{extra}",
            sshd.address,
            sshd.port,
            sshd.host_key_line()
        )
    };
    format!(
        "[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n{}{}\
         [[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\npassword = \"{TEST_PASSWORD}\"\n\
         {bastion_login}\
         [[template]]\nname = \"pb\"\nexecutor = \"ansible-playbook\"\ncontent = '''\n{playbook}'''\n\
         [[task]]\nname = \"play\"\ntemplate = \"pb\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"login\"\ndevices = [\"inner\"]\nretries = 0\n",
        device("bastion", bastion, ""),
        device("inner", target, "via = \"bastion\"\n"),
    )
}

/// A device behind a bastion is reached through it (the bastion's pinned
/// key and its own login, by key or by password): where the bastion
/// forbids forwarding the run fails, so the route is the bastion's; the
/// bastion's password is nowhere in the run's output.
#[test]
fn a_device_behind_a_bastion_runs_the_playbook_through_it() {
    let target = Sshd::start("");
    let dir = scratch("bastion");
    let playbook = touch_playbook(&dir);
    for (forwarding, by_key, reached) in [
        ("no", true, false),
        ("yes", true, true),
        ("yes", false, true),
    ] {
        let bastion = Sshd::start(&format!("AllowTcpForwarding {forwarding}"));
        let login = if by_key {
            format!(
                "[[credential]]\nname = \"bastion-login\"\nusername = \"{TEST_USER}\"\ndevice = \"bastion\"\nprivate_key_file = \"{}\"\n",
                bastion.client_key().display()
            )
        } else {
            format!(
                "[[credential]]\nname = \"bastion-login\"\nusername = \"{TEST_USER}\"\ndevice = \"bastion\"\npassword = \"{TEST_PASSWORD}\"\n"
            )
        };
        let d = DataDir::new();
        load(&d, &behind_a_bastion(&target, &bastion, &login, &playbook));
        let _ = std::fs::remove_file(dir.join("inner"));
        d.run(&["request", "play", "--wait"]);
        let op = wait_final(&d, 1, Duration::from_secs(60))[0].clone();
        let log = logs(&d, &op);
        let case = format!("forwarding {forwarding}, key {by_key}");
        if reached {
            assert_eq!(op["state"], "succeeded", "{case}: {op}\n{log}");
            assert!(
                log.contains("TASK [touch the mark] changed"),
                "{case}: {log}"
            );
            assert!(dir.join("inner").exists(), "{case}");
        } else {
            assert_eq!(op["state"], "failed", "{case}: {op}\n{log}");
            assert!(
                op["error"].as_str().unwrap().starts_with("unreachable"),
                "{case}: {op}"
            );
            assert!(!dir.join("inner").exists(), "{case}");
        }
        assert!(!log.contains("PRIVATE KEY"), "{case}: {log}");
        assert!(!log.contains(TEST_PASSWORD), "{case}: {log}");
    }
}

/// A login by OpenSSH user certificate reaches a device that trusts only
/// the certificate authority; the same key without its certificate is
/// refused there (the control).
#[test]
fn a_user_certificate_logs_the_playbook_in_where_only_the_authority_is_trusted() {
    let keys = tempfile::tempdir().unwrap();
    let (ca, user, cert) = common::sshd::user_certificate(keys.path());
    let sshd = Sshd::start(&format!(
        "TrustedUserCAKeys {}",
        ca.with_extension("pub").display()
    ));
    let playbook = "- gather_facts: false\n  tasks:\n    - name: hello\n      command: echo certificate-accepted\n";
    for with_cert in [true, false] {
        let d = DataDir::new();
        let text = records(&sshd, playbook, &[("certified", sshd.port)], "");
        // The key login in place of the password one.
        let login = format!(
            "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\nprivate_key_file = \"{}\"\n{}",
            user.display(),
            if with_cert {
                format!("certificate_file = \"{}\"\n", cert.display())
            } else {
                String::new()
            }
        );
        let text = text.replace(
            &format!(
                "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\npassword = \"{TEST_PASSWORD}\"\n"
            ),
            &login,
        );
        assert!(text.contains("private_key_file"), "{text}");
        load(&d, &text);
        d.run(&["request", "play", "--wait"]);
        let op = wait_final(&d, 1, Duration::from_secs(60))[0].clone();
        let log = logs(&d, &op);
        if with_cert {
            assert_eq!(op["state"], "succeeded", "{op}\n{log}");
            assert!(log.contains("certificate-accepted"), "{log}");
        } else {
            assert_eq!(op["state"], "failed", "{op}\n{log}");
            assert!(!log.contains("certificate-accepted"), "{log}");
        }
    }
}

/// A port on loopback where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_device_fails_alone_with_ansibles_message() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("unreachable");
    let playbook = touch_playbook(&dir);
    load(
        &d,
        &records(
            &sshd,
            &playbook,
            &[("box-1", sshd.port), ("dead", closed_port())],
            "",
        ),
    );
    let out = d.run(&["request", "play", "--wait"]);
    assert!(!out.status.success());
    let h = wait_final(&d, 2, Duration::from_secs(60));
    let by = |name: &str| h.iter().find(|o| o["device"] == name).unwrap().clone();
    assert_eq!(by("box-1")["state"], "succeeded", "{h:?}");
    assert!(dir.join("box-1").exists());
    let dead = by("dead");
    assert_eq!(dead["state"], "failed", "{dead}");
    let error = dead["error"].as_str().unwrap();
    assert!(
        error.starts_with("unreachable at task 'touch the mark'"),
        "{error}"
    );
    assert!(error.contains("Connection refused"), "{error}");
    assert!(!dir.join("dead").exists());
    assert!(logs(&d, &dead).contains("TASK [touch the mark] unreachable"));
}

#[test]
fn a_host_key_that_is_not_the_pinned_one_is_refused() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("hostkey");
    let keys = tempfile::tempdir().unwrap();
    let other = common::sshd::keygen(keys.path(), "other", "ed25519", "", None);
    let other_line = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let playbook = touch_playbook(&dir);
    let text = records(&sshd, &playbook, &[("box-1", sshd.port)], "")
        .replace(&sshd.host_key_line(), other_line.trim());
    load(&d, &text);
    let out = d.run(&["request", "play", "--wait"]);
    assert!(!out.status.success());
    let h = history(&d);
    assert_eq!(h[0]["state"], "failed");
    let error = h[0]["error"].as_str().unwrap();
    assert!(error.contains("host key is not the one pinned"), "{error}");
    assert!(logs(&d, &h[0]).contains("Host key verification failed"));
    assert!(
        !dir.join("box-1").exists(),
        "nothing ran on a device with another key"
    );
    // Positive control: with the right key pinned, the same run works.
    let d2 = DataDir::new();
    load(&d2, &records(&sshd, &playbook, &[("box-1", sshd.port)], ""));
    d2.ok(&["request", "play", "--wait"]);
    assert!(dir.join("box-1").exists());
}

/// Every process's command line on this machine, joined.
fn all_command_lines() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
            all.push_str(&String::from_utf8_lossy(&bytes).replace('\0', " "));
            all.push('\n');
        }
    }
    all
}

#[test]
fn a_become_password_from_the_credential_works_and_is_nowhere_to_be_seen() {
    common::sshd::ensure_sudo_rules();
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("become");
    let playbook = format!(
        "- name: as root\n  gather_facts: false\n  become: true\n  tasks:\n    - name: who\n      command: whoami\n    - name: leave a root-owned mark\n      copy:\n        dest: \"{}/{{{{ inventory_hostname }}}}\"\n        content: \"root was here\\n\"\n    - name: a slow step\n      command: sleep 3\n",
        dir.display()
    );
    load(&d, &records(&sshd, &playbook, &[("box-1", sshd.port)], ""));
    // Every process's arguments, sampled while the run goes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut leaked, mut saw_ansible) = (false, false);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let lines = all_command_lines();
                leaked |= lines.contains(TEST_PASSWORD);
                saw_ansible |= lines.contains("ansible-playbook");
                std::thread::sleep(Duration::from_millis(20));
            }
            (leaked, saw_ansible)
        })
    };
    let out = d.run(&["request", "play", "--wait"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (leaked, saw_ansible) = sampler.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    // Positive controls: the password became root, and the sampler saw the run.
    assert!(
        stdout.contains("TASK [who] changed") && stdout.contains("  root"),
        "{stdout}"
    );
    let mark = dir.join("box-1");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&mark).unwrap().uid(), 0);
    assert!(saw_ansible, "the sampler never saw ansible-playbook run");
    assert!(!leaked, "the password was in a process's arguments");
    // Nowhere in what Gatehouse shows or keeps.
    let h = history(&d);
    let log = logs(&d, &h[0]);
    assert!(!log.contains(TEST_PASSWORD), "{log}");
    assert!(!d.ok(&["audit", "export"]).contains(TEST_PASSWORD));
    assert!(!stdout.contains(TEST_PASSWORD));
    for file in common::files_under(&d.path().join("logs")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains(TEST_PASSWORD), "{}", file.display());
    }
    // The run's private directory is gone (removed off the async workers,
    // just after the run's end).
    let port = sshd.port.to_string();
    let runs_left = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("gatehouse-ansible-")
                    && std::fs::read_to_string(e.path().join("inventory.yml"))
                        .is_ok_and(|t| t.contains(&port))
            })
            .count()
    };
    common::runs::eventually(
        "the run's private directory is still there",
        Duration::from_secs(5),
        || runs_left() == 0,
    );
}

/// ansible-playbook processes whose run's inventory names this port.
fn ansible_processes(port: u16) -> usize {
    all_command_lines()
        .lines()
        .filter(|l| l.contains("ansible-playbook"))
        .filter_map(|l| {
            let inventory = l.split(' ').find(|w| w.ends_with("/inventory.yml"))?;
            std::fs::read_to_string(inventory).ok()
        })
        .filter(|text| text.contains(&format!("ansible_port: {port}\n")))
        .count()
}

#[test]
fn cancel_stops_the_playbook_and_leaves_no_process_here_or_there() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let playbook = "- gather_facts: false\n  tasks:\n    - name: started\n      command: echo started\n    - name: long\n      command: sleep 87\n    - name: after\n      command: echo finished\n";
    load(
        &d,
        &records(
            &sshd,
            playbook,
            &[("box-1", sshd.port), ("box-2", sshd.port)],
            "",
        ),
    );
    d.ok(&["request", "play"]);
    let start = Instant::now();
    let ids: Vec<Value> = loop {
        let h = history(&d);
        if h.len() == 2 && common::runs::remote_processes("sleep 87") >= 2 {
            break h.iter().map(|o| o["id"].clone()).collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never ran: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        ansible_processes(sshd.port) >= 1,
        "positive control: the run is there"
    );
    d.ok(&["cancel", &ids[0].to_string()]);
    let h = wait_final(&d, 2, Duration::from_secs(30));
    let cancelled = h.iter().find(|o| o["id"] == ids[0]).unwrap();
    let other = h.iter().find(|o| o["id"] == ids[1]).unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(other["state"], "failed", "{other}");
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .contains("the playbook run was stopped"),
        "{other}"
    );
    assert!(!logs(&d, other).contains("TASK [after]"));
    common::runs::eventually(
        "the remote sleep still runs after cancel",
        Duration::from_secs(10),
        || common::runs::remote_processes("sleep 87") == 0,
    );
    common::runs::eventually(
        "ansible-playbook still runs after cancel",
        Duration::from_secs(10),
        || ansible_processes(sshd.port) == 0,
    );
}

/// Users and a two-level policy over the `play` task.
const PEOPLE: &str = "[[user]]\nlogin = \"alice\"\nroles = [\"User\"]\n[[user]]\nlogin = \"bob\"\nroles = [\"User\"]\n[[user]]\nlogin = \"carol\"\nroles = [\"User\"]\n[[user]]\nlogin = \"eve\"\nroles = [\"User\"]\n[[policy]]\nname = \"lab-plays\"\nrequires_approval = true\nusers = [\"alice\", \"eve\"]\nenvironments = [\"lab\"]\napprovers = [{ user = \"bob\", level = 1 }, { user = \"carol\", level = 2 }]\n";

#[test]
fn a_dry_run_changes_nothing_shows_its_diff_to_approvers_and_the_approved_run_does_the_change() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("check");
    let target = dir.join("box-1");
    let playbook = format!(
        "- name: configure\n  gather_facts: false\n  tasks:\n    - name: write the setting\n      copy:\n        dest: \"{}/{{{{ inventory_hostname }}}}\"\n        content: \"max_connections = 200\\n\"\n",
        dir.display()
    );
    let mut text = records(&sshd, &playbook, &[("box-1", sshd.port)], "");
    text.push_str(PEOPLE);
    load(&d, &text);
    let filed = d.ok_as("alice", &["request", "play"]);
    let id = request_id(&filed);
    assert!(filed.contains("pending"), "{filed}");
    // Neither another operator nor an approver of a later level asks for one.
    assert!(d
        .fails_as("eve", &["request", "check", &id])
        .contains("may not ask for a dry run"));
    // The approver of the current level asks for a dry run and sees it end.
    let out = d.run(&["--as", "bob", "request", "check", &id, "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("--check --diff (a dry run)"), "{stdout}");
    assert!(
        stdout.contains("TASK [write the setting] changed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+max_connections = 200"),
        "the diff: {stdout}"
    );
    assert!(!target.exists(), "a dry run changed the device");
    // The approval view shows it beside the request, which still waits.
    let shown = d.ok_as("carol", &["request", "show", &id]);
    assert!(
        shown.contains("dry run") && shown.contains("(asked by bob): succeeded"),
        "{shown}"
    );
    assert!(shown.contains("+max_connections = 200"), "{shown}");
    assert!(shown.contains("pending"), "{shown}");
    assert!(d.ok(&["audit", "export"]).contains("request.dry-run"));
    // Approved at both levels, the real run makes the change.
    d.ok_as("bob", &["approve", &id, "--comment", "diff looks right"]);
    d.ok_as("carol", &["approve", &id, "--comment", "ok"]);
    common::runs::eventually(
        "the approved run never wrote the file",
        Duration::from_secs(60),
        || target.exists(),
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "max_connections = 200\n"
    );
    // A decided request has no dry run any more.
    assert!(d
        .fails_as("alice", &["request", "check", &id])
        .contains("waits for approval"));
}

#[test]
fn a_playbook_that_forces_tasks_out_of_check_mode_has_no_dry_run() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let playbook = "- gather_facts: false\n  tasks:\n    - name: really\n      command: touch /tmp/gh-forced\n      check_mode: false\n";
    let mut text = records(&sshd, playbook, &[("box-1", sshd.port)], "");
    text.push_str(PEOPLE);
    load(&d, &text);
    let filed = d.ok_as("alice", &["request", "play"]);
    let id = request_id(&filed);
    let err = d.fails_as("alice", &["request", "check", &id]);
    assert!(
        err.contains("line 5") && err.contains("check_mode"),
        "{err}"
    );
}

#[test]
fn a_template_that_is_not_a_playbook_is_refused_at_save_with_its_line() {
    let d = DataDir::new();
    let file = d.write(
        "t.toml",
        "[[template]]\nname = \"pb\"\nexecutor = \"ansible-playbook\"\ncontent = '''\n- name: x\n  hosts: webservers\n  tasks: []\n'''\n",
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(
        err.contains("line 2") && err.contains("fills 'hosts'"),
        "{err}"
    );
    let file = d.write(
        "t2.toml",
        "[[template]]\nname = \"pb\"\nexecutor = \"ansible-playbook\"\ncontent = '''\n- name: x\n  tasks:\n    - command: id\n      delegate_to: localhost\n'''\n",
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("delegate_to"), "{err}");
}

/// On a shared jump host the service runs playbooks as the `[local]`
/// user, never as itself: what a playbook runs on the jump host (a lookup)
/// cannot read the service's data directory or key. Its private directory
/// belongs to that user alone while it runs and is gone afterwards.
#[test]
fn a_shared_service_runs_playbooks_as_the_local_user_not_as_itself() {
    use common::service::{ensure_accounts, Service, LOCAL, SERVICE};
    ensure_accounts();
    let sshd = Sshd::start("");
    let service = Service::start(Some(SERVICE), &[], None);
    let key_file = service.data().join("store.key");
    let playbook = format!(
        "- gather_facts: false\n  tasks:\n    - name: who runs this here\n      debug:\n        msg: \"controller={{{{ lookup('pipe', 'id -un') }}}} key={{{{ lookup('pipe', 'cat {} 2>&1 || true') }}}}\"\n",
        key_file.display()
    );
    let records = service.write(
        "records.toml",
        &records(&sshd, &playbook, &[("box-1", sshd.port)], ""),
    );
    service.ok_as(Some(SERVICE), &["import", records.to_str().unwrap()]);
    let out = service.run_as(Some(SERVICE), &["request", "play", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("controller={LOCAL}")), "{stdout}");
    assert!(
        stdout.contains("Permission denied"),
        "the key was readable: {stdout}"
    );
    // Positive control: the key file is there, and the service reads it.
    assert!(key_file.exists());
}

#[test]
fn request_with_check_files_it_for_approval_with_its_dry_run_and_never_runs_one_that_needs_none() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let dir = scratch("request-check");
    let playbook = format!(
        "- gather_facts: false\n  tasks:\n    - name: write\n      copy:\n        dest: \"{}/{{{{ inventory_hostname }}}}\"\n        content: \"on\\n\"\n",
        dir.display()
    );
    let mut text = records(&sshd, &playbook, &[("box-1", sshd.port)], "");
    text.push_str(PEOPLE);
    // eve's own policy needs no approval: her requests run at once.
    text = text.replace("users = [\"alice\", \"eve\"]", "users = [\"alice\"]");
    text.push_str(
        "[[policy]]\nname = \"eve-direct\"\nusers = [\"eve\"]\nenvironments = [\"lab\"]\n",
    );
    load(&d, &text);
    let out = d.run(&["--as", "alice", "request", "play", "--check", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("pending"), "{stdout}");
    assert!(
        stdout.contains("TASK [write] changed") && stdout.contains("+on"),
        "{stdout}"
    );
    assert!(
        !dir.join("box-1").exists(),
        "the dry run changed the device"
    );
    let id = request_id(&stdout);
    assert!(d
        .ok_as("bob", &["request", "show", &id])
        .contains("(asked by alice): succeeded"));
    // Where nothing waits for approval, --check runs nothing at all.
    let before = history(&d).len();
    let err = d.fails_as("eve", &["request", "play", "--check"]);
    assert!(
        err.contains("needs no approval and would run at once"),
        "{err}"
    );
    assert_eq!(history(&d).len(), before);
    assert!(!dir.join("box-1").exists());
    // Positive control: without --check, eve's request runs and writes.
    d.ok_as("eve", &["request", "play", "--wait"]);
    assert!(dir.join("box-1").exists());
}

#[test]
fn a_timeout_stops_the_playbook_and_the_remote_command() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let playbook = "- gather_facts: false\n  tasks:\n    - name: long\n      command: sleep 91\n";
    let text = records(&sshd, playbook, &[("box-1", sshd.port)], "").replace(
        "parallelism = 2\n",
        "parallelism = 2\ntimeout = 8\nretries = 0\n",
    );
    load(&d, &text);
    // Whether the remote command ran at all, seen while the run goes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = false;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                seen |= common::runs::remote_processes("sleep 91") > 0;
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        })
    };
    let started = Instant::now();
    let out = d.run(&["request", "play", "--wait"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        seen.join().unwrap(),
        "positive control: the remote sleep ran"
    );
    assert!(!out.status.success());
    let h = history(&d);
    assert_eq!(h[0]["state"], "failed", "{h:?}");
    let error = h[0]["error"].as_str().unwrap();
    assert!(error.contains("timed out after 8 s"), "{error}");
    assert!(!error.contains("may still be running"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30));
    common::runs::eventually(
        "the remote sleep outlived the timeout",
        Duration::from_secs(10),
        || common::runs::remote_processes("sleep 91") == 0,
    );
    assert_eq!(ansible_processes(sshd.port), 0);
}

/// A playbook's controller side (lookups, local files) runs on the jump
/// host: writing one needs run-local, as a local script does; requesting
/// its task does not (the approved text is what runs).
#[test]
fn writing_a_playbook_needs_run_local_and_requesting_it_does_not() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    let playbook =
        "- gather_facts: false\n  tasks:\n    - name: hello\n      command: echo hello\n";
    let mut text = records(&sshd, playbook, &[("box-1", sshd.port)], "");
    text.push_str(
        "[[role]]\nname = \"authors\"\ngrants = [{ action = \"view-templates\" }, { action = \"manage-templates\" }]\n\
         [[role]]\nname = \"local-authors\"\ngrants = [{ action = \"view-templates\" }, { action = \"manage-templates\" }, { action = \"run-local\" }]\n\
         [[user]]\nlogin = \"tom\"\nroles = [\"User\", \"authors\"]\n\
         [[user]]\nlogin = \"lou\"\nroles = [\"User\", \"local-authors\"]\n\
         [[user]]\nlogin = \"opal\"\nroles = [\"User\"]\n\
         [[policy]]\nname = \"opal-runs\"\nusers = [\"opal\"]\nenvironments = [\"lab\"]\n",
    );
    load(&d, &text);
    let changed = "[[template]]\nname = \"pb\"\nexecutor = \"ansible-playbook\"\ncontent = '''\n- gather_facts: false\n  tasks:\n    - name: hello\n      command: echo \"{{ lookup('pipe', 'id -un') }}\"\n'''\n";
    let file = d.write("pb.toml", changed);
    let err = d.fails_as("tom", &["import", file.to_str().unwrap()]);
    assert!(
        err.contains("run-local") && err.contains("lookups"),
        "{err}"
    );
    // Nor may he turn another template into a playbook.
    let script = d.write(
        "sh.toml",
        "[[template]]\nname = \"sh\"\nexecutor = \"ssh-script\"\ncontent = \"echo hi\"\n",
    );
    d.ok_as("tom", &["import", script.to_str().unwrap()]);
    let turned = d.write(
        "sh2.toml",
        "[[template]]\nname = \"sh\"\nexecutor = \"ansible-playbook\"\ncontent = '''\n- tasks: []\n'''\n",
    );
    assert!(d
        .fails_as("tom", &["import", turned.to_str().unwrap()])
        .contains("run-local"));
    // With run-local, the same playbook is written.
    d.ok_as("lou", &["import", file.to_str().unwrap()]);
    // An operator without run-local requests its task and it runs.
    let out = d.run(&["--as", "opal", "request", "play", "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("TASK [hello] changed"), "{stdout}");
}
