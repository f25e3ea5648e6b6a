//! The operator's day, key by key: a run's progress and its end on the
//! Operations screen, `/` filtering and `s` searching the log on both
//! operation screens, the log pane's wrap, sideways scroll, save and mouse
//! release, the audit event detail, the Dashboard's items and the template
//! editor's mask legend.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use crossterm::event::KeyCode;
mod common;

use common::screen::{key, screen, type_in};
use gatehouse::domain::*;
use gatehouse::engine::{Event, Response};
use gatehouse::ui::{App, Call, Message, Tab, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A minute past noon; the screens' clock.
const NOW: i64 = 1_800_000_000_000;

fn op(id: u64, request: u64, device: &str, state: OpState) -> Operation {
    Operation {
        id: Id(id),
        request: Id(request),
        task: "restart".into(),
        template: "t".into(),
        template_id: Id(1),
        template_revision: 1,
        executor: Executor::SshScript,
        device: device.into(),
        credential: "c".into(),
        variables: Default::default(),
        trigger: Trigger::User,
        requested_by: "alice".into(),
        superuser_bypass: false,
        state,
        attempts: 1,
        max_attempts: 1,
        rerun: Default::default(),
        timeout_secs: 60,
        exit_status: None,
        created_at: Timestamp(NOW - 30_000),
        not_before: Timestamp(NOW - 30_000),
        started_at: Some(Timestamp(NOW - 20_000)),
        finished_at: None,
        error: None,
        jit_until: None,
        output_bytes: 0,
        output_truncated: false,
    }
}

fn ended(mut o: Operation, state: OpState, at: i64) -> Operation {
    o.state = state;
    o.finished_at = Some(Timestamp(at));
    o.exit_status = Some(if state == OpState::Succeeded { 0 } else { 1 });
    o
}

fn changed(o: &Operation) -> Message {
    Message::Engine(Event::OperationChanged(Box::new(o.clone())))
}

fn alice() -> App {
    let mut app = App::new("alice".into(), Theme::default());
    app.clock = Some(Timestamp(NOW));
    app
}

#[test]
fn a_run_shows_its_progress_keeps_its_ended_devices_dimmed_and_says_how_it_ended() {
    let mut app = alice();
    let ops = [
        op(71, 70, "web-1", OpState::Queued),
        op(72, 70, "web-2", OpState::Queued),
        op(73, 70, "web-3", OpState::Queued),
    ];
    // The run's events come before the submit's answer (it was quick).
    app.update(changed(&ended(ops[0].clone(), OpState::Succeeded, NOW)));
    app.update(Message::Answer(
        Call::Submit(Default::default()),
        Ok(Response::Requested {
            request: Id(70),
            operations: ops.to_vec(),
        }),
    ));
    assert_eq!(app.tab, Tab::Operations);
    // The submit's older copy does not bring the ended one back to life.
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("Running and queued (2) · ended lately (1)"),
        "{shown}"
    );
    assert!(shown.contains("request 70 is running"), "{shown}");
    app.update(changed(&ended(ops[1].clone(), OpState::Failed, NOW)));
    let mut running = ops[2].clone();
    running.state = OpState::Running;
    app.update(changed(&running));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("1/3 done · 1 failed · 1 running · 0:20"),
        "{shown}"
    );
    // The last one ends: the status line says how the request ended.
    app.update(changed(&ended(running, OpState::Succeeded, NOW + 5_000)));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("request 70 finished: 2 succeeded, 1 failed (R re-runs)"),
        "{shown}"
    );
    assert!(
        shown.contains("2/3 done · 1 failed · 0 running · 0:25 · ended"),
        "{shown}"
    );
    assert!(
        shown.contains("Running and queued (0) · ended lately (3)"),
        "{shown}"
    );
    // c on an ended one says so instead of asking to cancel.
    app.update(key(KeyCode::Char('c')));
    assert!(screen(&app, 120, 40).contains("has ended"));
    // Two minutes on, a tick ages them out.
    app.clock = Some(Timestamp(NOW + 119_000));
    app.update(Message::Tick);
    assert!(screen(&app, 120, 40).contains("ended lately (3)"));
    app.clock = Some(Timestamp(NOW + 126_000));
    app.update(Message::Tick);
    let shown = screen(&app, 120, 40);
    assert!(shown.contains(" Running and queued (0) "), "{shown}");
    assert!(!shown.contains("ended lately"), "{shown}");
}

#[test]
fn a_skipped_device_counts_as_done_and_the_end_of_its_request_says_it_was_skipped() {
    let mut app = alice();
    let ops = [
        op(81, 80, "web-1", OpState::Queued),
        op(82, 80, "web-2", OpState::Queued),
    ];
    app.update(Message::Answer(
        Call::Submit(Default::default()),
        Ok(Response::Requested {
            request: Id(80),
            operations: ops.to_vec(),
        }),
    ));
    app.update(changed(&ended(ops[0].clone(), OpState::Succeeded, NOW)));
    app.update(changed(&ended(ops[1].clone(), OpState::Skipped, NOW)));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("request 80 finished: 1 succeeded, 1 skipped (nothing to do), 0 failed"),
        "{shown}"
    );
    assert!(shown.contains("2/2 done · 0 failed · 0 running"), "{shown}");
    let row = shown
        .lines()
        .find(|l| l.contains("web-2"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(row.contains("skipped"), "{row}");
}

#[test]
fn slash_filters_the_operations_list_and_s_searches_the_log_on_both_screens() {
    let mut app = alice();
    let mut backup = op(81, 80, "db-1", OpState::Running);
    backup.task = "backup".into();
    app.update(Message::Answer(
        Call::LiveOperations,
        Ok(Response::Operations(vec![
            backup,
            op(79, 78, "web-1", OpState::Running),
        ])),
    ));
    app.update(key(KeyCode::Char('4')));
    app.update(key(KeyCode::Char('/')));
    assert!(screen(&app, 120, 40).contains("filter /"));
    type_in(&mut app, "db-1");
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("matching 'db-1'"), "{shown}");
    assert!(shown.contains("backup"), "{shown}");
    assert!(!shown.contains("restart"), "{shown}");
    assert_eq!(app.selected_operation().unwrap().id, Id(81));
    // Esc on the filter line shows them all again.
    app.update(key(KeyCode::Char('/')));
    app.update(key(KeyCode::Esc));
    assert!(screen(&app, 120, 40).contains("restart"));
    // s searches the log, on Operations as on History.
    for tab in ['4', '5'] {
        app.update(key(KeyCode::Char(tab)));
        app.update(key(KeyCode::Char('s')));
        let shown = screen(&app, 120, 40);
        assert!(shown.contains("search the log /"), "{tab}: {shown}");
        app.update(key(KeyCode::Esc));
    }
}

fn chunk(seq: u64, text: &str) -> OutputChunk {
    OutputChunk {
        seq,
        stream: Stream::Stdout,
        time: Timestamp(NOW),
        bytes: text.as_bytes().to_vec(),
    }
}

#[test]
fn the_log_pane_wraps_scrolls_sideways_saves_and_releases_the_mouse() {
    let mut app = alice();
    app.update(key(KeyCode::Char('4')));
    let asked = app.update(Message::Answer(
        Call::LiveOperations,
        Ok(Response::Operations(vec![op(
            91,
            90,
            "web-1",
            OpState::Running,
        )])),
    ));
    assert!(asked
        .iter()
        .any(|c| matches!(c, Call::Output { id, .. } if *id == Id(91))));
    let long = format!("LINE-START {} TAIL-END\n", "x".repeat(150));
    app.update(Message::Engine(Event::Output {
        id: Id(91),
        chunk: chunk(0, &long),
    }));
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("LINE-START"), "{shown}");
    assert!(!shown.contains("TAIL-END"), "cut at the edge: {shown}");
    // → moves the view sideways, 8 columns a press.
    for _ in 0..12 {
        app.update(key(KeyCode::Right));
    }
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("TAIL-END"), "{shown}");
    assert!(!shown.contains("LINE-START"), "{shown}");
    assert!(shown.contains("from column 97"), "{shown}");
    // W wraps: both ends are in view, the tail on a row of its own.
    app.update(key(KeyCode::Char('W')));
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("LINE-START"), "{shown}");
    assert!(shown.contains("TAIL-END"), "{shown}");
    assert!(shown.contains("· wrapped"), "{shown}");
    // o asks where to save, offering a new file named for the operation.
    assert!(app.update(key(KeyCode::Char('o'))).is_empty());
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("save the output of operation 91 to"),
        "{shown}"
    );
    assert!(shown.contains("gatehouse-operation-91.log"), "{shown}");
    let asked = app.update(key(KeyCode::Enter));
    assert_eq!(
        asked,
        vec![Call::SaveOutput {
            id: Id(91),
            path: "gatehouse-operation-91.log".into()
        }]
    );
    // M gives the mouse to the terminal, and takes it back.
    assert_eq!(
        app.update(key(KeyCode::Char('M'))),
        vec![Call::MouseCapture(false)]
    );
    assert!(screen(&app, 120, 40).contains("the mouse is the terminal's"));
    assert_eq!(
        app.update(key(KeyCode::Char('M'))),
        vec![Call::MouseCapture(true)]
    );
}

fn chain(n: u64) -> Vec<gatehouse::store::AuditEvent> {
    let mut prev = [0u8; 32];
    (1..=n)
        .map(|seq| {
            let mut e = gatehouse::store::AuditEvent {
                seq,
                time: Timestamp(NOW),
                actor: "bob".into(),
                action: "request.approve".into(),
                target: format!("request {seq}"),
                details: format!("comment: fine; level 1; seq {seq}"),
                prev_hash: prev,
                hash: [0; 32],
            };
            e.hash = e.compute_hash();
            prev = e.hash;
            e
        })
        .collect()
}

#[test]
fn enter_on_an_audit_event_shows_it_whole_with_its_hash_and_place_in_the_chain() {
    let mut app = App::new("carol".into(), Theme::default());
    let mut events = chain(5);
    // Event 3 was changed after it was written: its hash no longer matches.
    events[2].details = "comment: something else".into();
    let third = events[2].hash_hex();
    let fifth = events[4].hash_hex();
    app.update(Message::Answer(
        Call::AuditTail,
        Ok(Response::AuditEvents(events)),
    ));
    app.update(Message::Answer(
        Call::AuditVerify,
        Ok(Response::AuditVerified(Ok(5))),
    ));
    app.update(key(KeyCode::Char('6')));
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 160, 40);
    assert!(shown.contains("Audit event 5"), "{shown}");
    assert!(shown.contains(&fifth), "{shown}");
    assert!(shown.contains("event 5 of the chain"), "{shown}");
    assert!(
        shown.contains("the hash matches the event's fields"),
        "{shown}"
    );
    assert!(
        shown.contains("linked: event 4 carries the previous hash"),
        "{shown}"
    );
    assert!(shown.contains("seq 5"), "the details, whole: {shown}");
    app.update(key(KeyCode::Esc));
    for _ in 0..2 {
        app.update(key(KeyCode::Up));
    }
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 160, 40);
    assert!(shown.contains("Audit event 3"), "{shown}");
    assert!(shown.contains(&third), "{shown}");
    assert!(shown.contains("THE HASH DOES NOT MATCH"), "{shown}");
}

#[test]
fn the_dashboards_items_are_selected_and_enter_opens_what_they_count() {
    let mut app = alice();
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("Enter open what it counts"), "{shown}");
    // waiting → running → failed.
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    let asked = app.update(key(KeyCode::Enter));
    assert_eq!(app.tab, Tab::History);
    let [Call::HistoryFiltered(filter)] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert_eq!(filter.state, Some(OpState::Failed));
    assert!(screen(&app, 120, 40).contains("History matching 'state:failed'"));
    // The first item opens Approvals; the last the Audit tab.
    app.update(key(KeyCode::Char('1')));
    app.update(key(KeyCode::Home));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.tab, Tab::Approvals);
    app.update(key(KeyCode::Char('1')));
    app.update(key(KeyCode::End));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.tab, Tab::Audit);
    // A kind of record opens Admin on that kind (the one before Audit).
    app.update(key(KeyCode::Char('1')));
    app.update(key(KeyCode::End));
    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.tab, Tab::Admin);
    assert_eq!(app.admin_kind(), *Kind::ALL.last().unwrap());
}

/// The template editor open on one template with one declared variable.
fn editing(name: &str, executor: Executor, content: &str, variable: (&str, &str)) -> App {
    let mut app = App::new("root".into(), Theme::default());
    let template = Template {
        meta: Meta {
            revision: 1,
            ..Meta::named(name)
        },
        executor,
        content: content.into(),
        variables: vec![Variable {
            name: variable.0.into(),
            description: variable.1.into(),
            ..Variable::default()
        }],
        ..Template::default()
    };
    app.update(Message::Answer(
        Call::List(Kind::Template),
        Ok(Response::Records(vec![Record::Template(template)])),
    ));
    app.update(key(KeyCode::Char('7')));
    while app.admin_kind() != Kind::Template {
        app.update(key(KeyCode::Right));
    }
    app.update(key(KeyCode::Char('e')));
    app
}

#[test]
fn the_template_editor_shows_the_mask_legend_with_the_templates_own_variables() {
    let mut app = editing(
        "restart",
        Executor::SshScript,
        "systemctl restart [#SERVICE#]",
        ("SERVICE", "the unit to restart"),
    );
    // Wide: beside the form, always.
    let shown = screen(&app, 170, 45);
    assert!(shown.contains(" Masks "), "{shown}");
    assert!(shown.contains("[#AUTH_PASSWORD#]"), "{shown}");
    assert!(shown.contains("that login's password (secret)"), "{shown}");
    assert!(shown.contains("[#SERVICE#]"), "{shown}");
    assert!(shown.contains("the unit to restart"), "{shown}");
    // Narrow: F2 shows it over the form, Esc hides it and the form stays.
    let shown = screen(&app, 80, 24);
    assert!(!shown.contains(" Masks "), "{shown}");
    assert!(shown.contains("F2 lists them"), "{shown}");
    app.update(key(KeyCode::F(2)));
    let shown = screen(&app, 80, 24);
    assert!(shown.contains("[#SERVICE#]"), "{shown}");
    assert!(shown.contains("[#ADDRESS#]"), "{shown}");
    app.update(key(KeyCode::Esc));
    let shown = screen(&app, 80, 24);
    assert!(!shown.contains(" Masks "), "{shown}");
    assert!(shown.contains("Edit template restart"), "{shown}");
}

/// A playbook uses no masks: its legend lists the variables Gatehouse
/// gives it and the template's own, written as Ansible reads them.
#[test]
fn a_playbooks_legend_lists_ansible_variables_not_masks() {
    let app = editing(
        "pooler",
        Executor::AnsiblePlaybook,
        "- tasks:\n    - debug: {msg: \"{{ LIMIT }}\"}\n",
        ("LIMIT", "the most client connections"),
    );
    let shown = screen(&app, 170, 45);
    assert!(shown.contains(" Variables "), "{shown}");
    assert!(shown.contains("{{ LIMIT }}"), "{shown}");
    assert!(shown.contains("the most client connections"), "{shown}");
    assert!(
        shown.contains("{{ ansible_user }}       the credential's user"),
        "{shown}"
    );
    assert!(!shown.contains("[#AUTH_PASSWORD#]"), "no masks: {shown}");
}

#[test]
fn quitting_says_why_a_personal_server_stays_up() {
    let mut app = alice();
    let task = Record::Task(Task {
        meta: Meta::named("disk-check"),
        schedule: Some("0 3 * * *".into()),
        ..Task::default()
    });
    app.update(Message::Answer(
        Call::List(Kind::Task),
        Ok(Response::Records(vec![task])),
    ));
    // A shared server runs on anyway: nothing to say.
    assert_eq!(app.farewell(), None);
    app.personal = true;
    let said = app.farewell().unwrap();
    assert!(
        said.contains("scheduled tasks disk-check (0 3 * * *)"),
        "{said}"
    );
    assert!(said.contains("`gatehouse shutdown` stops it"), "{said}");
    // Nothing scheduled, nothing held: nothing to say.
    app.update(Message::Answer(
        Call::List(Kind::Task),
        Ok(Response::Records(vec![])),
    ));
    assert_eq!(app.farewell(), None);
}

fn pending(id: u64, task: &str, requester: &str) -> ExecutionRequest {
    ExecutionRequest {
        id: Id(id),
        task: task.into(),
        devices: vec!["web-1".into()],
        variables: Default::default(),
        reason: None,
        justification: Some("disk full".into()),
        governance_id: None,
        requester: requester.into(),
        policy: None,
        window_start: Timestamp(NOW),
        window_end: Timestamp(NOW + 3_600_000),
        state: RequestState::Pending { level: 1 },
        decisions: vec![],
        pinned: Pinned {
            task_revision: 1,
            template_id: Id(1),
            template_revision: 1,
            credential_revision: 1,
            devices: vec![],
            children: vec![],
        },
        created_at: Timestamp(NOW - 60_000),
        operations: vec![],
        void_reason: None,
        schedule: None,
        kind: RequestKind::Task,
        change: None,
    }
}

#[test]
fn slash_filters_the_approvals_queue_and_your_requests_and_a_hidden_mark_is_dropped() {
    let mut app = App::new("bob".into(), Theme::default());
    app.clock = Some(Timestamp(NOW));
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(vec![
            pending(41, "nginx-restart", "alice"),
            pending(42, "db-backup", "dave"),
        ])),
    ));
    app.update(Message::Answer(
        Call::MyRequests,
        Ok(Response::Requests(vec![
            pending(50, "nginx-restart", "bob"),
            pending(51, "db-backup", "bob"),
        ])),
    ));
    app.update(key(KeyCode::Char('3')));
    // Both marked, then the filter hides one: a batch decides only what is in view.
    app.update(key(KeyCode::Char(' ')));
    app.update(key(KeyCode::Char(' ')));
    assert!(screen(&app, 120, 40).contains("2 marked"));
    app.update(key(KeyCode::Char('/')));
    type_in(&mut app, "dave");
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("Waiting for you (1), 1 marked: a/r decides them together matching 'dave'"),
        "{shown}"
    );
    assert!(shown.contains("db-backup"), "{shown}");
    assert!(!shown.contains("nginx-restart"), "{shown}");
    // The same filter over your requests.
    app.update(key(KeyCode::Char('m')));
    app.update(key(KeyCode::Char('/')));
    for _ in 0..4 {
        app.update(key(KeyCode::Backspace));
    }
    type_in(&mut app, "nginx");
    app.update(key(KeyCode::Enter));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("Your requests (1), newest first matching 'nginx'"),
        "{shown}"
    );
    assert!(!shown.contains("db-backup"), "{shown}");
    // Esc on the filter line lists everything again.
    app.update(key(KeyCode::Char('/')));
    app.update(key(KeyCode::Esc));
    assert!(screen(&app, 120, 40).contains("Your requests (2)"));
    // The Dashboard has no list: / says where filtering is.
    app.update(key(KeyCode::Char('1')));
    app.update(key(KeyCode::Char('/')));
    assert!(screen(&app, 120, 40).contains("Dashboard has no list to filter"));
}

#[test]
fn remote_colours_show_as_colours_in_the_log_pane_of_both_operation_screens() {
    use ratatui::style::Color;
    let mut app = alice();
    app.update(Message::Answer(
        Call::LiveOperations,
        Ok(Response::Operations(vec![op(
            95,
            94,
            "web-1",
            OpState::Running,
        )])),
    ));
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(vec![op(
            95,
            94,
            "web-1",
            OpState::Running,
        )])),
    ));
    app.update(key(KeyCode::Char('4')));
    app.update(Message::Engine(Event::Output {
        id: Id(95),
        chunk: chunk(0, "\u{1b}[31mREDWORD\u{1b}[0m plainword\n"),
    }));
    // The same operation selected on both screens: the same pane, drawn by each.
    for tab in ['4', '5'] {
        app.update(key(KeyCode::Char(tab)));
        assert_eq!(app.selected_operation().unwrap().id, Id(95));
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal.draw(|f| app.draw(f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let text = screen(&app, 120, 40);
        assert!(!text.contains("[31m"), "{tab}: {text}");
        assert!(!text.contains('\u{fffd}'), "{tab}: {text}");
        let (row, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("REDWORD plainword"))
            .unwrap_or_else(|| panic!("{tab}: {text}"));
        let col = line.chars().position(|c| c == 'R').unwrap() as u16;
        let plain = line.find("plainword").unwrap();
        let plain_col = line[..plain].chars().count() as u16;
        assert_eq!(buffer[(col, row as u16)].fg, Color::Red, "{tab}");
        // Positive control: the text after the reset is not red.
        assert_ne!(buffer[(plain_col, row as u16)].fg, Color::Red, "{tab}");
    }
}
