//! The TUI: frames drawn on ratatui's TestBackend from engine answers, and
//! the real binary driven through tmux.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::domain::{Device, Environment, Kind, Meta, Record};
use gatehouse::engine::{Event, Response};
use gatehouse::ui::{App, Call, Message, Tab, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

fn key(c: char) -> Message {
    Message::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn screen(app: &App, width: u16, height: u16) -> String {
    // Times show in the viewer's zone: these screens are read in UTC.
    gatehouse::domain::zone::set_view_zone(chrono_tz::Tz::UTC);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..height {
        for x in 0..width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

fn device(i: usize) -> Record {
    Record::Device(Device {
        meta: Meta {
            revision: 1,
            ..Meta::named(format!("device-{i:06}"))
        },
        address: "127.0.0.1".into(),
        port: 22,
        product: "Linux".into(),
        tags: vec![],
        environment: "production".into(),
        system: "web".into(),
        ..Default::default()
    })
}

#[test]
fn the_tab_bar_shows_every_screen_and_the_user() {
    let mut app = App::new("alice".into(), Theme::default());
    app.start();
    let text = screen(&app, 120, 30);
    for tab in Tab::ALL {
        assert!(
            text.contains(tab.title()),
            "{} missing:\n{text}",
            tab.title()
        );
    }
    assert!(text.contains("alice"));
}

#[test]
fn admin_lists_records_from_the_engine_and_follows_changes() {
    let mut app = App::new("root".into(), Theme::default());
    app.update(key('7'));
    assert_eq!(app.tab, Tab::Admin);
    let env = Record::Environment(Environment {
        meta: Meta::named("production"),
        ..Default::default()
    });
    app.update(Message::Answer(
        Call::List(Kind::Environment),
        Ok(Response::Records(vec![env])),
    ));
    let text = screen(&app, 120, 20);
    assert!(text.contains("environments (1)"), "{text}");
    assert!(text.contains("production"), "{text}");
    // An engine event asks for the changed kind again.
    let requests = app.update(Message::Engine(Event::RecordChanged {
        kind: Kind::Device,
        name: "web-1".into(),
    }));
    assert_eq!(requests, vec![Call::List(Kind::Device)]);
}

#[test]
fn a_huge_list_draws_only_the_visible_rows_and_follows_the_cursor() {
    let mut app = App::new("root".into(), Theme::default());
    app.update(key('7'));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Right,
        KeyModifiers::NONE,
    )));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Right,
        KeyModifiers::NONE,
    )));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Right,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.admin_kind(), Kind::Device);
    let devices: Vec<Record> = (0..200_000).map(device).collect();
    app.update(Message::Answer(
        Call::List(Kind::Device),
        Ok(Response::Records(devices)),
    ));
    let text = screen(&app, 120, 20);
    assert!(text.contains("device-000000"));
    assert!(!text.contains("device-000100"));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::NONE,
    )));
    let text = screen(&app, 120, 20);
    assert!(text.contains("device-199999"), "{text}");
    assert!(!text.contains("device-000000"));
}

#[test]
fn disabling_from_admin_asks_the_engine() {
    let mut app = App::new("root".into(), Theme::default());
    app.update(key('7'));
    let env = Record::Environment(Environment {
        meta: Meta::named("staging"),
        ..Default::default()
    });
    app.update(Message::Answer(
        Call::List(Kind::Environment),
        Ok(Response::Records(vec![env])),
    ));
    let requests = app.update(key('d'));
    assert_eq!(
        requests,
        vec![Call::SetEnabled {
            kind: Kind::Environment,
            name: "staging".into(),
            enabled: false
        }]
    );
}

#[test]
fn a_refused_list_says_why_instead_of_showing_nothing() {
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key('7'));
    app.update(Message::Answer(
        Call::List(Kind::Environment),
        Err(gatehouse::ui::Failure::Engine(
            gatehouse::engine::EngineError::Denied("'alice' may not view environments".into()),
        )),
    ));
    let text = screen(&app, 120, 20);
    assert!(text.contains("may not view environments"), "{text}");
}

// --- the real binary in tmux ---

use common::tmux::Tmux;

#[test]
fn the_real_tui_shows_live_records_and_quits_cleanly() {
    let d = common::DataDir::new();
    d.ok(&["demo"]);
    let done = d.path().join("exit-status");
    let command = format!(
        "{} --data-dir {} ; echo $? > {}; sleep 30",
        common::bin(),
        d.path().display(),
        done.display()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("Dashboard");
    tmux.wait_for("chain");
    tmux.keys(&["7"]);
    tmux.wait_for("environments (2)");
    tmux.wait_for("production");
    tmux.keys(&["Right", "Right", "Right"]);
    tmux.wait_for("127.0.0.11:22");
    // A change made elsewhere shows up without a keypress.
    d.ok(&["disable", "device", "web-2"]);
    tmux.wait_for("disabled");
    tmux.keys(&["q"]);
    let start = Instant::now();
    // The shell creates the file before it writes the status: wait for both.
    let status = || std::fs::read_to_string(&done).unwrap_or_default();
    while !status().ends_with('\n') && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status().trim(), "0", "the TUI exited with status 0");
    assert!(tmux.alive());
    // The terminal is handed back: the alternate screen with the tab bar is gone.
    assert!(!tmux.screen().contains("1 Dashboard"), "{}", tmux.screen());
}

#[test]
fn slash_filters_the_admin_list_as_you_type_and_esc_clears_it() {
    let mut app = App::new("root".into(), Theme::default());
    app.update(key('7'));
    for _ in 0..3 {
        app.update(Message::Key(KeyEvent::new(
            KeyCode::Right,
            KeyModifiers::NONE,
        )));
    }
    let devices: Vec<Record> = (0..50).map(device).collect();
    app.update(Message::Answer(
        Call::List(Kind::Device),
        Ok(Response::Records(devices)),
    ));
    app.update(key('/'));
    for c in "00004".chars() {
        app.update(key(c));
    }
    let text = screen(&app, 120, 20);
    assert!(
        text.contains("device-000004") && text.contains("device-000040"),
        "{text}"
    );
    assert!(!text.contains("device-000005"), "{text}");
    assert!(text.contains("matching '00004': 11"), "{text}");
    // Enter keeps the filter; the cursor moves within the matches.
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    app.update(key('j'));
    assert_eq!(
        app.list(Kind::Device).unwrap().selected().unwrap().name(),
        "device-000040"
    );
    app.update(key('/'));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Esc,
        KeyModifiers::NONE,
    )));
    let text = screen(&app, 120, 20);
    assert!(text.contains("device-000005"), "{text}");
}

fn operation(id: u64, state: gatehouse::domain::OpState) -> gatehouse::domain::Operation {
    use gatehouse::domain::*;
    Operation {
        id: Id(id),
        request: Id(1),
        task: "restart".into(),
        template: "t".into(),
        template_id: Id(2),
        template_revision: 3,
        executor: Executor::SshScript,
        device: format!("web-{id}"),
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
        created_at: Timestamp(0),
        not_before: Timestamp(0),
        started_at: None,
        finished_at: None,
        error: None,
        jit_until: None,
        output_bytes: 0,
        output_truncated: false,
    }
}

#[test]
fn operations_stream_their_output_live_and_move_to_history_when_done() {
    use gatehouse::domain::{Id, OpState, OutputChunk, Stream, Timestamp};
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key('4'));
    let requests = app.update(Message::Engine(Event::OperationChanged(Box::new(
        operation(10, OpState::Running),
    ))));
    // A new operation also changes the Dashboard's counts: they are asked of the engine.
    assert_eq!(
        requests,
        vec![
            Call::Output {
                id: Id(10),
                from: 0,
                debug: false,
            },
            Call::Metrics
        ],
        "selecting loads stored output"
    );
    let chunk = |seq: u64, text: &str| OutputChunk {
        seq,
        stream: Stream::Stdout,
        time: Timestamp(0),
        bytes: text.as_bytes().to_vec(),
    };
    app.update(Message::Engine(Event::Output {
        id: Id(10),
        chunk: chunk(0, "first line\nsecond "),
    }));
    app.update(Message::Engine(Event::Output {
        id: Id(10),
        chunk: chunk(1, "line\n"),
    }));
    let text = screen(&app, 120, 30);
    assert!(
        text.contains("web-10") && text.contains("running"),
        "{text}"
    );
    assert!(
        text.contains("first line") && text.contains("second line"),
        "{text}"
    );
    // A skipped chunk is read back from the store.
    let requests = app.update(Message::Engine(Event::Output {
        id: Id(10),
        chunk: chunk(5, "late\n"),
    }));
    assert_eq!(
        requests,
        vec![Call::Output {
            id: Id(10),
            from: 2,
            debug: false,
        }]
    );
    // Cancel asks first.
    assert!(app.update(key('c')).is_empty());
    assert_eq!(app.update(key('y')), vec![Call::Cancel(Id(10))]);
    // Done: it stays on Operations, ended, until it ages out; it is in History.
    let mut done = operation(10, OpState::Succeeded);
    done.exit_status = Some(0);
    app.update(Message::Engine(Event::OperationChanged(Box::new(done))));
    assert_eq!(app.live_ops.len(), 1);
    assert!(app.live_ops[0].state.is_final());
    app.update(Message::Tick);
    assert!(app.live_ops.is_empty());
    app.update(key('5'));
    let text = screen(&app, 120, 30);
    assert!(
        text.contains("succeeded") && text.contains("web-10"),
        "{text}"
    );
}

#[test]
fn history_and_stored_output_answers_fill_the_screen() {
    use gatehouse::domain::{Id, OpState, OutputChunk, Stream, Timestamp};
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key('5'));
    let ops = vec![
        operation(12, OpState::Failed),
        operation(11, OpState::Succeeded),
    ];
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(ops)),
    ));
    let requests = app.update(key('j'));
    assert_eq!(
        requests,
        vec![Call::Output {
            id: Id(11),
            from: 0,
            debug: false,
        }]
    );
    let chunks = vec![OutputChunk {
        seq: 0,
        stream: Stream::Stdout,
        time: Timestamp(0),
        bytes: b"stored output\n".to_vec(),
    }];
    // A page of stored output asks for the next (an answer holds at most
    // about 1 MiB), until an empty one says the store has no more.
    let next = app.update(Message::Answer(
        Call::Output {
            id: Id(11),
            from: 0,
            debug: false,
        },
        Ok(Response::Output(chunks)),
    ));
    assert_eq!(
        next,
        vec![Call::Output {
            id: Id(11),
            from: 1,
            debug: false,
        }]
    );
    let done = app.update(Message::Answer(
        Call::Output {
            id: Id(11),
            from: 1,
            debug: false,
        },
        Ok(Response::Output(Vec::new())),
    ));
    assert!(done.is_empty(), "{done:?}");
    let text = screen(&app, 120, 30);
    assert!(text.contains("History, newest first (2)"), "{text}");
    assert!(text.contains("web-12") && text.contains("web-11"), "{text}");
    assert!(text.contains("stored output"), "{text}");
    assert!(!text.contains("unexpected"), "{text}");
}

fn pending_request(id: u64) -> gatehouse::domain::ExecutionRequest {
    use gatehouse::domain::*;
    ExecutionRequest {
        id: Id(id),
        task: "restart".into(),
        devices: vec!["web-1".into()],
        variables: [("SERVICE".to_string(), "nginx".to_string())].into(),
        reason: Some("incident".into()),
        justification: Some("disk full".into()),
        governance_id: None,
        requester: "alice".into(),
        policy: Some("prod-web".into()),
        window_start: Timestamp::now(),
        window_end: Timestamp::now(),
        state: RequestState::Pending { level: 1 },
        decisions: vec![],
        pinned: Pinned {
            task_revision: 1,
            template_id: Id(7),
            template_revision: 2,
            credential_revision: 1,
            devices: vec![("web-1".into(), 1)],
            children: vec![],
        },
        created_at: Timestamp::now(),
        operations: vec![],
        void_reason: None,
        schedule: None,
        kind: gatehouse::domain::RequestKind::Task,
        change: None,
    }
}

/// Space marks requests; `a` then asks one comment for all of them and,
/// under MFA, one code; the marks are shown and cleared once decided.
#[test]
fn marked_requests_are_decided_together_with_one_comment_and_one_code() {
    use gatehouse::domain::Id;
    use gatehouse::engine::api::Decided;
    let mut app = App::new("bob".into(), Theme::default());
    app.update(key('3'));
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(vec![
            pending_request(41),
            pending_request(42),
            pending_request(43),
        ])),
    ));
    // Mark 41 and 43 (space moves down after marking).
    app.update(key(' '));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Down,
        KeyModifiers::NONE,
    )));
    app.update(key(' '));
    let text = screen(&app, 130, 34);
    assert!(
        text.contains("2 marked: a/r decides them together"),
        "{text}"
    );
    assert!(
        text.contains("✓41") && text.contains("✓43") && !text.contains("✓42"),
        "{text}"
    );
    app.update(key('a'));
    assert!(screen(&app, 130, 34).contains("approve requests 41, 43, comment:"));
    for c in "batch".chars() {
        app.update(key(c));
    }
    let enter = || Message::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let calls = app.update(enter());
    let want = Call::Approve {
        ids: vec![Id(41), Id(43)],
        comment: "batch".into(),
        totp: None,
        until: None,
    };
    assert_eq!(calls, vec![want.clone()]);
    // MFA: one code for the batch.
    app.update(Message::Answer(
        want,
        Err(gatehouse::ui::Failure::Engine(
            gatehouse::engine::EngineError::MfaRequired {
                login: "bob".into(),
            },
        )),
    ));
    assert!(screen(&app, 130, 34).contains("TOTP code for requests 41, 43"));
    for c in "123456".chars() {
        app.update(key(c));
    }
    let calls = app.update(enter());
    let with_code = Call::Approve {
        ids: vec![Id(41), Id(43)],
        comment: "batch".into(),
        totp: Some("123456".into()),
        until: None,
    };
    assert_eq!(calls, vec![with_code.clone()]);
    app.update(Message::Answer(
        with_code,
        Ok(Response::Decided(vec![
            Decided {
                id: Id(41),
                outcome: Ok("approved".into()),
            },
            Decided {
                id: Id(43),
                outcome: Err("request 43 expired".into()),
            },
        ])),
    ));
    let text = screen(&app, 130, 34);
    assert!(
        text.contains("request 43: request 43 expired · request 41: approved"),
        "{text}"
    );
    assert!(!text.contains("✓41"), "marks are cleared: {text}");
}

#[test]
fn the_approvals_queue_shows_what_will_run_and_decides_with_a_comment() {
    use gatehouse::domain::{Executor, Id, Template};
    let mut app = App::new("bob".into(), Theme::default());
    app.update(key('3'));
    let template = Template {
        meta: Meta {
            id: Id(7),
            revision: 2,
            ..Meta::named("service-restart")
        },
        executor: Executor::SshExpect,
        content: "exec \"sudo systemctl restart [#SERVICE#]\"\nexec \"[#AUTH_PASSWORD#]\"".into(),
        variables: vec![gatehouse::domain::Variable {
            name: "SERVICE".into(),
            ..Default::default()
        }],
        ..Template::default()
    };
    // The queue asks what each request runs; an approver need not see templates.
    let asked = app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(vec![pending_request(42)])),
    ));
    assert_eq!(asked, vec![Call::RequestView(Id(42))]);
    assert!(screen(&app, 130, 34).contains("loading what it runs"));
    let device = gatehouse::domain::Device {
        meta: Meta::named("web-1"),
        address: "10.0.0.5".into(),
        port: 22,
        ..Default::default()
    };
    let request = pending_request(42);
    let view = gatehouse::engine::api::RequestView {
        credential: "ops".into(),
        username: "svc".into(),
        template: template.meta.name.clone(),
        template_revision: 2,
        executor: "ssh-expect".into(),
        template_now: None,
        variables: vec![("SERVICE".into(), "nginx".into(), false)],
        runs: vec![gatehouse::engine::api::DeviceRun {
            devices: vec!["web-1".into()],
            text: gatehouse::template::preview(&template, &device, "svc", &request.variables),
        }],
        children: Vec::new(),
        review: None,
        dry_runs: Vec::new(),
        request,
    };
    app.update(Message::Answer(
        Call::RequestView(Id(42)),
        Ok(Response::RequestView(Box::new(view))),
    ));
    let text = screen(&app, 130, 34);
    assert!(text.contains("Waiting for you (1)"), "{text}");
    assert!(
        text.contains("alice") && text.contains("level 1") && text.contains("disk full"),
        "{text}"
    );
    assert!(
        text.contains("[#AUTH_PASSWORD#]"),
        "masks are shown as names: {text}"
    );
    assert!(
        text.contains("on web-1:") && text.contains("sudo systemctl restart nginx"),
        "the variable's value is in place: {text}"
    );
    assert!(text.contains("credential ops (as svc)"), "{text}");
    // Reject needs a comment; approve takes one.
    app.update(key('r'));
    assert!(app
        .update(Message::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE
        )))
        .is_empty());
    for c in "not now".chars() {
        app.update(key(c));
    }
    let requests = app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(
        requests,
        vec![Call::Reject {
            ids: vec![Id(42)],
            comment: "not now".into()
        }]
    );
    app.update(key('a'));
    let requests = app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(
        requests,
        vec![Call::Approve {
            ids: vec![Id(42)],
            comment: String::new(),
            totp: None,
            until: None,
        }]
    );
    // Under an MFA policy the engine refuses without a code: the TUI asks
    // for one (it knows by the error's kind, not its words).
    app.update(Message::Answer(
        requests[0].clone(),
        Err(gatehouse::ui::Failure::Engine(
            gatehouse::engine::EngineError::MfaRequired {
                login: "bob".into(),
            },
        )),
    ));
    assert!(screen(&app, 130, 34).contains("TOTP code for request 42"));
    for c in "123456".chars() {
        app.update(key(c));
    }
    assert!(
        !screen(&app, 130, 34).contains("123456"),
        "the code is masked"
    );
    let requests = app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(
        requests,
        vec![Call::Approve {
            ids: vec![Id(42)],
            comment: String::new(),
            totp: Some("123456".into()),
            until: None,
        }]
    );
    // Someone else's decision refreshes the queue and the Dashboard's count
    // of what waits.
    let requests = app.update(Message::Engine(Event::RequestChanged(Box::new(
        pending_request(42),
    ))));
    assert_eq!(requests, vec![Call::Queue, Call::Metrics]);
}

#[test]
fn colon_jumps_to_screens_and_kinds_and_question_mark_lists_the_keys() {
    let mut app = App::new("root".into(), Theme::default());
    app.update(key(':'));
    for c in "appr".chars() {
        app.update(key(c));
    }
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Tab,
        KeyModifiers::NONE,
    )));
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.tab, Tab::Approvals);
    app.update(key(':'));
    for c in "templates".chars() {
        app.update(key(c));
    }
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!((app.tab, app.admin_kind()), (Tab::Admin, Kind::Template));
    app.update(key(':'));
    for c in "bogus".chars() {
        app.update(key(c));
    }
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(screen(&app, 120, 20).contains("unknown 'bogus'"));
    app.update(key('?'));
    let text = screen(&app, 120, 30);
    assert!(
        text.contains("Admin keys")
            && text.contains("enable/disable")
            && text.contains("jump to a screen"),
        "{text}"
    );
    app.update(key('?'));
    assert!(app.help().is_none());
}

#[test]
fn history_pages_back_as_the_cursor_nears_the_end() {
    use gatehouse::domain::{Id, OpState};
    let mut app = App::new("root".into(), Theme::default());
    app.update(key('5'));
    let page = |from: u64, n: u64| {
        (0..n)
            .map(|i| operation(from - i, OpState::Succeeded))
            .collect::<Vec<_>>()
    };
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(page(10_000, 2000))),
    ));
    let requests = app.update(Message::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::NONE,
    )));
    assert!(
        requests.contains(&Call::HistoryBefore(Id(8001))),
        "{requests:?}"
    );
    // No second request while the first is out.
    assert!(!app
        .update(key('k'))
        .iter()
        .any(|r| matches!(r, Call::HistoryBefore(_))));
    app.update(Message::Answer(
        Call::HistoryBefore(Id(8001)),
        Ok(Response::Operations(page(8000, 500))),
    ));
    assert_eq!(app.history.ops.len(), 2500);
    assert!(app.history.complete);
    let requests = app.update(Message::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::NONE,
    )));
    assert!(!requests.iter().any(|r| matches!(r, Call::HistoryBefore(_))));
    assert!(screen(&app, 120, 30).contains("web-7501"));
}

/// `b` in the log pane reads the log again with the debug trace; refused
/// (no view-execution-debug), the pane says why and goes back to the
/// output alone.
#[test]
fn the_log_pane_toggles_the_debug_trace_and_a_refusal_says_why() {
    use gatehouse::domain::{Id, OpState, OutputChunk, Stream, Timestamp};
    use gatehouse::engine::EngineError;
    use gatehouse::ui::Failure;
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key('4'));
    app.update(Message::Engine(Event::OperationChanged(Box::new(
        operation(10, OpState::Running),
    ))));
    assert_eq!(
        app.update(key('b')),
        vec![Call::Output {
            id: Id(10),
            from: 0,
            debug: true,
        }]
    );
    let chunk = |seq: u64, stream: Stream, text: &str| OutputChunk {
        seq,
        stream,
        time: Timestamp(0),
        bytes: text.as_bytes().to_vec(),
    };
    app.update(Message::Answer(
        Call::Output {
            id: Id(10),
            from: 0,
            debug: true,
        },
        Ok(Response::Output(vec![
            chunk(
                0,
                Stream::Debug,
                "session up in 12 ms: host key ssh-ed25519\n",
            ),
            chunk(1, Stream::Stdout, "hello\n"),
        ])),
    ));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("· session up in 12 ms"), "{shown}");
    assert!(shown.contains("hello"), "{shown}");
    // Refused: said, and the output alone again.
    let again = app.update(key('b'));
    assert_eq!(
        again,
        vec![Call::Output {
            id: Id(10),
            from: 0,
            debug: false,
        }]
    );
    app.update(key('b'));
    let back = app.update(Message::Answer(
        Call::Output {
            id: Id(10),
            from: 0,
            debug: true,
        },
        Err(Failure::Engine(EngineError::Denied(
            "'alice' may not see an operation's debug trace (needs the view-execution-debug permission)".into(),
        ))),
    ));
    assert_eq!(
        back,
        vec![Call::Output {
            id: Id(10),
            from: 0,
            debug: false,
        }]
    );
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .contains("view-execution-debug"));
}

/// The footer shows whole key entries only, never a cut word, and always
/// the help key that lists the rest.
#[test]
fn the_footer_shows_whole_keys_only_and_always_the_help_and_quit_keys() {
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key('4'));
    let full = app.keys();
    assert!(
        full.contains("b debug trace") && full.contains("q quit"),
        "{full}"
    );
    // Too narrow for both: the help key alone.
    assert_eq!(app.keys_within(10), "? help");
    for width in [20, 40, 60, 80] {
        let shown = app.keys_within(width);
        assert!(shown.chars().count() <= width, "{width}: {shown}");
        assert!(shown.ends_with("? help  q quit"), "{width}: {shown}");
        for part in shown.split("  ") {
            assert!(
                full.split("  ").any(|p| p == part),
                "{width}: cut entry {part:?}"
            );
        }
    }
    assert_eq!(app.keys_within(1000), full);
}

/// A new emergency run rings the bell once and says so; on the Approvals
/// tab `a` accepts it and `r` flags it, each with a comment that may not
/// be empty; an emergency and a pending request are not decided together.
#[test]
fn an_emergency_rings_once_and_is_reviewed_from_the_queue_with_a_comment() {
    use gatehouse::domain::{Id, RequestState};
    let mut app = App::new("bob".into(), Theme::default());
    app.update(key('3'));
    let mut emergency = pending_request(50);
    emergency.state = RequestState::Emergency;
    let queue = vec![pending_request(49), emergency];
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(queue.clone())),
    ));
    assert!(app.take_bell(), "a new emergency rings the bell");
    assert!(!app.take_bell());
    assert!(screen(&app, 130, 34).contains("EMERGENCY run #50"));
    app.update(Message::Answer(Call::Queue, Ok(Response::Requests(queue))));
    assert!(!app.take_bell(), "the same emergency rings once");

    // Both marked: refused.
    app.update(key(' '));
    app.update(key(' '));
    assert!(app.update(key('a')).is_empty());
    assert!(app.status.clone().unwrap().0.contains("reviewed apart"));
    app.update(key(' '));
    app.update(Message::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)));
    app.update(key(' '));
    // Only the emergency (50) is marked now; select it and flag it.
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Down,
        KeyModifiers::NONE,
    )));
    app.update(key('r'));
    let text = screen(&app, 130, 34);
    assert!(
        text.contains("flag the emergency run of request 50 for follow-up, why:"),
        "{text}"
    );
    let enter = || Message::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(app.update(enter()).is_empty(), "a review needs a comment");
    for c in "ask why".chars() {
        app.update(key(c));
    }
    assert_eq!(
        app.update(enter()),
        vec![Call::Review {
            ids: vec![Id(50)],
            accepted: false,
            comment: "ask why".into()
        }]
    );
}

/// `u` approves with the window narrowed: it asks when the window should
/// end (a wrong time is said, and asked again), then the comment.
#[test]
fn an_approver_narrows_the_window_from_the_queue() {
    use gatehouse::domain::{Id, Timestamp};
    let mut app = App::new("bob".into(), Theme::default());
    app.clock = Some(Timestamp(1_795_694_400_000)); // 2026-11-26 12:00 UTC
    app.update(key('3'));
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(vec![pending_request(42)])),
    ));
    app.update(key('u'));
    assert!(screen(&app, 130, 34).contains("approve request 42 with its window ending at"));
    let enter = || Message::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    for c in "soon".chars() {
        app.update(key(c));
    }
    assert!(app.update(enter()).is_empty());
    assert!(
        app.status.clone().unwrap().0.contains("'soon'"),
        "{:?}",
        app.status
    );
    for _ in 0..4 {
        app.update(Message::Key(KeyEvent::new(
            KeyCode::Backspace,
            KeyModifiers::NONE,
        )));
    }
    for c in "+2h".chars() {
        app.update(key(c));
    }
    assert!(app.update(enter()).is_empty());
    assert!(screen(&app, 130, 34).contains("approve request 42, window to end 2026-11-26 14:00:00"));
    for c in "until two".chars() {
        app.update(key(c));
    }
    assert_eq!(
        app.update(enter()),
        vec![Call::Approve {
            ids: vec![Id(42)],
            comment: "until two".into(),
            totp: None,
            until: Some(Timestamp(1_795_694_400_000 + 2 * 3_600_000)),
        }]
    );
}

/// A user who may not see the audit log keeps their confirmations: the
/// refusal of the log is said where the log would be, once, and not
/// asked again at every audit event; kinds they may not list count as
/// unknown ("-"), not as zero.
#[test]
fn without_view_audit_confirmations_stay_and_the_dashboard_says_what_is_not_yours() {
    let mut app = App::new("alice".into(), Theme::default());
    app.status = Some((
        "request 39 is waiting for approval at level 1".into(),
        false,
    ));
    let denied = || {
        Err(gatehouse::ui::Failure::Engine(
            gatehouse::engine::EngineError::Denied("'alice' may not view the audit log".into()),
        ))
    };
    app.update(Message::Answer(Call::AuditTail, denied()));
    app.update(Message::Answer(Call::AuditVerify, denied()));
    app.update(Message::Answer(Call::List(Kind::User), denied()));
    app.update(Message::Answer(
        Call::List(Kind::Environment),
        Ok(Response::Records(Vec::new())),
    ));
    assert_eq!(
        app.status.clone().unwrap().0,
        "request 39 is waiting for approval at level 1"
    );
    let text = screen(&app, 120, 40);
    assert!(text.contains("not yours to see (view-audit)"), "{text}");
    assert!(!text.contains("verifying"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_string()
    };
    assert!(line("users ").contains("    -"), "{text}");
    assert!(line("environments").contains("    0"), "{text}");
    // An audit event asks nothing more of the log.
    assert!(app
        .update(Message::Engine(Event::AuditAppended { seq: 9 }))
        .is_empty());
}

/// An approver asks for a dry run of a pending playbook request with `d`;
/// when it ends, its output shows beside what the request runs. A request
/// that runs no playbook has no dry run.
#[test]
fn an_approver_asks_for_a_dry_run_with_d_and_sees_its_output_beside_the_request() {
    use gatehouse::domain::{Id, OpState, Trigger};
    use gatehouse::engine::api::{DeviceRun, DryRunView, RequestView};
    let mut app = App::new("bob".into(), Theme::default());
    app.update(key('3'));
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(vec![pending_request(42)])),
    ));
    let view = |executor: &str, dry_runs: Vec<DryRunView>| RequestView {
        credential: "ops".into(),
        username: "svc".into(),
        template: "pgbouncer".into(),
        template_revision: 2,
        executor: executor.into(),
        template_now: None,
        variables: Vec::new(),
        runs: vec![DeviceRun {
            devices: vec!["web-1".into()],
            text: "- name: configure\n  tasks: []".into(),
        }],
        children: Vec::new(),
        review: None,
        dry_runs,
        request: pending_request(42),
    };
    // Control: a script's request has no dry run.
    app.update(Message::Answer(
        Call::RequestView(Id(42)),
        Ok(Response::RequestView(Box::new(view(
            "ssh-script",
            Vec::new(),
        )))),
    ));
    assert!(app.update(key('d')).is_empty());
    assert!(screen(&app, 130, 34).contains("runs no playbook"));
    app.update(Message::Answer(
        Call::RequestView(Id(42)),
        Ok(Response::RequestView(Box::new(view(
            "ansible-playbook",
            Vec::new(),
        )))),
    ));
    // The help lists the key with this screen's others.
    app.update(key('?'));
    let text = screen(&app, 130, 40);
    assert!(
        text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.windows(3).any(|w| w == ["d", "dry", "run"])
        }),
        "the help names the key: {text}"
    );
    app.update(Message::Key(KeyEvent::new(
        KeyCode::Esc,
        KeyModifiers::NONE,
    )));
    assert_eq!(app.update(key('d')), vec![Call::DryRun(Id(42))]);
    let mut op = operation(50, OpState::Queued);
    op.trigger = Trigger::DryRun { request: Id(42) };
    app.update(Message::Answer(
        Call::DryRun(Id(42)),
        Ok(Response::Requested {
            request: Id(49),
            operations: vec![op.clone()],
        }),
    ));
    assert!(screen(&app, 130, 34).contains("dry run of request 42 started on 1 device(s)"));
    // Its end asks for the request's view again, which carries its output.
    op.state = OpState::Succeeded;
    let asked = app.update(Message::Engine(Event::OperationChanged(Box::new(op))));
    assert!(asked.contains(&Call::RequestView(Id(42))), "{asked:?}");
    app.update(Message::Answer(
        Call::RequestView(Id(42)),
        Ok(Response::RequestView(Box::new(view(
            "ansible-playbook",
            vec![DryRunView {
                operation: Id(50),
                device: "web-1".into(),
                state: "succeeded".into(),
                requested_by: "bob".into(),
                error: None,
                output: vec![
                    "TASK [write the setting] changed".into(),
                    "  +max_client_conn = 200".into(),
                ],
            }],
        )))),
    ));
    let text = screen(&app, 130, 34);
    assert!(
        text.contains("dry run 50 on web-1 (asked by bob): succeeded"),
        "{text}"
    );
    assert!(text.contains("+max_client_conn = 200"), "{text}");
}
