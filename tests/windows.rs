//! Access windows in their own time zone, overnight windows and change
//! freezes, through the real binary against a server whose own zone is
//! UTC (`TZ=UTC` for every command, and so for the personal server the
//! first one starts).

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Datelike, Duration as Days, NaiveDate, TimeZone, Utc, Weekday};
use common::DataDir;
use serde_json::Value;
use std::time::{Duration, Instant};

fn records(policy_extra: &str, more: &str) -> String {
    format!(
        r#"
[[environment]]
name = "production"
[[environment]]
name = "staging"
[[system]]
name = "web"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "production"
system = "web"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "t"
executor = "local"
content = "echo ran"
[[task]]
name = "restart"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
[[role]]
name = "local-runner"
grants = [{{ action = "run-local" }}]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[user]]
login = "bob"
roles = ["User", "local-runner"]
[[policy]]
name = "prod-web"
requires_justification = true
emergency_access = true
users = ["alice"]
environments = ["production"]
{policy_extra}
{more}
"#
    )
}

/// A store served in UTC.
fn setup(policy_extra: &str, more: &str) -> DataDir {
    let mut d = DataDir::new();
    d.env.push(("TZ".into(), "UTC".into()));
    let file = d.write("r.toml", &records(policy_extra, more));
    d.ok(&["import", file.to_str().unwrap()]);
    d
}

fn at(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// Files `restart` for a run at `when`: Ok(stdout) or Err(stderr).
fn request_at(d: &DataDir, when: &str) -> Result<String, String> {
    let out = d.run(&[
        "--as",
        "alice",
        "request",
        "restart",
        "--justification",
        "x",
        "--at",
        when,
    ]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The second Sunday of March next year: when New York moves from EST
/// (UTC−5) to EDT (UTC−4).
fn next_spring_forward() -> NaiveDate {
    let year = Utc::now().year() + 1;
    let first = NaiveDate::from_ymd_opt(year, 3, 1).unwrap();
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    first + Days::days(to_sunday as i64 + 7)
}

fn utc(date: NaiveDate, h: u32, m: u32) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(h, m, 0).unwrap())
}

/// Mon–Fri 08:00–18:00 in New York, judged by a server in UTC: the edges
/// fall at 13:00/23:00 UTC in winter and 12:00/22:00 UTC in summer, on
/// either side of the daylight-saving change.
#[test]
fn a_new_york_window_is_judged_in_new_york_by_a_server_in_utc_across_daylight_saving() {
    let d = setup(
        "timezone = \"America/New_York\"\nrequires_approval = true\napprovers = [{ user = \"bob\", level = 1 }]\n[[policy.window]]\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\nfrom = \"08:00\"\nto = \"18:00\"\n",
        "",
    );
    let sunday = next_spring_forward();
    assert_eq!(sunday.weekday(), Weekday::Sun);
    let friday = sunday - Days::days(2); // EST, UTC−5
    let monday = sunday + Days::days(1); // EDT, UTC−4
    let cases = [
        (utc(friday, 12, 59), false, "Fri 07:59"),
        (utc(friday, 13, 0), true, ""),
        (utc(friday, 22, 59), true, ""),
        (utc(friday, 23, 0), false, "Fri 18:00"),
        (utc(monday, 11, 59), false, "Mon 07:59"),
        // A server reading New York as a fixed UTC−5 would refuse this one.
        (utc(monday, 12, 0), true, ""),
        (utc(monday, 21, 59), true, ""),
        (utc(monday, 22, 0), false, "Mon 18:00"),
    ];
    for (when, admitted, local) in cases {
        match request_at(&d, &at(when)) {
            Ok(out) => assert!(admitted, "{when} was admitted: {out}"),
            Err(err) => {
                assert!(!admitted, "{when} was refused: {err}");
                assert!(
                    err.contains("outside the access window of policy prod-web")
                        && err.contains(&format!("(America/New_York; {local} there)")),
                    "{when}: {err}"
                );
            }
        }
    }
}

/// `days = ["fri"]` from 22:00 to 06:00 is Friday night into Saturday
/// morning: Saturday 05:59 is inside, 06:00 is not, nor is Friday morning.
#[test]
fn an_overnight_window_from_friday_admits_saturday_0559_and_refuses_0600() {
    let d = setup(
        "timezone = \"UTC\"\nrequires_approval = true\napprovers = [{ user = \"bob\", level = 1 }]\n[[policy.window]]\ndays = [\"fri\"]\nfrom = \"22:00\"\nto = \"06:00\"\n",
        "",
    );
    let mut friday = Utc::now().date_naive() + Days::days(2);
    while friday.weekday() != Weekday::Fri {
        friday += Days::days(1);
    }
    let saturday = friday + Days::days(1);
    assert!(request_at(&d, &at(utc(friday, 22, 0))).is_ok());
    assert!(request_at(&d, &at(utc(saturday, 5, 59))).is_ok());
    let err = request_at(&d, &at(utc(saturday, 6, 0))).unwrap_err();
    assert!(
        err.contains("Fri 22:00–06:00 the next day (UTC; Sat 06:00 there)"),
        "{err}"
    );
    let err = request_at(&d, &at(utc(friday, 5, 0))).unwrap_err();
    assert!(err.contains("(UTC; Fri 05:00 there)"), "{err}");
}

fn audit(d: &DataDir) -> Vec<Value> {
    d.ok(&["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A freeze from an hour ago to an hour from now, in UTC, over `envs`.
fn freeze_now(envs: &str) -> (String, String) {
    let now = Utc::now();
    let end = (now + Days::hours(1)).format("%Y-%m-%d %H:%M").to_string();
    let text = format!(
        "[[freeze]]\nname = \"quarter-close\"\nreason = \"books closing\"\nfrom = \"{}\"\nto = \"{end}\"\ntimezone = \"UTC\"\nenvironments = [{envs}]\n",
        (now - Days::hours(1)).format("%Y-%m-%d %H:%M"),
    );
    (text, format!("{end} UTC"))
}

fn run_as(d: &DataDir, user: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--as", user];
    all.extend_from_slice(args);
    d.run(&all)
}

/// During a freeze a request is refused with the freeze's name and end;
/// an emergency request runs, and its audit says it ran in the freeze; a
/// freeze of another environment holds nothing here.
#[test]
fn a_freeze_refuses_a_request_names_itself_and_its_end_and_admits_an_emergency() {
    let (other, _) = freeze_now("\"staging\"");
    let d = setup("", &other);
    // Positive control: a freeze of staging leaves production alone.
    let out = run_as(
        &d,
        "alice",
        &["request", "restart", "--justification", "x", "--wait"],
    );
    assert!(out.status.success(), "{out:?}");

    let (freeze, end) = freeze_now("\"production\"");
    let file = d.write("f.toml", &freeze.replace("quarter-close", "qc-prod"));
    d.ok(&["import", file.to_str().unwrap()]);
    let out = run_as(&d, "alice", &["request", "restart", "--justification", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "freeze 'qc-prod' holds environment 'production' until {end} (books closing): only emergency requests run"
        )),
        "{err}"
    );
    assert!(
        audit(&d).iter().any(|e| e["action"] == "request.refused"
            && e["details"]
                .as_str()
                .unwrap_or("")
                .contains("freeze 'qc-prod'")),
        "the refusal is audited"
    );
    // The emergency runs, flagged as run during the freeze.
    let out = run_as(
        &d,
        "alice",
        &[
            "request",
            "restart",
            "--justification",
            "site down",
            "--emergency",
            "--wait",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ran"));
    let events = audit(&d);
    let emergency = events
        .iter()
        .find(|e| e["action"] == "request.emergency")
        .expect("an emergency event");
    assert!(
        emergency["details"]
            .as_str()
            .unwrap()
            .contains(&format!("during freeze 'qc-prod' (until {end})")),
        "{emergency}"
    );
    // The Dashboard's source: the freeze is a record anyone who sees tasks lists.
    let list =
        String::from_utf8_lossy(&run_as(&d, "alice", &["list", "freezes"]).stdout).into_owned();
    assert!(
        list.contains("qc-prod") && list.contains("production"),
        "{list}"
    );
}

/// An approved run that would start during a freeze does not start (its
/// request is voided naming the freeze), and a due schedule is refused
/// while the freeze lasts, having run before it.
#[test]
fn a_freeze_stops_an_approved_run_and_a_due_schedule() {
    let d = setup(
        "requires_approval = true\napprovers = [{ user = \"bob\", level = 1 }]\n",
        r#"
[[task]]
name = "tick"
template = "t"
environment = "production"
system = "web"
devices = ["here"]
credential = "none"
schedule = "* * * * * *"
"#,
    );
    // Filed and approved before the freeze: the schedule runs.
    let id_of = |out: &str| {
        out.split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches(':')
            .to_string()
    };
    let schedule = id_of(&String::from_utf8_lossy(
        &run_as(
            &d,
            "alice",
            &["request", "tick", "--schedule", "--justification", "x"],
        )
        .stdout,
    ));
    let pending = id_of(&String::from_utf8_lossy(
        &run_as(&d, "alice", &["request", "restart", "--justification", "x"]).stdout,
    ));
    d.ok_as("bob", &["approve", &schedule]);
    let ran = |d: &DataDir| {
        d.ok(&["history", "--json"])
            .lines()
            .filter(|l| l.contains("\"task\":\"tick\""))
            .count()
    };
    let start = Instant::now();
    while ran(&d) == 0 {
        assert!(start.elapsed() < Duration::from_secs(15), "never ran");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (freeze, end) = freeze_now("");
    let file = d.write("f.toml", &freeze);
    d.ok(&["import", file.to_str().unwrap()]);
    // Firings are refused, naming the freeze.
    let start = Instant::now();
    while !audit(&d).iter().any(|e| {
        e["action"] == "task.schedule.refused"
            && e["details"].as_str().unwrap_or("").contains(&format!(
                "freeze 'quarter-close' holds environment 'production' until {end}"
            ))
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no refused firing"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let before = ran(&d);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(before, ran(&d), "a schedule ran during the freeze");

    // The request approved now does not start: voided, naming the freeze.
    d.ok_as("bob", &["approve", &pending]);
    let start = Instant::now();
    loop {
        let requests = d.ok(&["requests", "--json"]);
        let mine = requests
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["id"].as_u64().map(|n| n.to_string()).as_deref() == Some(pending.as_str()))
            .unwrap();
        if mine["state"] == "void" {
            let why = mine["void_reason"].as_str().unwrap_or_default();
            assert!(why.contains("freeze 'quarter-close'"), "{mine}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{mine}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its operation never started: refused at the gate, nothing ran.
    let op: Value = d
        .ok(&["history", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|o| o["task"] == "restart")
        .expect("the refused operation is in the history");
    assert_eq!(op["state"], "failed", "{op}");
    assert_eq!(op["started_at"], Value::Null, "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("did not start") && error.contains("freeze 'quarter-close'"),
        "{op}"
    );
}

/// A freeze whose zone is not one, or whose end is before its start, is
/// refused naming the field and the line.
#[test]
fn a_freeze_with_a_bad_zone_or_an_end_before_its_start_is_refused_by_field() {
    let d = setup("", "");
    let bad = d.write(
        "bad.toml",
        "[[freeze]]\nname = \"x\"\nfrom = \"2027-01-02 00:00\"\nto = \"2027-01-01 00:00\"\ntimezone = \"UTC\"\n",
    );
    let err = d.fails(&["import", bad.to_str().unwrap()]);
    assert!(err.contains("freeze 'x'") && err.contains("`to`"), "{err}");
    assert!(err.contains("must be later than `from`"), "{err}");
    let bad = d.write(
        "bad2.toml",
        "[[freeze]]\nname = \"y\"\nfrom = \"2027-01-01\"\nto = \"2027-01-02\"\ntimezone = \"Mars/Base\"\n",
    );
    let err = d.fails(&["import", bad.to_str().unwrap()]);
    assert!(
        err.contains("timezone") && err.contains("'Mars/Base'"),
        "{err}"
    );
    let bad = d.write(
        "bad3.toml",
        "[[freeze]]\nname = \"z\"\nfrom = \"soon\"\nto = \"2027-01-02\"\ntimezone = \"UTC\"\n",
    );
    let err = d.fails(&["import", bad.to_str().unwrap()]);
    assert!(
        err.contains("line 1") && err.contains("'soon' is not a date and time"),
        "{err}"
    );
}

/// `gatehouse history` with TZ (or the configuration's `timezone`) of
/// the viewer, in their zone.
fn history_in(d: &DataDir, tz: Option<&str>, config: Option<&std::path::Path>) -> String {
    let mut cmd = std::process::Command::new(common::bin());
    cmd.arg("--data-dir").arg(d.path());
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("history").env_remove("GATEHOUSE_SOCKET");
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The start time of the `restart` line: `YYYY-MM-DD HH:MM:SS ZONE`.
fn started(history: &str) -> String {
    let line = history
        .lines()
        .find(|l| l.contains(" restart "))
        .unwrap_or_else(|| panic!("{history}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[words.len() - 3..].join(" ")
}

/// Every time a person reads says its zone: the same run's start reads
/// in UTC for a viewer in UTC, in New York time for one whose TZ is New
/// York, and in Tokyo time for one whose configuration says so, each
/// naming its zone; the server (in UTC) is the same for all.
#[test]
fn times_are_shown_in_the_viewers_zone_and_name_it() {
    let d = setup("", "");
    d.ok_as(
        "alice",
        &["request", "restart", "--justification", "x", "--wait"],
    );
    let in_utc = started(&history_in(&d, Some("UTC"), None));
    assert!(in_utc.ends_with(" UTC"), "{in_utc}");
    let instant =
        chrono::NaiveDateTime::parse_from_str(in_utc.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
    let expect = |zone: &str| {
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        instant
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    let in_ny = started(&history_in(&d, Some("America/New_York"), None));
    assert_eq!(in_ny, expect("America/New_York"));
    assert!(
        in_ny.ends_with(" EST") || in_ny.ends_with(" EDT"),
        "{in_ny}"
    );
    // A person's own setting wins over TZ.
    let config = d.write("tokyo.toml", "timezone = \"Asia/Tokyo\"\n");
    let in_tokyo = started(&history_in(&d, Some("UTC"), Some(&config)));
    assert_eq!(in_tokyo, expect("Asia/Tokyo"));
    assert!(in_tokyo.ends_with(" JST"), "{in_tokyo}");
    // A zone that is not one is refused naming the key.
    let bad = d.write("bad.toml", "timezone = \"Mars/Base\"\n");
    let out = std::process::Command::new(common::bin())
        .arg("--data-dir")
        .arg(d.path())
        .arg("--config")
        .arg(&bad)
        .arg("history")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("key `timezone`"),
        "{err}"
    );
}

/// A freeze is a policy's kind of record: someone who may not manage
/// policies may not make, change or lift one (a freeze lifted by its
/// victim would be no freeze), though they see it.
#[test]
fn a_user_without_manage_policies_can_neither_make_nor_lift_a_freeze() {
    let (freeze, _) = freeze_now("\"production\"");
    let d = setup("", &freeze);
    let lifted = d.write(
        "lift.toml",
        &freeze.replace("\"production\"", "\"staging\""),
    );
    let err = d.fails_as("alice", &["import", lifted.to_str().unwrap()]);
    assert!(
        err.contains("may not") && err.contains("manage-policies"),
        "{err}"
    );
    let err = d.fails_as("alice", &["disable", "freeze", "quarter-close"]);
    assert!(
        err.contains("may not") && err.contains("manage-policies"),
        "{err}"
    );
    let err = d.fails_as("alice", &["delete", "freeze", "quarter-close"]);
    assert!(
        err.contains("may not") && err.contains("manage-policies"),
        "{err}"
    );
    // Still in force over production, and listed for her.
    let out = run_as(&d, "alice", &["request", "restart", "--justification", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("freeze 'quarter-close'"));
    assert!(d
        .ok_as("alice", &["list", "freezes"])
        .contains("production"));
}
