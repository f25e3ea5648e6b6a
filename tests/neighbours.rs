//! Hostile local users on a shared jump host. The service runs under its
//! own OS account; the attacks run as other OS accounts (a stranger who is
//! not a Gatehouse user, an approver, a Superuser), through the socket every
//! local account can reach. Each test asserts what the attack costs the
//! server and that the people next to it are still served.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::service::{ensure_accounts, Service, ALICE, BOB, EVE, SERVICE};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PEOPLE: &str = r#"
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
name = "hello"
executor = "local"
content = "echo hello"
[[task]]
name = "hello"
template = "hello"
environment = "lab"
system = "tools"
devices = ["jump"]
credential = "none"
[[role]]
name = "hello-runner"
resources = [{ kind = "task", name = "hello", levels = ["read", "run"] }]
# The task runs on the jump host itself: that is its own permission.
grants = [{ action = "run-local" }]
[[role]]
name = "people"
grants = [{ action = "manage-users" }]
[[policy]]
name = "lab"
users = ["gh-alice"]
environments = ["lab"]
requires_approval = true
requires_mfa = true
approvers = [{ user = "gh-bob", level = 1 }]
[[user]]
login = "gh-alice"
roles = ["User", "hello-runner", "people"]
[[user]]
login = "gh-bob"
roles = ["User", "Superuser"]
"#;

fn shared(config: Option<&str>) -> Service {
    ensure_accounts();
    let service = Service::start(Some(SERVICE), &[], config);
    let people = service.write("people.toml", PEOPLE);
    service.ok_as(Some(SERVICE), &["import", people.to_str().unwrap()]);
    service
}

/// The attacker: this test binary run again as another OS user, with the
/// attack in its environment. Ignored in a plain run; the tests below start it.
#[test]
#[ignore = "started by the other tests as an unprivileged OS user"]
fn attacker() {
    let attack = std::env::var("GH_ATTACK").expect("GH_ATTACK names the attack");
    let socket = std::env::var("GH_SOCKET").expect("GH_SOCKET");
    let count: usize = std::env::var("GH_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let hold = Duration::from_secs(
        std::env::var("GH_HOLD")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(5),
    );
    let mut held = Vec::new();
    let mut opened = 0;
    for _ in 0..count {
        match attack.as_str() {
            // A hello that announces 60 MiB, then 64 KiB of it.
            "big-hello" => {
                let Ok(mut s) = UnixStream::connect(&socket) else {
                    continue;
                };
                let _ = s.write_all(&(60u32 * 1024 * 1024).to_be_bytes());
                let _ = s.write_all(&vec![b'A'; 64 * 1024]);
                held.push(s);
            }
            // A connection that never says hello.
            "silent" => {
                let Ok(s) = UnixStream::connect(&socket) else {
                    continue;
                };
                held.push(s);
            }
            // A fake server: everything sent to it is written to GH_CAUGHT.
            "fake-server" => {
                let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
                std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
                listener.set_nonblocking(true).unwrap();
                let caught = std::env::var("GH_CAUGHT").unwrap();
                println!("opened 1");
                std::io::stdout().flush().unwrap();
                let until = Instant::now() + hold;
                let mut got = Vec::new();
                while Instant::now() < until {
                    if let Ok((mut s, _)) = listener.accept() {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::fs::write(caught, &got).unwrap();
                return;
            }
            other => panic!("unknown attack {other}"),
        }
        opened += 1;
    }
    println!("opened {opened}");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(hold);
    drop(held);
}

/// Starts [`attacker`] as `user`; returns once it says how many it opened.
fn attack(service: &Service, user: &str, env: &[(&str, &str)]) -> (Child, usize) {
    // Other accounts can't reach the build directory: the binary goes beside the service's.
    let exe = service.base.path().join("neighbours-attacker");
    if !exe.exists() {
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--"])
        .arg(&exe)
        .args([
            "--exact",
            "attacker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GH_SOCKET", &service.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut text = String::new();
    let mut byte = [0u8; 1];
    let until = Instant::now() + Duration::from_secs(30);
    while !text.contains("opened ") || !text.ends_with('\n') {
        assert!(Instant::now() < until, "the attacker did not start: {text}");
        if out.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        text.push(byte[0] as char);
    }
    let opened = text
        .lines()
        .find_map(|l| l.split("opened ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("attacker said: {text}"));
    (child, opened)
}

/// Runs `whoami` as ALICE and says how long it took.
fn alice_is_served(service: &Service) -> Duration {
    let started = Instant::now();
    let out = service.ok_as(Some(ALICE), &["whoami"]);
    assert!(out.starts_with("gh-alice"), "{out}");
    started.elapsed()
}

#[test]
fn oversized_hellos_are_refused_before_they_cost_memory_and_others_are_served() {
    let service = shared(None);
    // Warm up, then take the baseline.
    for _ in 0..5 {
        alice_is_served(&service);
    }
    let rss_before = service.server_rss_kib();
    eprintln!("rss after warm-up {rss_before} KiB");
    let log_before = service.log_bytes();
    // A stranger (not a Gatehouse user) announces 60 MiB in each of 8 hellos, four rounds.
    for _ in 0..4 {
        let (mut child, opened) = attack(
            &service,
            EVE,
            &[
                ("GH_ATTACK", "big-hello"),
                ("GH_COUNT", "8"),
                ("GH_HOLD", "1"),
            ],
        );
        assert_eq!(opened, 8);
        eprintln!("rss under attack {} KiB", service.server_rss_kib());
        assert!(alice_is_served(&service) < Duration::from_secs(1));
        child.wait().unwrap();
    }
    let rss_after = service.server_rss_kib();
    // Before: 59 MB -> 551 MB. A hello is at most 4 KiB now.
    assert!(
        rss_after < rss_before + 16 * 1024,
        "server memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    let grown = service.log_bytes() - log_before;
    assert!(grown < 16 * 1024, "the log grew by {grown} bytes");
    eprintln!("rss {rss_before} -> {rss_after} KiB, log +{grown} bytes");
}

#[test]
fn a_stranger_holding_silent_connections_is_capped_and_timed_out_while_alice_is_served() {
    // The stranger may hold at most 32; more are refused at once.
    let service = shared(None);
    let log_before = service.log_bytes();
    let (child, opened) = attack(
        &service,
        EVE,
        &[
            ("GH_ATTACK", "silent"),
            ("GH_COUNT", "130"),
            ("GH_HOLD", "8"),
        ],
    );
    assert_eq!(
        opened, 130,
        "connecting itself is not refused by the kernel"
    );
    let served = alice_is_served(&service);
    assert!(served < Duration::from_secs(1), "alice waited {served:?}");
    // The refusals say why, to the stranger's own client too.
    let refused = service.fails_as(Some(EVE), &["whoami"]);
    assert!(
        refused.contains("already has 32 connections open"),
        "{refused}"
    );
    let mut child = child;
    child.wait().unwrap();
    let grown = service.log_bytes() - log_before;
    assert!(grown < 16 * 1024, "the log grew by {grown} bytes");
    eprintln!("log +{grown} bytes for 130 silent connections");
}

#[test]
fn out_of_descriptors_the_server_neither_spins_nor_floods_its_log_and_recovers() {
    // 128 descriptors and a cap above them: the process runs out.
    ensure_accounts();
    let mut service = Service::start_limited(
        Some(SERVICE),
        128,
        Some("[limits]\nconnections_per_user = 500\n"),
    );
    let people = service.write("people.toml", PEOPLE);
    service.ok_as(Some(SERVICE), &["import", people.to_str().unwrap()]);
    let log_before = service.log_bytes();
    let cpu_before = cpu_ticks(service.server_pid());
    let attacked = Instant::now();
    let (mut child, opened) = attack(
        &service,
        EVE,
        &[
            ("GH_ATTACK", "silent"),
            ("GH_COUNT", "130"),
            ("GH_HOLD", "20"),
        ],
    );
    assert_eq!(opened, 130);
    // The stranger keeps her ends open for 20 s, but a hello is due within
    // 5 s: the server closes them and alice is served again well before.
    let until = attacked + Duration::from_secs(15);
    loop {
        let out = service.run_as(Some(ALICE), &["whoami"]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < until, "the server did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered = attacked.elapsed();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the stranger still holds her connections"
    );
    eprintln!("served again {recovered:?} after the attack began");
    child.kill().unwrap();
    child.wait().unwrap();
    // It did run out (the positive control), and said so a few times only.
    let log = service.log_text();
    let said = log.matches("accept failed").count();
    assert!(
        (1..=5).contains(&said),
        "'accept failed' logged {said} times"
    );
    assert!(log.contains("Too many open files"), "{log}");
    let grown = service.log_bytes() - log_before;
    // Before: 9.5 million "accept failed" lines, 1 GB in 11 s.
    assert!(grown < 64 * 1024, "the log grew by {grown} bytes");
    let cpu = cpu_ticks(service.server_pid()) - cpu_before;
    // Spinning on EMFILE for several seconds burns a core (hundreds of ticks).
    assert!(cpu < 300, "the server used {cpu} ticks of CPU");
    eprintln!("log +{grown} bytes, {cpu} CPU ticks while out of descriptors");
    service.stop();
}

/// User and system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_fake_server_in_a_shared_directory_gets_nothing_from_a_client() {
    let service = shared(None);
    // A world-writable directory, as /tmp is.
    let public = service.base.path().join("public");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fake = public.join("gatehouse.sock");
    let caught = public.join("caught");
    let (mut child, _) = attack(
        &service,
        EVE,
        &[
            ("GH_ATTACK", "fake-server"),
            ("GH_SOCKET", fake.to_str().unwrap()),
            ("GH_CAUGHT", caught.to_str().unwrap()),
            ("GH_HOLD", "4"),
        ],
    );
    assert!(fake.exists());
    let secret = "Tr1cky-$ecret-for-the-fake";
    let creds = service.write(
        "creds.toml",
        &format!("[[credential]]\nname = \"db\"\nusername = \"dba\"\npassword = \"{secret}\"\n"),
    );
    let out = Command::new("runuser")
        .args(["-u", BOB, "--"])
        .arg(&service.bin)
        .arg("--connect")
        .arg(&fake)
        .env("HOME", "/nonexistent")
        .env("GATEHOUSE_SERVICE_ACCOUNT", SERVICE)
        .args(["import", creds.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("runs as the OS user 'gh-eve'"),
        "the refusal names who runs the socket: {err}"
    );
    child.wait().unwrap();
    let got = std::fs::read(&caught).unwrap();
    assert!(
        got.is_empty(),
        "the fake server received {} bytes",
        got.len()
    );
    // Positive control: the same import through the real socket works.
    service.ok_as(Some(BOB), &["import", creds.to_str().unwrap()]);
}

/// The current code for an otpauth:// URI (the first line of totp-enroll).
fn current_code(enrolled: &str) -> String {
    let uri = enrolled.lines().next().unwrap();
    totp_rs::TOTP::from_url_unchecked(uri.trim())
        .unwrap()
        .generate_current()
        .unwrap()
}

fn audit_actions(service: &Service, action: &str) -> usize {
    service
        .ok_as(Some(SERVICE), &["audit", "export"])
        .lines()
        .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
        .count()
}

#[test]
fn wrong_codes_lock_the_approver_out_and_the_lockout_is_one_audit_event() {
    let service = shared(None);
    let enrolled = service.ok_as(Some(BOB), &["user", "totp-enroll", BOB]);
    let request = |justification: &str| -> String {
        let out = service.ok_as(
            Some(ALICE),
            &["request", "hello", "--justification", justification],
        );
        // "request N: waiting for approval at level 1"
        out.split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("{out}"))
            .trim_end_matches(':')
            .to_string()
    };
    // Positive control: the right code approves.
    let first = request("one");
    service.ok_as(
        Some(BOB),
        &["approve", &first, "--totp", &current_code(&enrolled)],
    );
    let second = request("two");
    let started = Instant::now();
    let mut locked_at = None;
    for attempt in 1..=40 {
        let err = service.fails_as(Some(BOB), &["approve", &second, "--totp", "000000"]);
        if err.contains("too many wrong TOTP codes") {
            locked_at.get_or_insert(attempt);
        } else {
            assert!(err.contains("wrong"), "{err}");
        }
    }
    // Five wrong codes, then nothing is checked: the right code is refused too.
    assert_eq!(locked_at, Some(6));
    let err = service.fails_as(
        Some(BOB),
        &["approve", &second, "--totp", &current_code(&enrolled)],
    );
    assert!(err.contains("try again in"), "{err}");
    eprintln!("40 wrong codes answered in {:?}", started.elapsed());
    assert_eq!(audit_actions(&service, "user.totp-lockout"), 1);
    // Five refusals were audited, not forty.
    assert_eq!(audit_actions(&service, "request.approve.refused"), 5);
}

#[test]
fn the_second_factor_is_replaced_only_with_a_code_or_by_an_audited_reset_the_user_hears_of() {
    let service = shared(None);
    let enrolled = service.ok_as(Some(BOB), &["user", "totp-enroll", BOB]);
    let recovery: Vec<String> = enrolled
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_string)
        .collect();
    assert_eq!(recovery.len(), 8, "{enrolled}");
    // Holding bob's OS session is not enough to replace his factor.
    let err = service.fails_as(Some(BOB), &["user", "totp-enroll", BOB]);
    assert!(err.contains("already has a second factor"), "{err}");
    // A recovery code replaces it, once.
    let again = service.ok_as(
        Some(BOB),
        &["user", "totp-enroll", BOB, "--totp", &recovery[0]],
    );
    assert!(again.starts_with("otpauth://"));
    assert_ne!(again.lines().next(), enrolled.lines().next());
    // Codes from the old enrolment are gone with it.
    let err = service.fails_as(
        Some(BOB),
        &["user", "totp-enroll", BOB, "--totp", &recovery[1]],
    );
    assert!(err.contains("recovery code is wrong"), "{err}");
    // A current code replaces it too.
    let third = service.ok_as(
        Some(BOB),
        &["user", "totp-enroll", BOB, "--totp", &current_code(&again)],
    );
    // An administrator removes it without ever seeing a secret, audited...
    let reset = service.ok_as(Some(ALICE), &["user", "totp-reset", BOB]);
    assert!(!reset.contains("otpauth"), "{reset}");
    assert_eq!(audit_actions(&service, "user.totp-reset"), 1);
    // ...and bob is told at his next command, once.
    let out = service.run_as(Some(BOB), &["whoami"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("your second factor was removed by 'gh-alice'"),
        "{err}"
    );
    let out = service.run_as(Some(BOB), &["whoami"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("second factor"));
    // He enrols again himself; the third secret no longer works.
    assert!(service
        .ok_as(Some(BOB), &["user", "totp-enroll", BOB])
        .starts_with("otpauth://"));
    assert_ne!(third.lines().next(), None);
}

#[test]
fn a_backup_is_written_by_the_caller_never_over_a_planted_link_or_the_key() {
    let service = shared(None);
    let key = service.data().join("store.key");
    let key_before = std::fs::read(&key).unwrap();
    let public = service.base.path().join("drop");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // The stranger plants a link where the Superuser will write.
    let planted = public.join("nightly.bak");
    let out = Command::new("runuser")
        .args(["-u", EVE, "--", "ln", "-s"])
        .arg(&key)
        .arg(&planted)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = service.fails_as(Some(BOB), &["backup", planted.to_str().unwrap()]);
    assert!(err.contains("cannot create"), "{err}");
    // Pointing the backup at the key itself changes nothing either.
    let err = service.fails_as(Some(SERVICE), &["backup", key.to_str().unwrap()]);
    assert!(err.contains("cannot create"), "{err}");
    assert_eq!(
        std::fs::read(&key).unwrap(),
        key_before,
        "the key file changed"
    );
    // Positive control: a new file is written, owned by the person who asked, 0600.
    let mine = public.join("bob.bak");
    let out = service.ok_as(Some(BOB), &["backup", mine.to_str().unwrap()]);
    assert!(out.contains("backed up"), "{out}");
    let meta = std::fs::metadata(&mine).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), uid_of(BOB));
    let head = std::fs::read(&mine).unwrap();
    assert!(head.starts_with(b"GATEHOUSE-BACKUP"));
    // Nothing else was left in the folder (no .partial).
    let names: Vec<String> = std::fs::read_dir(&public)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // A non-Superuser is refused, and their file does not stay behind.
    let alices = public.join("alice.bak");
    let err = service.fails_as(Some(ALICE), &["backup", alices.to_str().unwrap()]);
    assert!(err.contains("only a Superuser"), "{err}");
    assert!(!alices.exists());
}

#[test]
fn root_cannot_start_a_personal_server_on_the_services_data_directory() {
    let mut service = shared(None);
    service.stop();
    let listing = |dir: &Path| -> Vec<(String, u32)> {
        let mut all = Vec::new();
        for entry in walk(dir) {
            let meta = std::fs::symlink_metadata(&entry).unwrap();
            all.push((entry.display().to_string(), meta.uid()));
        }
        all.sort();
        all
    };
    let before = listing(service.data());
    let out = Command::new(&service.bin)
        .arg("--data-dir")
        .arg(service.data())
        .arg("whoami")
        .env("HOME", "/nonexistent")
        .env_remove("GATEHOUSE_SOCKET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("belongs to the OS user 'gh-svc'"), "{err}");
    assert_eq!(listing(service.data()), before, "root left files behind");
    // Nor by starting the server itself.
    let out = Command::new(&service.bin)
        .arg("--data-dir")
        .arg(service.data())
        .args(["serve", "--personal"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to the OS user 'gh-svc'"));
    assert_eq!(listing(service.data()), before, "root left files behind");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
