//! Reaching the servers real fleets run, as OpenSSH's client does: old
//! algorithms enabled per environment and device, hosts with several keys,
//! bastions, user certificates, interpreters and PTYs, and remote work that
//! ends when the operation does. Real sshd (and Dropbear) on loopback.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::runs::{eventually, history, logs, remote_processes, wait_final};
use common::sshd::{keygen, Sshd, TEST_PASSWORD, TEST_USER};
use common::DataDir;
use std::time::Duration;

/// The environment and system every record here lives in, with the
/// environment's SSH options.
fn places(env_options: &str) -> String {
    format!("[[environment]]\nname = \"lab\"\n{env_options}\n[[system]]\nname = \"box\"\n")
}

/// A device on `sshd`, its host key pinned, with extra lines.
fn device(name: &str, sshd: &Sshd, extra: &str) -> String {
    format!(
        "[[device]]\nname = \"{name}\"\naddress = \"{}\"\nport = {}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_keys = [\"{}\"]\n{extra}\n",
        sshd.address,
        sshd.port,
        sshd.host_key_line()
    )
}

/// The test account's password credential, owned by `device` when given.
fn password_login(name: &str, device: Option<&str>) -> String {
    format!(
        "[[credential]]\nname = \"{name}\"\nusername = \"{TEST_USER}\"\npassword = \"{TEST_PASSWORD}\"\n{}\n",
        device
            .map(|d| format!("device = \"{d}\""))
            .unwrap_or_default()
    )
}

/// A template and a task that runs it on `devices` with `login`.
fn task(
    executor: &str,
    content: &str,
    template_extra: &str,
    devices: &[&str],
    login: &str,
    task_extra: &str,
) -> String {
    format!(
        "[[template]]\nname = \"t\"\nexecutor = \"{executor}\"\ncontent = '''\n{content}'''\n{template_extra}\n\
         [[task]]\nname = \"run\"\ntemplate = \"t\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"{login}\"\ndevices = [{}]\nretries = 0\n{task_extra}\n",
        devices
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn import(d: &DataDir, records: &str) {
    let file = d.write("records.toml", records);
    d.ok(&["import", file.to_str().unwrap()]);
}

/// Runs the task and returns its one operation when it ends.
fn run_once(d: &DataDir) -> serde_json::Value {
    let before = history(d).len();
    d.run(&["request", "run"]);
    wait_final(d, before + 1, Duration::from_secs(60))[0].clone()
}

fn error(op: &serde_json::Value) -> String {
    op["error"].as_str().unwrap_or_default().to_string()
}

/// A host that speaks only algorithms OpenSSH's client leaves off by
/// default is refused with both lists and the setting that allows it; the
/// environment's options and then the device's allow them, each named.
#[test]
fn old_algorithms_are_enabled_per_environment_and_device_and_refusals_name_the_setting() {
    let old = Sshd::start(
        "KexAlgorithms diffie-hellman-group14-sha1\nCiphers aes128-cbc\nMACs hmac-sha1",
    );
    let d = DataDir::new();
    let run_task = task(
        "ssh-script",
        "echo old-gear-reached\n",
        "",
        &["old"],
        "login",
        "",
    );
    let with = |env: &str, dev: &str| {
        format!(
            "{}{}{}{run_task}",
            places(env),
            device("old", &old, dev),
            password_login("login", None)
        )
    };
    import(&d, &with("", ""));
    let op = run_once(&d);
    assert_eq!(op["state"], "failed", "{op}");
    let e = error(&op);
    assert!(e.contains("no key exchange in common"), "{e}");
    assert!(
        e.contains("the server offers diffie-hellman-group14-sha1"),
        "{e}"
    );
    assert!(
        e.contains("ssh_options.kex = \"+diffie-hellman-group14-sha1\""),
        "{e}"
    );

    // The environment allows the key exchange: now the cipher is named.
    import(
        &d,
        &with(
            "ssh_options = { kex = \"+diffie-hellman-group14-sha1\" }",
            "",
        ),
    );
    let op = run_once(&d);
    let e = error(&op);
    assert!(e.contains("no cipher in common"), "{e}");
    assert!(e.contains("ssh_options.ciphers = \"+aes128-cbc\""), "{e}");

    // The device allows the cipher too: it runs.
    import(
        &d,
        &with(
            "ssh_options = { kex = \"+diffie-hellman-group14-sha1\" }",
            "ssh_options = { ciphers = \"+aes128-cbc\" }",
        ),
    );
    let op = run_once(&d);
    assert_eq!(op["state"], "succeeded", "{}", error(&op));
    assert!(logs(&d, &op).contains("old-gear-reached"));

    // What OpenSSH's client offers by default reaches a host restricted to
    // ecdh-sha2-nistp256 and hmac-sha1 with no option at all.
    let fips = Sshd::start("KexAlgorithms ecdh-sha2-nistp256\nCiphers aes128-ctr\nMACs hmac-sha1");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}",
            places(""),
            device("fips", &fips, ""),
            password_login("login", None),
            task(
                "ssh-script",
                "echo fips-reached\n",
                "",
                &["fips"],
                "login",
                ""
            )
        ),
    );
    let op = run_once(&d);
    assert_eq!(op["state"], "succeeded", "{}", error(&op));
}

/// An unknown algorithm name is refused at import, under its key.
#[test]
fn an_unknown_algorithm_is_refused_at_import_naming_the_key() {
    let d = DataDir::new();
    let file = d.write(
        "records.toml",
        &places("ssh_options = { macs = \"+hmac-md5\" }"),
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("ssh_options.macs"), "{err}");
    assert!(err.contains("unknown MAC 'hmac-md5'"), "{err}");
}

/// `device trust` shows every key a host offers and pins them all; each
/// pinned key then reaches the host, whichever the server would show first.
#[test]
fn trust_pins_every_key_the_host_offers() {
    let keys = tempfile::tempdir().unwrap();
    let rsa = keygen(keys.path(), "host_rsa", "rsa", "", None);
    let ecdsa = keygen(keys.path(), "host_ecdsa", "ecdsa", "", None);
    let sshd = Sshd::start(&format!(
        "HostKey {}\nHostKey {}",
        rsa.display(),
        ecdsa.display()
    ));
    let d = DataDir::new();
    let unpinned = device("multi", &sshd, "")
        .replace(&format!("host_keys = [\"{}\"]\n", sshd.host_key_line()), "");
    assert!(!unpinned.contains("host_keys"), "{unpinned}");
    import(
        &d,
        &format!(
            "{}{unpinned}{}{}",
            places(""),
            password_login("login", None),
            task(
                "ssh-script",
                "echo trusted-all\n",
                "",
                &["multi"],
                "login",
                ""
            )
        ),
    );
    let shown = d.ok(&["device", "trust", "multi", "--yes"]);
    let expected: Vec<String> = [
        sshd.host_pub(),
        rsa.with_extension("pub"),
        ecdsa.with_extension("pub"),
    ]
    .iter()
    .map(|p| common::sshd::fingerprint(p))
    .collect();
    assert!(shown.contains("offers 3 host key(s)"), "{shown}");
    for f in &expected {
        assert!(shown.contains(f), "{f} not shown: {shown}");
    }
    let exported = d.ok(&["export"]);
    for pub_file in [
        sshd.host_pub(),
        rsa.with_extension("pub"),
        ecdsa.with_extension("pub"),
    ] {
        let line = std::fs::read_to_string(pub_file).unwrap();
        let key_data = line.split_whitespace().nth(1).unwrap().to_string();
        assert!(exported.contains(&key_data), "not pinned: {exported}");
    }
    let op = run_once(&d);
    assert_eq!(op["state"], "succeeded", "{}", error(&op));
    // The audit says what was pinned.
    let audit = d.ok(&["audit", "export"]);
    assert!(expected.iter().all(|f| audit.contains(f)), "{audit}");
}

/// A device behind a bastion is reached through it, with the bastion's
/// own pinned key and credential: when the bastion forbids forwarding the
/// run fails naming the bastion, so the route is the bastion's.
#[test]
fn a_device_behind_a_bastion_is_reached_through_it() {
    let target = Sshd::start("");
    for (forwarding, reached) in [("no", false), ("yes", true)] {
        let bastion = Sshd::start(&format!("AllowTcpForwarding {forwarding}"));
        let d = DataDir::new();
        import(
            &d,
            &format!(
                "{}{}{}{}{}{}",
                places(""),
                device("bastion", &bastion, ""),
                device("inner", &target, "via = \"bastion\""),
                password_login("bastion-login", Some("bastion")),
                password_login("login", None),
                task(
                    "ssh-script",
                    "echo reached-through-bastion\n",
                    "",
                    &["inner"],
                    "login",
                    ""
                )
            ),
        );
        let op = run_once(&d);
        if reached {
            assert_eq!(op["state"], "succeeded", "{}", error(&op));
            assert!(logs(&d, &op).contains("reached-through-bastion"));
        } else {
            assert_eq!(op["state"], "failed", "{op}");
            let e = error(&op);
            assert!(
                e.contains("device 'bastion' could not open a connection"),
                "{e}"
            );
        }
    }
    // A bastion without a credential of its own is named.
    let bastion = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}{}",
            places(""),
            device("bastion", &bastion, ""),
            device("inner", &target, "via = \"bastion\""),
            password_login("login", None),
            task("ssh-script", "echo never\n", "", &["inner"], "login", "")
        ),
    );
    let e = error(&run_once(&d));
    assert!(
        e.contains("no enabled credential belongs to 'bastion'"),
        "{e}"
    );
}

/// An OpenSSH user certificate logs in where the server trusts only the
/// certificate authority; the same key without it is refused.
#[test]
fn a_user_certificate_logs_in_where_only_the_authority_is_trusted() {
    let keys = tempfile::tempdir().unwrap();
    let (ca, user, cert) = common::sshd::user_certificate(keys.path());
    let sshd = Sshd::start(&format!(
        "TrustedUserCAKeys {}",
        ca.with_extension("pub").display()
    ));
    let login = |with_cert: bool| {
        format!(
            "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\nprivate_key_file = \"{}\"\n{}\n",
            user.display(),
            if with_cert {
                format!("certificate_file = \"{}\"", cert.display())
            } else {
                String::new()
            }
        )
    };
    for with_cert in [true, false] {
        let d = DataDir::new();
        import(
            &d,
            &format!(
                "{}{}{}{}",
                places(""),
                device("certified", &sshd, ""),
                login(with_cert),
                task(
                    "ssh-script",
                    "echo certificate-accepted\n",
                    "",
                    &["certified"],
                    "login",
                    ""
                )
            ),
        );
        let op = run_once(&d);
        if with_cert {
            assert_eq!(op["state"], "succeeded", "{}", error(&op));
        } else {
            let e = error(&op);
            assert!(e.contains("refused the private key"), "{e}");
        }
    }
    // A certificate for another key is refused at import.
    let other = keygen(keys.path(), "other", "ed25519", "", None);
    let d = DataDir::new();
    let file = d.write(
        "records.toml",
        &format!(
            "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\nprivate_key_file = \"{}\"\ncertificate_file = \"{}\"\n",
            other.display(),
            cert.display()
        ),
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("certificate_file"), "{err}");
    assert!(err.contains("another key"), "{err}");
}

/// ssh-script runs the script with the template's interpreter, or with the
/// program of its `#!` line, reading it from a pipe (never argv).
#[test]
fn a_script_runs_under_its_interpreter_or_its_shebang() {
    let sshd = Sshd::start("");
    let cases = [
        (
            "print \"perl says \", 6*7, \"\\n\";\n",
            "interpreter = \"perl\"",
            "perl says 42",
        ),
        (
            "#!/usr/bin/env perl\nprint \"shebang perl \", 6*7, \"\\n\";\n",
            "",
            "shebang perl 42",
        ),
        // Positive control: without either, the login shell runs it; what
        // it writes to stderr is marked as such.
        (
            "echo \"shell ran $((6*7))\"\necho to-stderr >&2\n",
            "",
            "[box-1] shell ran 42\n[box-1 stderr] to-stderr",
        ),
    ];
    for (content, extra, expected) in cases {
        let d = DataDir::new();
        import(
            &d,
            &format!(
                "{}{}{}{}",
                places(""),
                device("box-1", &sshd, ""),
                password_login("login", None),
                task("ssh-script", content, extra, &["box-1"], "login", "")
            ),
        );
        let op = run_once(&d);
        assert_eq!(op["state"], "succeeded", "{expected}: {}", error(&op));
        let out = logs(&d, &op);
        assert!(out.contains(expected), "{expected}: {out}");
    }
    // A #! line that is not a plain program is refused at import.
    let d = DataDir::new();
    let file = d.write(
        "records.toml",
        "[[template]]\nname = \"t\"\nexecutor = \"ssh-script\"\ncontent = \"#!/bin/sh; rm -rf /\\necho\\n\"\n",
    );
    let err = d.fails(&["import", file.to_str().unwrap()]);
    assert!(err.contains("#! line"), "{err}");
}

/// `pty = true` gives the script a terminal (what sudo with `requiretty`
/// needs), without the script being echoed; without it there is none.
#[test]
fn pty_gives_the_script_a_terminal_without_echoing_it() {
    let sshd = Sshd::start("");
    for (pty, expected) in [(true, "on-a-tty /dev/pts/"), (false, "no-tty")] {
        let d = DataDir::new();
        import(
            &d,
            &format!(
                "{}{}{}{}",
                places(""),
                device("box-1", &sshd, ""),
                password_login("login", None),
                task(
                    "ssh-script",
                    "if t=$(tty); then echo \"on-a-tty $t\"; else echo no-tty; fi\necho 'marker-[#AUTH_PASSWORD#]' >/dev/null\n",
                    &format!("pty = {pty}"),
                    &["box-1"],
                    "login",
                    ""
                )
            ),
        );
        let op = run_once(&d);
        assert_eq!(op["state"], "succeeded", "{}", error(&op));
        let out = logs(&d, &op);
        assert!(out.contains(expected), "pty = {pty}: {out}");
        // The script itself is not echoed back by the terminal.
        assert!(!out.contains("marker-"), "pty = {pty}: {out}");
    }
}

/// Cancelling an ssh-expect run ends the command it typed, even one
/// started with `nohup` (which closing the session alone leaves running).
#[test]
fn cancelling_an_expect_run_ends_a_nohup_command() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}",
            places(""),
            device("box-1", &sshd, ""),
            password_login("login", None),
            task(
                "ssh-expect",
                "expect \"*$\" timeout 10\nexec \"nohup sleep 297\"\nexpect \"never-printed\" timeout 60\nend\n",
                "",
                &["box-1"],
                "login",
                "timeout = 120"
            )
        ),
    );
    d.run(&["request", "run"]);
    eventually(
        "the nohup command never ran",
        Duration::from_secs(15),
        || remote_processes("sleep 297") == 1,
    );
    let id = history(&d)[0]["id"].to_string();
    d.ok(&["cancel", &id]);
    let op = wait_final(&d, 1, Duration::from_secs(20))[0].clone();
    assert_eq!(op["state"], "cancelled", "{op}");
    eventually(
        "the nohup command outlived the cancelled operation",
        Duration::from_secs(5),
        || remote_processes("sleep 297") == 0,
    );
}

/// A task marked idempotent is run again after a run cut off mid-way, but
/// not after a run that failed: a failure is an answer.
#[test]
fn an_idempotent_task_is_run_again_after_an_interruption_not_after_a_failure() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start("");
    let marks = tempfile::tempdir().unwrap();
    std::fs::set_permissions(marks.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let runs = |name: &str| {
        std::fs::read_to_string(marks.path().join(name))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let cut = format!(
        "echo ran >> {}/cut\nkill -9 $PPID\nsleep 5\n",
        marks.path().display()
    );
    let fail = format!("echo ran >> {}/fail\nexit 3\n", marks.path().display());
    for (content, mark, expected) in [(&cut, "cut", 3), (&fail, "fail", 1)] {
        let d = DataDir::new();
        import(
            &d,
            &format!(
                "{}{}{}{}",
                places(""),
                device("box-1", &sshd, ""),
                password_login("login", None),
                task(
                    "ssh-script",
                    content,
                    "",
                    &["box-1"],
                    "login",
                    "idempotent = true"
                )
                .replace("retries = 0", "retries = 2")
            ),
        );
        let op = run_once(&d);
        assert_eq!(op["state"], "failed", "{op}");
        assert_eq!(runs(mark), expected, "{mark}: {}", error(&op));
    }
}

/// Dropbear runs scripts and expect templates, and a cancelled script
/// leaves nothing behind there either.
#[test]
fn dropbear_runs_scripts_and_expect_templates_and_a_cancel_leaves_nothing_behind() {
    let dropbear = Sshd::start_dropbear();
    let d = DataDir::new();
    let base = format!(
        "{}{}{}",
        places(""),
        device("small", &dropbear, ""),
        password_login("login", None)
    );
    import(
        &d,
        &format!(
            "{base}{}",
            task(
                "ssh-script",
                "echo dropbear-script\nexit 4\n",
                "",
                &["small"],
                "login",
                ""
            )
        ),
    );
    let op = run_once(&d);
    assert_eq!(op["exit_status"], 4, "{}", error(&op));
    assert!(logs(&d, &op).contains("dropbear-script"));

    import(
        &d,
        &format!(
            "{base}{}",
            task(
                "ssh-expect",
                "expect \"*$\" timeout 10\nexec \"echo dropbear-$((40+2))\"\nexpect \"*dropbear-42*\" timeout 10\nend\n",
                "",
                &["small"],
                "login",
                ""
            )
        ),
    );
    let op = run_once(&d);
    assert_eq!(op["state"], "succeeded", "{}", error(&op));

    import(
        &d,
        &format!(
            "{base}{}",
            task(
                "ssh-script",
                "sleep 298 &\nsleep 299\n",
                "",
                &["small"],
                "login",
                "timeout = 120"
            )
        ),
    );
    let before = history(&d).len();
    d.run(&["request", "run"]);
    eventually("the script never ran", Duration::from_secs(15), || {
        remote_processes("sleep 299") == 1
    });
    let id = history(&d)[0]["id"].to_string();
    d.ok(&["cancel", &id]);
    let op = wait_final(&d, before + 1, Duration::from_secs(20))[0].clone();
    assert_eq!(op["state"], "cancelled", "{op}");
    eventually(
        "a process outlived the cancelled operation on Dropbear",
        Duration::from_secs(5),
        || remote_processes("sleep 298") == 0 && remote_processes("sleep 299") == 0,
    );
}

/// A busybox ash login shell: expect prompts match through the cursor
/// query it sends, and a `#!/bin/bash` script runs under bash, not ash.
#[test]
fn busybox_ash_logins_run_expect_templates_and_honour_a_bash_shebang() {
    common::sshd::ensure_ash_user();
    let sshd = Sshd::start("");
    let login = format!(
        "[[credential]]\nname = \"login\"\nusername = \"{}\"\npassword = \"{TEST_PASSWORD}\"\n",
        common::sshd::ASH_USER
    );
    let base = format!("{}{}{login}", places(""), device("router", &sshd, ""));
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{base}{}",
            task(
                "ssh-expect",
                "expect \"*$ \" timeout 10\nexec \"echo ash-$((40+2))\"\nexpect \"*ash-42*$ \" timeout 10\nend\n",
                "",
                &["router"],
                "login",
                ""
            )
        ),
    );
    let op = run_once(&d);
    assert_eq!(op["state"], "succeeded", "{}", error(&op));
    for (content, expected) in [
        ("#!/bin/bash\necho \"bash=[$BASH_VERSION]\"\n", "bash=[5."),
        // Positive control: without the #! line, ash runs it.
        ("echo \"bash=[$BASH_VERSION]\"\n", "bash=[]"),
    ] {
        import(
            &d,
            &format!(
                "{base}{}",
                task("ssh-script", content, "", &["router"], "login", "")
            ),
        );
        let op = run_once(&d);
        assert_eq!(op["state"], "succeeded", "{}", error(&op));
        let out = logs(&d, &op);
        assert!(out.contains(expected), "{expected}: {out}");
    }
}

/// The seed document's own template ("Linux - Restart services"),
/// verbatim: `sudo su` answered with the credential's password, a root
/// shell, `end` leaving both shells within a second of the last command;
/// the password is never in the output.
#[test]
fn the_seed_template_with_a_real_sudo_su_runs_end_to_end() {
    common::sshd::ensure_sudo_rules();
    let sshd = Sshd::start("");
    let seed = "#Check status of all services\nexpect \"*$\"\nexec \"service --status-all\"\n#Access root user\nexpect \"*$\"\nexec \"sudo su\"\n\
                #Enter root user password\nexpect \"*:\"\nexec \"[#AUTH_PASSWORD#]\"\n#Stop service\nexpect \"*#\"\nexec \"service [#VARIAVEL#] stop\"\n\
                #Display service status\nexpect \"*#\"\nexec \"service [#VARIAVEL#] status\"\n#Restart service\nexpect \"*#\"\nexec \"service [#VARIAVEL#] restart\"\n\
                #End task execution\nexpect \"*#\"\nend\n";
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}",
            places(""),
            device("linux-1", &sshd, ""),
            password_login("login", None),
            task(
                "ssh-expect",
                seed,
                "[[template.variable]]\nname = \"VARIAVEL\"\npattern = \"[a-z0-9-]+\"",
                &["linux-1"],
                "login",
                "timeout = 120"
            )
        ),
    );
    let _ = std::fs::remove_file("/run/gh-demo.restarted");
    d.run(&["request", "run", "--var", "VARIAVEL=gh-demo"]);
    let op = wait_final(&d, 1, Duration::from_secs(120))[0].clone();
    assert_eq!(op["state"], "succeeded", "{}", error(&op));
    assert_eq!(op["exit_status"], 0, "{op}");
    let out = logs(&d, &op);
    for line in ["gh-demo stopped", "gh-demo is running", "gh-demo restarted"] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(!out.contains(TEST_PASSWORD), "the password leaked: {out}");
    // Root ran the restart: the init script's mark is root's, and `end`
    // left the root shell and the login shell within a second of it.
    let restarted: f64 = std::fs::read_to_string("/run/gh-demo.restarted")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let finished = chrono::DateTime::parse_from_rfc3339(op["finished_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0;
    let after = finished - restarted;
    eprintln!("end took {after:.3} s after the last command");
    assert!(
        after < 1.0,
        "`end` took {after:.2} s after the last command"
    );
}

/// `pty = true` is what sudo with `requiretty` needs: without it sudo
/// refuses ("you must have a tty"), with it the command runs.
#[test]
fn sudo_with_requiretty_runs_in_a_script_with_a_pty() {
    common::sshd::ensure_sudo_rules();
    let sshd = Sshd::start("");
    for (pty, expected) in [(false, "must have a tty"), (true, "uid=0(root)")] {
        let d = DataDir::new();
        import(
            &d,
            &format!(
                "{}{}{}{}",
                places(""),
                device("linux-1", &sshd, ""),
                password_login("login", None),
                task(
                    "ssh-script",
                    "sudo -n /usr/bin/id\n",
                    &format!("pty = {pty}"),
                    &["linux-1"],
                    "login",
                    ""
                )
            ),
        );
        let op = run_once(&d);
        let out = logs(&d, &op);
        assert!(out.contains(expected), "pty = {pty}: {out}");
    }
}

/// A host that asks for a key and then a password by keyboard-interactive
/// (`AuthenticationMethods publickey,keyboard-interactive`) is logged in to
/// with both from the credential; with the key alone it is refused,
/// naming what the server still wants.
#[test]
fn a_key_then_keyboard_interactive_host_takes_both() {
    let sshd =
        Sshd::start_keyboard_interactive("AuthenticationMethods publickey,keyboard-interactive");
    let key = sshd.client_key();
    for (with_password, ok) in [(true, true), (false, false)] {
        let d = DataDir::new();
        let login = format!(
            "[[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\nprivate_key_file = \"{}\"\n{}\n",
            key.display(),
            if with_password {
                format!("password = \"{TEST_PASSWORD}\"")
            } else {
                String::new()
            }
        );
        import(
            &d,
            &format!(
                "{}{}{login}{}",
                places(""),
                device("two-step", &sshd, ""),
                task(
                    "ssh-script",
                    "echo both-factors\n",
                    "",
                    &["two-step"],
                    "login",
                    ""
                )
            ),
        );
        let op = run_once(&d);
        if ok {
            assert_eq!(op["state"], "succeeded", "{}", error(&op));
        } else {
            let e = error(&op);
            assert!(e.contains("it offers keyboard-interactive"), "{e}");
        }
    }
}

/// Each operation keeps a debug trace apart from its output: the SSH
/// negotiation, the login, each expect step (redacted) and the attempt's
/// timing. `logs --debug` shows it to holders of view-execution-debug
/// only; plain `logs` and everyone else see the output alone.
#[test]
fn the_debug_trace_shows_negotiation_and_steps_only_to_who_may_see_it() {
    let sshd = Sshd::start("");
    let d = DataDir::new();
    import(
        &d,
        &format!(
            "{}{}{}{}[[role]]\nname = \"watcher\"\ngrants = [{{ action = \"view-executions\" }}]\n\
             [[role]]\nname = \"debugger\"\ngrants = [{{ action = \"view-executions\" }}, {{ action = \"view-execution-debug\", environments = [\"lab\"] }}]\n\
             [[user]]\nlogin = \"wanda\"\nroles = [\"User\", \"watcher\"]\n\
             [[user]]\nlogin = \"dave\"\nroles = [\"User\", \"debugger\"]\n",
            places(""),
            device("box-1", &sshd, ""),
            password_login("login", None),
            task(
                "ssh-expect",
                "expect \"*$ \" timeout 10\nexec \"echo [#AUTH_PASSWORD#] > /dev/null\"\nexpect \"*$ \" timeout 10\nend\n",
                "",
                &["box-1"],
                "login",
                ""
            )
        ),
    );
    let op = run_once(&d);
    assert_eq!(op["state"], "succeeded", "{}", error(&op));
    let id = op["id"].to_string();
    let trace = d.ok(&["logs", &id, "--debug"]);
    for line in [
        "[box-1 debug] connecting to 127.0.0.1:",
        "offering kex ",
        "session up in ",
        "host key ssh-ed25519 SHA256:",
        &format!("logged in as {TEST_USER} with password"),
        "[box-1 debug] line 2: exec \"echo [#AUTH_PASSWORD#] > /dev/null\"",
        "line 3: expect \"*$ \" (up to 10 s)",
        "line 3: matched after ",
        "attempt 1 of 1 took ",
    ] {
        assert!(trace.contains(line), "{line:?} not in:\n{trace}");
    }
    assert!(
        !trace.contains(TEST_PASSWORD),
        "the trace holds the password"
    );
    // Without --debug, the output alone.
    let plain = d.ok(&["logs", &id]);
    assert!(!plain.contains("debug]"), "{plain}");
    assert!(plain.contains("exit status 0"), "{plain}");
    // view-executions alone sees the output, not the trace.
    let refused = d.fails_as("wanda", &["logs", &id, "--debug"]);
    assert!(refused.contains("view-execution-debug"), "{refused}");
    assert!(d.ok_as("wanda", &["logs", &id]).contains("exit status 0"));
    // With view-execution-debug in the task's environment: the trace.
    assert!(d
        .ok_as("dave", &["logs", &id, "--debug"])
        .contains("session up in "));
}

/// A device reached through another uses that device's credential: a
/// device manager in one environment cannot route a device through a
/// bastion of another environment they may not change.
#[test]
fn routing_a_device_through_a_bastion_needs_the_right_to_change_the_bastion() {
    let d = DataDir::new();
    let device = |name: &str, env: &str, extra: &str| {
        format!(
            "[[device]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nenvironment = \"{env}\"\nsystem = \"box\"\n{extra}\n"
        )
    };
    import(
        &d,
        &format!(
            "[[environment]]\nname = \"lab\"\n[[environment]]\nname = \"prod\"\n[[system]]\nname = \"box\"\n{}{}\
             [[role]]\nname = \"lab-devices\"\ngrants = [{{ action = \"manage-devices\", environments = [\"lab\"] }}, {{ action = \"view-devices\" }}]\n\
             [[user]]\nlogin = \"lena\"\nroles = [\"User\", \"lab-devices\"]\n",
            device("prod-jump", "prod", ""),
            device("lab-jump", "lab", "")
        ),
    );
    let file = d.write(
        "mine.toml",
        &device("lab-box", "lab", "via = \"prod-jump\""),
    );
    let refused = d.fails_as("lena", &["import", file.to_str().unwrap()]);
    assert!(refused.contains("through device 'prod-jump'"), "{refused}");
    assert!(refused.contains("manage-devices"), "{refused}");
    // Positive control: through a bastion of her own environment.
    let file = d.write("mine.toml", &device("lab-box", "lab", "via = \"lab-jump\""));
    d.ok_as("lena", &["import", file.to_str().unwrap()]);
}
