//! Every screen of the TUI with realistic data (the demo records, a day of
//! operations, a queue, an audit tail, a JIT grant), drawn on ratatui's
//! TestBackend at 120×40 and at 80×24 and compared with the stored
//! snapshots under tests/snapshots (insta: `cargo insta review` after a
//! deliberate change). The clock is fixed, so the screens are too.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::domain::*;
use gatehouse::engine::{Event, Response};
use gatehouse::store::AuditEvent;
use gatehouse::ui::{App, Call, Message, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// 2026-11-26 12:00:00 UTC.
const NOW: i64 = 1_795_694_400_000;
const HOUR: i64 = 3_600_000;

fn key(code: KeyCode) -> Message {
    Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn text(app: &App, width: u16, height: u16) -> String {
    // Times show in the viewer's zone: these snapshots are read in UTC.
    gatehouse::domain::zone::set_view_zone(chrono_tz::Tz::UTC);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        let line: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `gatehouse demo` loads: the template library, then the demo set.
fn records() -> Vec<Record> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut items = Vec::new();
    for file in ["assets/templates.toml", "assets/demo.toml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        items.extend(gatehouse::recordfile::parse(&text, dir).unwrap());
    }
    // A freeze in force at NOW (2026-11-26 12:00 UTC) and one to come.
    let freezes = r#"
[[freeze]]
name = "patch-night"
reason = "kernel rollout"
from = "2026-11-26 08:00"
to = "2026-11-27 06:00"
timezone = "Europe/Berlin"
environments = ["production"]

[[freeze]]
name = "year-end"
from = "2026-12-23 18:00"
to = "2027-01-04 08:00"
timezone = "America/New_York"
"#;
    items.extend(gatehouse::recordfile::parse(freezes, dir).unwrap());
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut r = item.record;
            let meta = r.meta_mut();
            meta.id = Id(100 + i as u64);
            meta.revision = 1;
            meta.created_by = "root".into();
            meta.updated_by = "root".into();
            meta.created_at = Timestamp(NOW - 48 * HOUR);
            meta.updated_at = Timestamp(NOW - 48 * HOUR);
            r
        })
        .collect()
}

fn operation(id: u64, task: &str, device: &str, state: OpState, hours_ago: i64) -> Operation {
    let created = Timestamp(NOW - hours_ago * HOUR - (id as i64 % 7) * 60_000);
    Operation {
        id: Id(id),
        request: Id(id),
        task: task.into(),
        template: "service-status".into(),
        template_id: Id(110),
        template_revision: 1,
        executor: Executor::SshScript,
        device: device.into(),
        credential: "ops".into(),
        variables: Default::default(),
        trigger: Trigger::User,
        requested_by: ["alice", "bob", "root"][id as usize % 3].into(),
        superuser_bypass: false,
        state,
        attempts: 1,
        max_attempts: 2,
        rerun: Default::default(),
        timeout_secs: 300,
        exit_status: match state {
            OpState::Succeeded => Some(0),
            OpState::Failed => Some(3),
            _ => None,
        },
        created_at: created,
        not_before: created,
        started_at: Some(created),
        finished_at: state.is_final().then_some(Timestamp(created.0 + 4_000)),
        error: (state == OpState::Failed).then(|| "exit status 3".to_string()),
        jit_until: None,
        output_bytes: 0,
        output_truncated: false,
    }
}

fn history() -> Vec<Operation> {
    let mut ops = Vec::new();
    let tasks = ["nginx-status", "nginx-restart", "disk-check"];
    let devices = ["web-1", "web-2", "db-1"];
    for i in 0..60u64 {
        let state = match i % 11 {
            3 => OpState::Failed,
            7 => OpState::Cancelled,
            _ => OpState::Succeeded,
        };
        ops.push(operation(
            500 - i,
            tasks[i as usize % 3],
            devices[i as usize % 3],
            state,
            (i as i64 * 5) / 13,
        ));
    }
    ops
}

fn request(
    id: u64,
    task: &str,
    requester: &str,
    minutes_ago: i64,
    template: Id,
) -> ExecutionRequest {
    ExecutionRequest {
        id: Id(id),
        task: task.into(),
        devices: vec!["web-1".into(), "web-2".into()],
        variables: [("SERVICE".to_string(), "nginx".to_string())].into(),
        reason: Some("incident".into()),
        justification: Some("502s from the load balancer since 11:40".into()),
        governance_id: Some("INC-4711".into()),
        requester: requester.into(),
        policy: Some("production-web".into()),
        window_start: Timestamp(NOW - minutes_ago * 60_000),
        window_end: Timestamp(NOW + 24 * HOUR),
        state: RequestState::Pending { level: 1 },
        decisions: vec![],
        pinned: Pinned {
            task_revision: 1,
            template_id: template,
            template_revision: 1,
            credential_revision: 1,
            devices: vec![("web-1".into(), 1), ("web-2".into(), 1)],
            children: vec![],
        },
        created_at: Timestamp(NOW - minutes_ago * 60_000),
        operations: vec![],
        void_reason: None,
        schedule: None,
        kind: gatehouse::domain::RequestKind::Task,
        change: None,
    }
}

fn audit() -> Vec<AuditEvent> {
    let actions = [
        (
            "root",
            "template.update",
            "template service-restart",
            "revision 2",
        ),
        (
            "alice",
            "request.create",
            "request 41",
            "nginx-restart on web-1, web-2",
        ),
        (
            "bob",
            "request.approve",
            "request 39",
            "level 1: looks right",
        ),
        (
            "bob",
            "operation.finish",
            "operation 412 (nginx-status on web-1)",
            "succeeded, exit status 0, 1 attempt(s)",
        ),
        (
            "carol",
            "request.refused",
            "task nginx-restart",
            "outside the access window of policy production-web",
        ),
    ];
    let mut prev = [0u8; 32];
    (1..=40u64)
        .map(|seq| {
            let (actor, action, target, details) = actions[seq as usize % actions.len()];
            let mut e = AuditEvent {
                seq,
                time: Timestamp(NOW - (40 - seq as i64) * 7 * 60_000),
                actor: actor.into(),
                action: action.into(),
                target: target.into(),
                details: details.into(),
                prev_hash: prev,
                hash: [0; 32],
            };
            e.hash = e.compute_hash();
            prev = e.hash;
            e
        })
        .collect()
}

/// An operator's (or approver's) full view of a busy store.
fn realistic(login: &str) -> App {
    let mut app = App::new(login.into(), Theme::default());
    app.clock = Some(Timestamp(NOW));
    app.server = "jump1 · server gatehouse".into();
    let all = records();
    for kind in Kind::ALL {
        let of_kind: Vec<Record> = all.iter().filter(|r| r.kind() == kind).cloned().collect();
        app.update(Message::Answer(
            Call::List(kind),
            Ok(Response::Records(of_kind)),
        ));
    }
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(history())),
    ));
    let live = vec![
        operation(502, "nginx-restart", "web-2", OpState::Running, 0),
        operation(501, "nginx-restart", "web-1", OpState::Queued, 0),
    ];
    app.update(Message::Answer(
        Call::LiveOperations,
        Ok(Response::Operations(live)),
    ));
    // The Dashboard's numbers, as the engine counts them over the same day.
    let mut metrics = gatehouse::engine::metrics::tally(&history(), Timestamp(NOW));
    metrics.running = 1;
    metrics.queued = 1;
    metrics.waiting = 2;
    metrics.awaiting_review = 1;
    metrics.overdue_reviews = vec!["#38 nginx-restart by carol, 34 h ago".into()];
    app.update(Message::Answer(
        Call::Metrics,
        Ok(Response::Metrics(Box::new(metrics))),
    ));
    let restart = all
        .iter()
        .find(|r| r.kind() == Kind::Template && r.name() == "service-restart")
        .map(|r| r.meta().id)
        .unwrap();
    let queue = vec![
        request(41, "nginx-restart", "alice", 12, restart),
        request(42, "nginx-restart", "alice", 3, restart),
    ];
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(queue.clone())),
    ));
    let Some(Record::Template(template)) = all.iter().find(|r| r.meta().id == restart).cloned()
    else {
        panic!("no service-restart template")
    };
    // What the engine renders for each device (the same function).
    for req in queue {
        let mut runs: Vec<gatehouse::engine::api::DeviceRun> = Vec::new();
        for run in req.devices.iter().map(|name| {
            let Some(Record::Device(device)) = all
                .iter()
                .find(|r| r.kind() == Kind::Device && r.name() == name)
                .cloned()
            else {
                panic!("no device {name}")
            };
            gatehouse::engine::api::DeviceRun {
                devices: vec![name.clone()],
                text: gatehouse::template::preview(&template, &device, "ops", &req.variables),
            }
        }) {
            // Devices that get the same text share one entry, as the engine does.
            match runs.iter_mut().find(|r| r.text == run.text) {
                Some(same) => same.devices.extend(run.devices),
                None => runs.push(run),
            }
        }
        let view = gatehouse::engine::api::RequestView {
            credential: "ops".into(),
            username: "ops".into(),
            template: template.meta.name.clone(),
            template_revision: template.meta.revision,
            executor: template.executor.as_str().into(),
            template_now: None,
            variables: vec![("SERVICE".into(), "nginx".into(), false)],
            runs,
            children: Vec::new(),
            review: None,
            dry_runs: Vec::new(),
            request: req.clone(),
        };
        app.update(Message::Answer(
            Call::RequestView(req.id),
            Ok(Response::RequestView(Box::new(view))),
        ));
    }
    app.update(Message::Answer(
        Call::AuditTail,
        Ok(Response::AuditEvents(audit())),
    ));
    app.update(Message::Answer(
        Call::AuditVerify,
        Ok(Response::AuditVerified(Ok(40))),
    ));
    app.update(Message::Answer(
        Call::Jit,
        Ok(Response::Jit(vec![gatehouse::engine::api::JitLease {
            grant: JitGrant {
                id: Id(77),
                grant_op: Id(470),
                task: "grant-root".into(),
                credential: "ops".into(),
                device: "db-1".into(),
                requested_by: "alice".into(),
                granted_at: Timestamp(NOW - HOUR),
                expires_at: Timestamp(NOW + HOUR),
                state: JitState::Active,
            },
            uses: vec![Id(471), Id(472)],
        }])),
    ));
    app
}

/// The running operation's output, as the log pane shows it.
fn stream_output(app: &mut App) {
    for (seq, line) in [
        "attempt 1 of 2 on web-2 (ops@127.0.0.12:22, template service-restart rev 1)",
        "Stopping nginx: nginx.",
        "Starting nginx: nginx.",
        "● nginx.service - A high performance web server",
        "     Active: active (running) since Thu 2026-11-26 11:59:58 UTC; 2s ago",
    ]
    .iter()
    .enumerate()
    {
        app.update(Message::Engine(Event::Output {
            id: Id(502),
            chunk: OutputChunk {
                seq: seq as u64,
                stream: if seq == 0 {
                    Stream::System
                } else {
                    Stream::Stdout
                },
                time: Timestamp(NOW),
                bytes: format!("{line}\n").into_bytes(),
            },
        }));
    }
}

fn snapshot_both_sizes(name: &str, app: &App) {
    insta::assert_snapshot!(format!("{name}_120x40"), text(app, 120, 40));
    insta::assert_snapshot!(format!("{name}_80x24"), text(app, 80, 24));
}

#[test]
fn dashboard() {
    let app = realistic("bob");
    snapshot_both_sizes("dashboard", &app);
}

#[test]
fn dashboard_of_a_shared_store_lists_its_servers() {
    use gatehouse::engine::api::{ClusterStatus, ServerStatus};
    let mut app = realistic("root");
    let server = |id: u64, host: &str, alive: bool, this: bool, ops: u64| ServerStatus {
        id,
        host: host.into(),
        pid: 4000 + id as u32,
        started_at: Timestamp(NOW - 3_600_000),
        renewed_at: Timestamp(NOW - if alive { 2_000 } else { 90_000 }),
        alive,
        this_server: this,
        operations: ops,
        environments: Vec::new(),
    };
    app.update(Message::Answer(
        Call::Cluster,
        Ok(Response::Cluster(Box::new(ClusterStatus {
            store: "postgresql://gatehouse@/run/postgresql/gatehouse".into(),
            shared: true,
            lease_secs: 20,
            servers: vec![
                server(1, "jump-eu-1", true, true, 3),
                server(2, "jump-us-1", true, false, 0),
                server(3, "jump-eu-2", false, false, 1),
            ],
        }))),
    ));
    let shown = text(&app, 120, 40);
    assert!(shown.contains("Servers (2 of 3 up; * this one)"), "{shown}");
    assert!(
        shown.contains("jump-eu-2 · 1 op(s) · silent 90s"),
        "{shown}"
    );
    snapshot_both_sizes("dashboard_servers", &app);
    // Someone who may not list the servers: nothing about them, no error.
    let mut alice = realistic("alice");
    alice.update(Message::Answer(
        Call::Cluster,
        Err(gatehouse::ui::Failure::Engine(
            gatehouse::engine::EngineError::Denied(
                "only a Superuser may list the servers of the store".into(),
            ),
        )),
    ));
    let shown = text(&alice, 120, 40);
    assert!(!shown.contains("Servers ("), "{shown}");
    assert!(!shown.contains("only a Superuser"), "{shown}");
}

#[test]
fn tasks() {
    let mut app = realistic("alice");
    app.update(key(KeyCode::Char('2')));
    snapshot_both_sizes("tasks", &app);
}

#[test]
fn approvals() {
    let mut app = realistic("bob");
    app.update(key(KeyCode::Char('3')));
    snapshot_both_sizes("approvals", &app);
}

#[test]
fn operations_with_live_output() {
    let mut app = realistic("alice");
    app.update(key(KeyCode::Char('4')));
    stream_output(&mut app);
    snapshot_both_sizes("operations", &app);
}

#[test]
fn history_screen() {
    let mut app = realistic("carol");
    app.update(key(KeyCode::Char('5')));
    snapshot_both_sizes("history", &app);
}

/// History's sessions view: an open session and one with deviations
/// outside its declared change.
#[test]
fn history_sessions_view() {
    let mut app = realistic("carol");
    app.update(key(KeyCode::Char('5')));
    assert_eq!(app.update(key(KeyCode::Char('S'))), vec![Call::Sessions]);
    let session = |id: u64, user: &str, open: bool| SessionRecord {
        id: Id(id),
        user: user.into(),
        device: "web-prod-1".into(),
        credential: "ops-admin".into(),
        policy: Some("prod-sessions".into()),
        reason: None,
        justification: Some("INC-2041 disk full".into()),
        governance_id: None,
        started_at: Timestamp(NOW - 3_600_000),
        ended_at: (!open).then_some(Timestamp(NOW - 1_800_000)),
        end: (!open).then_some(SessionEnd::Exited(Some(0))),
        term: "xterm".into(),
        cols: 120,
        rows: 40,
        output_bytes: 18_000,
        commands: 7,
        request: Some(Id(4000100 + id)),
        window_end: Some(Timestamp(NOW + 3_600_000)),
        change: (!open).then(|| ChangePlan {
            code: "CHG-88".into(),
            plan: vec!["systemctl restart nginx".into(), "df *".into()],
        }),
        deviations: if open {
            vec![]
        } else {
            vec!["rm /var/log/old.log".into()]
        },
        denied: 0,
    };
    app.update(Message::Answer(
        Call::Sessions,
        Ok(Response::Sessions(vec![
            session(4000201, "alice", true),
            session(4000150, "bob", false),
        ])),
    ));
    app.update(key(KeyCode::Down));
    snapshot_both_sizes("history_sessions", &app);
    // An ended session replays; it cannot be watched or ended.
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Call::Replay(Id(4000150))]
    );
    assert!(app.update(key(KeyCode::Char('w'))).is_empty());
    assert!(app.status.as_ref().unwrap().0.contains("has ended"));
    // The open one is watched, or ended with a reason its user sees.
    app.update(key(KeyCode::Up));
    assert_eq!(
        app.update(key(KeyCode::Char('w'))),
        vec![Call::Watch(Id(4000201))]
    );
    assert!(app.update(key(KeyCode::Char('K'))).is_empty());
    assert!(text(&app, 120, 40).contains("end session 4000201; why (its user sees it):"));
    assert!(
        app.update(key(KeyCode::Enter)).is_empty(),
        "no reason, no end"
    );
    for c in "rogue".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Call::EndSession {
            id: Id(4000201),
            reason: "rogue".into()
        }]
    );
    // S goes back to the operations.
    app.update(key(KeyCode::Char('S')));
    assert!(text(&app, 120, 40).contains("History, newest first"));
}

/// Connect from Admin: why, then (the policy asking for it) a second
/// factor, the why kept.
#[test]
fn connect_asks_why_then_a_code_when_the_policy_wants_one() {
    let mut app = realistic("root");
    app.update(key(KeyCode::Char('7')));
    for _ in 0..3 {
        app.update(key(KeyCode::Right));
    }
    assert!(app.update(key(KeyCode::Char('C'))).is_empty());
    let prompt = text(&app, 120, 40);
    assert!(prompt.contains("; why (justification):"), "{prompt}");
    for c in "INC-9".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let calls = app.update(key(KeyCode::Enter));
    let [Call::Connect {
        device,
        justification,
        totp: None,
    }] = calls.as_slice()
    else {
        panic!("{calls:?}");
    };
    assert_eq!(justification, "INC-9");
    let device = device.clone();
    app.update(Message::Answer(
        calls[0].clone(),
        Err(gatehouse::ui::Failure::Engine(
            gatehouse::engine::EngineError::MfaRequired {
                login: "root".into(),
            },
        )),
    ));
    assert!(
        text(&app, 120, 40).contains(&format!("open a session on {device}; current TOTP code:"))
    );
    for c in "123456".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Call::Connect {
            device,
            justification: "INC-9".into(),
            totp: Some("123456".into())
        }]
    );
}

#[test]
fn audit_log() {
    let mut app = realistic("carol");
    app.update(key(KeyCode::Char('6')));
    snapshot_both_sizes("audit", &app);
}

#[test]
fn admin_devices_and_roles() {
    let mut app = realistic("root");
    app.update(key(KeyCode::Char('7')));
    for _ in 0..3 {
        app.update(key(KeyCode::Right));
    }
    snapshot_both_sizes("admin_devices", &app);
    for _ in 0..4 {
        app.update(key(KeyCode::Right));
    }
    snapshot_both_sizes("admin_roles", &app);
    // The last kind is reachable and its name shows, at both sizes.
    for _ in 0..3 {
        app.update(key(KeyCode::Right));
    }
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = text(&app, w, h);
        let bar = screen.lines().nth(1).unwrap();
        assert!(
            bar.contains("freezes (2)") && bar.starts_with(" ‹"),
            "{screen}"
        );
        assert!(
            screen.contains("patch-night") && screen.contains("year-end"),
            "{screen}"
        );
    }
    snapshot_both_sizes("admin_freezes", &app);
}

#[test]
fn request_form() {
    let mut app = realistic("alice");
    app.update(key(KeyCode::Char('2')));
    let terms = gatehouse::engine::RequestTerms {
        task: "nginx-restart".into(),
        description: "Restart nginx on the web servers".into(),
        devices: vec!["web-1".into(), "web-2".into()],
        variables: vec![Variable {
            name: "SERVICE".into(),
            description: "the systemd unit".into(),
            default: Some("nginx".into()),
            pattern: "[a-z-]+".into(),
        }],
        reasons: vec!["incident".into(), "planned-change".into()],
        policy: Some("production-web".into()),
        requires_approval: true,
        approval_levels: 2,
        requires_justification: true,
        requires_governance_id: true,
        emergency_access: true,
        requires_mfa: true,
        windows: vec!["Mon–Fri 08:00–18:00".into()],
        ..Default::default()
    };
    app.update(Message::Answer(
        Call::Terms("nginx-restart".into()),
        Ok(Response::Terms(Box::new(terms))),
    ));
    snapshot_both_sizes("request_form", &app);
}

#[test]
fn template_form_with_an_error_at_its_line() {
    let mut app = realistic("root");
    app.update(key(KeyCode::Char('7')));
    for _ in 0..5 {
        app.update(key(KeyCode::Right));
    }
    app.update(key(KeyCode::Char('n')));
    for c in "check-web".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    for _ in 0..4 {
        app.update(key(KeyCode::Tab));
    }
    for c in "uptime".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Enter));
    for c in "systemctl status [#UNIT#]".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    snapshot_both_sizes("template_form", &app);
}

#[test]
fn template_form_mask_legend() {
    let mut app = realistic("root");
    app.update(key(KeyCode::Char('7')));
    for _ in 0..5 {
        app.update(key(KeyCode::Right));
    }
    app.update(key(KeyCode::Char('e')));
    app.update(key(KeyCode::F(2)));
    snapshot_both_sizes("template_legend", &app);
}

#[test]
fn audit_event_detail() {
    let mut app = realistic("carol");
    app.update(key(KeyCode::Char('6')));
    app.update(key(KeyCode::Enter));
    snapshot_both_sizes("audit_event", &app);
}

#[test]
fn help_overlay() {
    let mut app = realistic("bob");
    app.update(key(KeyCode::Char('3')));
    app.update(key(KeyCode::Char('?')));
    snapshot_both_sizes("help_approvals", &app);
}

#[test]
fn a_terminal_too_small_says_so() {
    let app = realistic("bob");
    let screen = text(&app, 50, 10);
    assert!(screen.contains("The terminal is 50×10"), "{screen}");
    assert!(screen.contains("60×15"), "{screen}");
}

#[test]
fn history_detail_of_an_operation() {
    let mut app = realistic("carol");
    app.update(key(KeyCode::Char('5')));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    let asked = app.update(key(KeyCode::Enter));
    assert_eq!(asked, vec![Call::RequestOf(Id(497))]);
    let mut req = request(497, "nginx-status", "root", 61, Id(110));
    req.state = RequestState::Approved;
    req.decisions = vec![Decision {
        approver: "bob".into(),
        level: 1,
        approved: true,
        comment: "go ahead".into(),
        time: Timestamp(NOW - 60 * 60_000),
        narrowed_to: None,
    }];
    app.update(Message::Answer(
        Call::RequestOf(Id(497)),
        Ok(Response::Requests(vec![req])),
    ));
    snapshot_both_sizes("history_detail", &app);
    app.update(key(KeyCode::Esc));
    assert!(app.detail().is_none());
}

/// A scheduled task says where its schedule stands: in the list, one word;
/// in the detail, the cron, the request it runs under or why it does not.
#[test]
fn a_scheduled_task_shows_why_its_schedule_does_not_run() {
    use gatehouse::engine::schedules::{ScheduleState, ScheduleStatus};
    let mut app = realistic("alice");
    let restart = records()
        .iter()
        .find(|r| r.kind() == Kind::Template)
        .map(|r| r.meta().id)
        .unwrap();
    let mut void = request(43, "disk-check", "alice", 30, restart);
    void.state = RequestState::Void;
    void.schedule = Some("0 3 * * *".into());
    void.void_reason = Some("template 'disk-usage' changed since it was approved (revision 1 → 2); the schedule is suspended until a new request authorises it".into());
    app.update(Message::Answer(
        Call::Schedules,
        Ok(Response::Schedules(vec![ScheduleStatus {
            task: "disk-check".into(),
            expr: "0 3 * * *".into(),
            enabled: true,
            state: ScheduleState::Suspended,
            authority: Some(Box::new(void)),
        }])),
    ));
    app.update(key(KeyCode::Char('2')));
    let mut screen = text(&app, 160, 40);
    for _ in 0..30 {
        if screen.contains("schedule     0 3 * * *") {
            break;
        }
        app.update(key(KeyCode::Down));
        screen = text(&app, 160, 40);
    }
    let row = screen
        .lines()
        .find(|l| l.contains("disk-check") && l.contains("disk-usage"))
        .unwrap_or_else(|| panic!("no row of disk-check:\n{screen}"));
    assert!(row.contains("suspended"), "{row}");
    assert!(
        screen.contains("schedule     0 3 * * *, suspended"),
        "{screen}"
    );
    assert!(
        screen.contains("request 43: template 'disk-usage' changed since it was"),
        "{screen}"
    );
    // Positive control: a task without a schedule says nothing of one.
    let other = screen
        .lines()
        .find(|l| l.contains("nginx-restart"))
        .unwrap_or_default();
    assert!(
        !other.contains("suspended") && !other.contains("authorised"),
        "{other}"
    );
}

/// The Dashboard's counts are the engine's: filtering History (which
/// replaces the History screen's page) changes none of them.
#[test]
fn the_dashboards_counts_do_not_follow_the_history_filter() {
    let mut app = realistic("alice");
    let before = text(&app, 120, 40);
    let counts = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter(|l| {
                l.contains("failed in 24 h")
                    || l.contains("running, queued")
                    || l.contains("waiting for you")
                    || l.contains("Executions per hour")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(counts(&before).len(), 4, "{before}");
    // Positive control: the failures are there to be counted.
    assert!(!before.contains("failed in 24 h        0"), "{before}");
    // History filtered to one succeeded operation.
    app.update(key(KeyCode::Char('5')));
    app.update(key(KeyCode::Char('/')));
    for c in "state:succeeded".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let asked = app.update(key(KeyCode::Enter));
    let Some(Call::HistoryFiltered(filter)) = asked.first().cloned() else {
        panic!("no filtered history asked: {asked:?}")
    };
    assert_eq!(filter.state, Some(OpState::Succeeded));
    let one: Vec<Operation> = history()
        .into_iter()
        .filter(|o| o.state == OpState::Succeeded)
        .take(1)
        .collect();
    app.update(Message::Answer(
        Call::HistoryFiltered(filter),
        Ok(Response::Operations(one)),
    ));
    assert_eq!(app.history.ops.len(), 1, "the filter took hold");
    app.update(key(KeyCode::Char('1')));
    let after = text(&app, 120, 40);
    assert_eq!(counts(&before), counts(&after));
}

/// `y` on a task shows how every policy judges your request of it now:
/// the answer, then each policy with the condition it fails and those it
/// met (the engine's verdicts, as `policy explain` prints them).
#[test]
fn why_not_shows_every_policys_verdict_on_a_task() {
    use gatehouse::access::policy::Verdict;
    let mut app = realistic("alice");
    app.update(key(KeyCode::Char('2')));
    let asked = app.update(key(KeyCode::Char('y')));
    let Some(Call::Explain(task)) = asked.first().cloned() else {
        panic!("{asked:?}")
    };
    let verdict = |policy: &str, passed: &[&str], failed: Option<(&str, &str)>| Verdict {
        policy: policy.into(),
        passed: passed.iter().map(|s| s.to_string()).collect(),
        failed: failed.map(|(c, w)| (c.to_string(), w.to_string())),
    };
    let met = [
        "enabled",
        "user",
        "covers",
        "credential",
        "environment",
        "system",
        "devices",
    ];
    let explanation = gatehouse::engine::api::Explanation {
        user: "alice".into(),
        task: task.clone(),
        devices: vec!["web-1".into(), "web-2".into()],
        at: Timestamp(NOW),
        permission: Ok(()),
        verdicts: vec![
            verdict(
                "production-web",
                &met,
                Some(("window", "outside the access window of policy production-web: Mon–Fri 08:00–18:00 (Europe/Berlin; Thu 13:00 there)")),
            ),
            verdict(
                "prod-db",
                &met[..5],
                Some(("system", "policy prod-db does not cover system 'web'")),
            ),
            verdict(
                "lab-ops",
                &met[..4],
                Some(("environment", "policy lab-ops does not cover environment 'production'")),
            ),
        ],
        freeze: None,
        superuser: false,
    };
    app.update(Message::Answer(
        Call::Explain(task),
        Ok(Response::Explanation(Box::new(explanation))),
    ));
    let screen = text(&app, 120, 40);
    assert!(screen.contains("no: no policy covers it"), "{screen}");
    assert!(
        screen.contains("production-web       refuses  window"),
        "{screen}"
    );
    assert!(
        screen.contains("lab-ops              refuses  environment"),
        "{screen}"
    );
    snapshot_both_sizes("why_not", &app);
    // Any key closes it.
    app.update(key(KeyCode::Esc));
    assert!(!text(&app, 120, 40).contains("refuses"));
}

/// `m` on the Approvals tab shows the operator's own requests: pending,
/// approved, rejected with the approver's comment, voided with why.
#[test]
fn your_requests_show_where_each_stands_and_why() {
    let mut app = realistic("alice");
    let restart = Id(1);
    let pending = request(51, "nginx-restart", "alice", 2, restart);
    let mut rejected = request(50, "nginx-restart", "alice", 40, restart);
    rejected.state = RequestState::Rejected;
    rejected.decisions.push(Decision {
        approver: "bob".into(),
        level: 1,
        approved: false,
        comment: "not during the sale".into(),
        time: Timestamp(NOW - 30 * 60_000),
        narrowed_to: None,
    });
    let mut void = request(49, "disk-check", "alice", 300, restart);
    void.state = RequestState::Void;
    void.void_reason = Some("template 'disk-usage' changed since it was approved".into());
    app.update(Message::Answer(
        Call::MyRequests,
        Ok(Response::Requests(vec![pending, rejected, void])),
    ));
    app.update(key(KeyCode::Char('3')));
    app.update(key(KeyCode::Char('m')));
    let screen = text(&app, 120, 40);
    assert!(
        screen.contains("Your requests (3), newest first"),
        "{screen}"
    );
    assert!(screen.contains("bob: not during the sale"), "{screen}");
    assert!(screen.contains("template 'disk-usage' changed"), "{screen}");
    snapshot_both_sizes("your_requests", &app);
    app.update(key(KeyCode::Char('m')));
    assert!(text(&app, 120, 40).contains("Waiting for you"));
}

/// At the smallest size the TUI takes (60×15) every tab still shows: the
/// others by their digit, the current one with its name.
#[test]
fn every_tab_shows_at_the_smallest_size() {
    let mut app = realistic("bob");
    app.update(key(KeyCode::Char('6')));
    let screen = text(&app, 60, 15);
    let bar = screen.lines().next().unwrap();
    for digit in ["1", "2", "3", "4", "5", "7"] {
        assert!(bar.contains(digit), "tab {digit} missing: {bar}");
    }
    assert!(bar.contains("6 Audit"), "{bar}");
}
