//! Audit events leave the box the way a SIEM expects: RFC 5424 syslog over
//! TCP (both framings) and UDP to a real rsyslog on loopback, and JSON lines
//! to a file. A collector that is down loses nothing sent over TCP, and the
//! copy outside anchors the chain: `audit verify --against` catches a local
//! log that was rolled back.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::service::Service;
use common::DataDir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "Forward-S3cret-Pw-91";

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// A real rsyslogd listening on loopback and writing what it receives,
/// one line per message, to a file.
struct Rsyslog {
    dir: PathBuf,
    out: PathBuf,
    tcp: u16,
    udp: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn new(dir: &Path) -> Rsyslog {
        let dir = dir.join("rsyslog");
        std::fs::create_dir_all(&dir).unwrap();
        Rsyslog {
            out: dir.join("received.log"),
            dir,
            tcp: free_port(false),
            udp: free_port(true),
            child: None,
        }
    }

    fn start(&mut self) {
        let conf = self.dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
template(name="gh" type="string" string="%inputname% %protocol-version% %app-name% %msgid% %structured-data% %msg%\n")
ruleset(name="gh") {{ action(type="omfile" file="{out}" template="gh") }}
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="gh")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="gh")
"#,
                dir = self.dir.display(),
                out = self.out.display(),
                tcp = self.tcp,
                udp = self.udp
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (Debian package rsyslog)");
        self.child = Some(child);
        // Listening when a TCP connection is taken.
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.tcp)).is_err() {
            assert!(Instant::now() < until, "rsyslogd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).output();
            let _ = child.wait();
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until an event with this sequence number came in over `input`.
    fn wait_for(&self, input: &str, seq: u64) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if text
                .lines()
                .any(|l| l.starts_with(input) && l.contains(&format!(" seq=\"{seq}\" ")))
            {
                return text;
            }
            assert!(
                Instant::now() < until,
                "event {seq} never arrived over {input}; received:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

fn records(environment: &str) -> String {
    format!(
        r#"
[[environment]]
name = "{environment}"
[[system]]
name = "tools"
[[device]]
name = "here-{environment}"
address = "127.0.0.1"
environment = "{environment}"
system = "tools"
[[credential]]
name = "svc-{environment}"
username = "svc"
password = "{SECRET}"
[[template]]
name = "report-{environment}"
executor = "local"
content = "echo report for [#ENV#]"
[[template.variable]]
name = "ENV"
default = "{environment}"
[[task]]
name = "report-{environment}"
template = "report-{environment}"
environment = "{environment}"
system = "tools"
devices = ["here-{environment}"]
credential = "svc-{environment}"
"#
    )
}

fn audit_len(service: &Service) -> u64 {
    let out = service.ok_as(None, &["audit", "verify"]);
    out.split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected verify output: {out}"))
}

fn wait_for_file(path: &Path, seq: u64) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(&format!("\"seq\":{seq},")) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "event {seq} never reached {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn audit_events_reach_rsyslog_and_a_file_survive_an_outage_and_anchor_the_chain() {
    let scratch = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::new(scratch.path());
    rsyslog.start();
    let archive = scratch.path().join("archive.jsonl");
    let config = format!(
        r#"
[[forward]]
name = "siem"
kind = "syslog"
transport = "tcp-octet-counting"
address = "127.0.0.1:{tcp}"
facility = "local3"

[[forward]]
name = "siem-lines"
kind = "syslog"
transport = "tcp"
address = "127.0.0.1:{tcp}"

[[forward]]
name = "siem-udp"
kind = "syslog"
transport = "udp"
address = "127.0.0.1:{udp}"

[[forward]]
name = "archive"
kind = "jsonl"
file = "{archive}"
"#,
        tcp = rsyslog.tcp,
        udp = rsyslog.udp,
        archive = archive.display()
    );
    let service = Service::start(None, &[], Some(&config));
    let file = service.write("prod.toml", &records("prod"));
    service.ok_as(None, &["import", file.to_str().unwrap()]);
    let out = service.ok_as(None, &["request", "report-prod", "--wait"]);
    assert!(out.contains("report for prod"), "{out}");

    // Everything so far arrives over each transport and in the file.
    let n = audit_len(&service);
    let received = rsyslog.wait_for("imtcp", n);
    rsyslog.wait_for("imudp", n);
    let archived = wait_for_file(&archive, n);
    for seq in 1..=n {
        let tag = format!(" seq=\"{seq}\" ");
        let over = |input: &str| {
            received
                .lines()
                .filter(|l| l.starts_with(input) && l.contains(&tag))
                .count()
        };
        assert_eq!(
            over("imtcp"),
            2,
            "event {seq}: once per TCP target\n{received}"
        );
        assert_eq!(over("imudp"), 1, "event {seq} over UDP\n{received}");
    }
    // rsyslog parsed them as RFC 5424: version 1, our app name, the action as
    // MSGID, our structured data, the JSON event as the message.
    let finish = received
        .lines()
        .find(|l| l.starts_with("imtcp") && l.contains(" operation.finish ["))
        .unwrap_or_else(|| panic!("no operation result forwarded:\n{received}"));
    assert!(
        finish.starts_with("imtcp 1 gatehouse operation.finish [gatehouse@32473 seq=\""),
        "{finish}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&finish[finish.find('{').unwrap()..]).unwrap();
    assert_eq!(json["action"], "operation.finish");
    assert!(
        json["details"].as_str().unwrap().starts_with("succeeded"),
        "{json}"
    );
    assert_eq!(json["hash"].as_str().unwrap().len(), 64);
    assert!(
        !received.contains(SECRET) && !archived.contains(SECRET),
        "a secret left the box"
    );
    assert_eq!(archived.lines().count() as u64, n);

    for copy in [&rsyslog.out, &archive] {
        let out = service.ok_as(
            None,
            &["audit", "verify", "--against", copy.to_str().unwrap()],
        );
        assert!(
            out.contains(&format!("{n} forwarded events, 1 to {n}, agree")),
            "{out}"
        );
    }

    // A backup now is what a rollback would restore.
    let backup = scratch.path().join("before.ghb");
    service.ok_as(None, &["backup", backup.to_str().unwrap()]);

    // The collector goes down; work goes on, and nothing waits for it.
    rsyslog.stop();
    let file = service.write("stage.toml", &records("stage"));
    let started = Instant::now();
    service.ok_as(None, &["import", file.to_str().unwrap()]);
    service.ok_as(None, &["request", "report-stage", "--wait"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "work waited for the collector"
    );
    let m = audit_len(&service);
    assert!(m > n);
    wait_for_file(&archive, m);
    // Back up: what it missed over TCP arrives, from where each target stopped.
    std::thread::sleep(Duration::from_millis(500));
    rsyslog.start();
    let received = rsyslog.wait_for("imtcp", m);
    for seq in n + 1..=m {
        let tag = format!(" seq=\"{seq}\" ");
        let tcp = received
            .lines()
            .filter(|l| l.starts_with("imtcp") && l.contains(&tag))
            .count();
        assert!(
            tcp >= 2,
            "event {seq} was lost by a TCP target during the outage\n{received}"
        );
    }
    let out = service.ok_as(
        None,
        &[
            "audit",
            "verify",
            "--against",
            rsyslog.out.to_str().unwrap(),
        ],
    );
    assert!(out.contains(&format!("to {m}, agree")), "{out}");

    // Someone restores the old backup over the store: the chain still
    // verifies on its own, but the copy outside shows what is missing.
    let restored = DataDir::new();
    std::fs::copy(
        service.data().join("store.key"),
        restored.path().join("store.key"),
    )
    .unwrap();
    restored.ok(&["restore", backup.to_str().unwrap()]);
    assert!(restored.ok(&["audit", "verify"]).contains("chain intact"));
    let err = restored.fails(&["audit", "verify", "--against", archive.to_str().unwrap()]);
    assert!(err.contains("audit log does NOT match"), "{err}");
    assert!(err.contains("truncated or rolled back"), "{err}");
    // …and once the rolled-back log has grown past it again, the events
    // under the same numbers differ.
    for env in ["a", "b", "c", "d", "e", "f"] {
        let file = restored.write(&format!("{env}.toml"), &records(env));
        restored.ok(&["import", file.to_str().unwrap()]);
    }
    let err = restored.fails(&["audit", "verify", "--against", archive.to_str().unwrap()]);
    assert!(
        err.contains(&format!("event {} differs from the copy", n + 1)),
        "{err}"
    );
}

#[test]
fn a_bad_forward_table_is_named() {
    let d = DataDir::new();
    let cases = [
        ("[[forward]]\nname = \"x\"\nkind = \"syslog\"\n", "forward[1] (x): key `address` is required"),
        (
            "[[forward]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"127.0.0.1:514\"\ntransport = \"tls\"\n",
            "key `transport`: 'tls' is not one of udp, tcp, tcp-octet-counting",
        ),
        ("[[forward]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"nowhere\"\n", "key `address`: 'nowhere' is not host:port"),
        ("[[forward]]\nname = \"x\"\nkind = \"kafka\"\n", "key `kind`: 'kafka' is not one of syslog, jsonl"),
        ("[[forward]]\nname = \"x\"\nkind = \"jsonl\"\n", "key `file` is required for jsonl"),
        (
            "[[forward]]\nname = \"x\"\nkind = \"jsonl\"\nfile = \"/tmp/a\"\n[[forward]]\nname = \"x\"\nkind = \"jsonl\"\nfile = \"/tmp/b\"\n",
            "forward[2] (x): key `name`: another target has this name",
        ),
        ("[[forward]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"h:1\"\nfacility = \"mail\"\n", "key `facility`: 'mail' is not one of"),
    ];
    for (text, expected) in cases {
        let path = d.write("config.toml", text);
        let err = d.fails(&["config", "check", path.to_str().unwrap()]);
        assert!(err.contains(expected), "{text}\n→ {err}");
    }
}

#[test]
fn verify_against_refuses_a_file_with_no_events() {
    let d = DataDir::new();
    d.ok(&["whoami"]);
    let path = d.write("empty.log", "nothing to see\n");
    let err = d.fails(&["audit", "verify", "--against", path.to_str().unwrap()]);
    assert!(
        err.contains("holds no Gatehouse audit events (1 lines read)"),
        "{err}"
    );
    let missing = d.fails(&["audit", "verify", "--against", "/nonexistent/file"]);
    assert!(
        missing.contains("cannot read /nonexistent/file"),
        "{missing}"
    );
}
