//! The secret property: a credential's password, whatever characters it
//! holds, never leaves its box. Random secrets (printable ASCII with quotes,
//! backslashes, `$` and backticks, and Unicode) go through templates that
//! print them whole, split across reads and streams with an escape sequence
//! in the middle, base64-encoded, in a failure's error, and into an expect
//! step that times out; then every place a person or a collector can look is
//! searched for the secret and each of its common encodings: stored output,
//! history, the audit export, a SIEM file, the server's and clients' logs,
//! every file of the store, a backup, every CLI output, every TUI screen, and
//! the process lists of the jump host and the target while the runs go on.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::leaks::{leak, watch_processes};
use common::sshd::{Sshd, TEST_USER};
use common::{files_under, DataDir};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const TEMPLATES: &str = r#"
[[template]]
name = "whole"
executor = "ssh-script"
content = '''
printf 'whole: %s\n' [#AUTH_PASSWORD#]
'''
[[template]]
name = "split"
executor = "ssh-script"
content = '''
p=[#AUTH_PASSWORD#]
printf 'split: %s' "${p%"${p#??}"}"
printf '\033[1;31m' >&2
sleep 0.3
printf '%s\n' "${p#??}" >&2
'''
[[template]]
name = "encoded"
executor = "ssh-script"
content = '''
printf '%s' [#AUTH_PASSWORD#] | base64
sleep 0.5
'''
[[template]]
name = "fails"
executor = "ssh-script"
content = '''
printf 'oops %s\n' [#AUTH_PASSWORD#] >&2
exit 7
'''
[[template]]
name = "times-out"
executor = "ssh-expect"
content = '''
exec "read -r line"
exec "[#AUTH_PASSWORD#]"
expect "*[#AUTH_PASSWORD#]*" timeout 15
expect "never-shown-*" timeout 2
'''
"#;

fn records(sshd: &Sshd, secret: &str) -> String {
    let secret = toml::Value::String(secret.to_string()).to_string();
    let mut text = format!(
        "[[environment]]\nname = \"lab\"\n[[system]]\nname = \"box\"\n\
         [[device]]\nname = \"target\"\naddress = \"{}\"\nport = {}\nenvironment = \"lab\"\nsystem = \"box\"\nhost_key = \"{}\"\n\
         [[credential]]\nname = \"login\"\nusername = \"{TEST_USER}\"\nprivate_key_file = \"{}\"\npassword = {secret}\n",
        sshd.address,
        sshd.port,
        sshd.host_key_line(),
        sshd.client_key().display()
    );
    text.push_str(TEMPLATES);
    for name in ["whole", "split", "encoded", "fails", "times-out"] {
        text.push_str(&format!(
            "[[task]]\nname = \"{name}\"\ntemplate = \"{name}\"\nenvironment = \"lab\"\nsystem = \"box\"\ncredential = \"login\"\ndevices = [\"target\"]\ntimeout = 20\n"
        ));
    }
    text
}

/// One data directory with its configuration (a SIEM file) and the outputs
/// of every command run against it.
struct World {
    d: DataDir,
    config: PathBuf,
    siem: PathBuf,
    seen: Vec<u8>,
}

impl World {
    fn run(&mut self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = self.d.run(&all);
        self.seen.extend_from_slice(&out.stdout);
        self.seen.extend_from_slice(&out.stderr);
        out
    }

    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Every TUI screen as the Superuser sees it, each first row opened.
fn tui_screens(d: &DataDir) -> String {
    let socket = gatehouse::paths::socket_in(d.path());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::drive::every_screen(&socket, "root"))
        .concat()
}

/// One secret through everything.
fn secret_stays_in_its_box(sshd: &Sshd, secret: &str) {
    let d = DataDir::new();
    let siem = d.scratch.path().join("siem.jsonl");
    let config = d.write(
        "config.toml",
        &format!(
            "[[forward]]\nname = \"siem\"\nkind = \"jsonl\"\nfile = \"{}\"\n",
            siem.display()
        ),
    );
    let mut w = World {
        d,
        config,
        siem,
        seen: Vec::new(),
    };
    let file = w.d.write("records.toml", &records(sshd, secret));
    w.ok(&["import", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_processes(stop.clone());
    for task in ["whole", "split", "encoded", "fails", "times-out"] {
        w.run(&["request", task, "--wait"]);
    }
    stop.store(true, Ordering::Relaxed);
    let processes = watcher.join().unwrap();
    // Positive control: the process watcher did see the scripts' shells.
    assert!(
        processes.windows(9).any(|w| w == b"sleep\x000.5"),
        "the process watcher saw no run"
    );
    if let Some(form) = leak(&processes, secret) {
        panic!("the secret ({form:?}) was in a process's arguments");
    }

    let history = w.ok(&["history", "--json"]);
    let ops: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ops.len(), 5, "{history}");
    let mut outputs = String::new();
    for op in &ops {
        outputs.push_str(&w.ok(&["logs", &op["id"].to_string()]));
    }
    // Positive controls: each template did show its secret, redacted.
    for shown in [
        "whole: [#AUTH_PASSWORD#]",
        "split: [#AUTH_PASSWORD#]",
        "oops [#AUTH_PASSWORD#]",
    ] {
        assert!(outputs.contains(shown), "no {shown:?} in:\n{outputs}");
    }
    assert!(
        history.contains("timed out after 2 s"),
        "the expect step did not time out: {history}"
    );
    w.ok(&["audit", "export"]);
    w.ok(&["requests", "--json"]);
    w.ok(&["export"]);
    let backup = w.d.scratch.path().join("store.backup");
    w.ok(&["backup", backup.to_str().unwrap()]);
    let screens = tui_screens(&w.d);
    assert!(
        screens.contains("[#AUTH_PASSWORD#]"),
        "the TUI showed no output"
    );
    w.ok(&["shutdown"]);

    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("CLI output".into(), std::mem::take(&mut w.seen)),
        ("TUI screens".into(), screens.into_bytes()),
        ("the SIEM file".into(), std::fs::read(&w.siem).unwrap()),
        ("the backup".into(), std::fs::read(&backup).unwrap()),
    ];
    for file in files_under(w.d.path()) {
        if let Ok(bytes) = std::fs::read(&file) {
            places.push((file.display().to_string(), bytes));
        }
    }
    assert!(places.iter().any(|(p, _)| p.contains("server.log")));
    for (place, bytes) in &places {
        if let Some(form) = leak(bytes, secret) {
            panic!("the secret ({form:?}) is in {place}");
        }
    }
}

/// A secret of 8 to 20 characters from printable ASCII, quotes,
/// backslashes, `$`, backticks and a few non-ASCII letters.
fn secret() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range(' ', '~'),
            2 => prop::sample::select(vec!['\'', '"', '\\', '$', '`', '!', '*']),
            1 => prop::sample::select(vec!['é', 'ß', 'ж', '密', '🔑']),
        ],
        8..20,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>())
    // A secret that starts or ends with a space is not what anyone types.
    .prop_filter("no outer spaces", |s| s.trim() == s)
}

#[test]
fn a_secret_never_leaves_its_box() {
    let sshd = Sshd::start("");
    let started = Instant::now();
    let cases: u32 = std::env::var("SECRET_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let failures = Mutex::new(());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&secret(), |secret| {
            let _one_at_a_time = failures.lock().unwrap();
            secret_stays_in_its_box(&sshd, &secret);
            Ok(())
        })
        .unwrap();
    eprintln!("{cases} secrets in {:?}", started.elapsed());
}
