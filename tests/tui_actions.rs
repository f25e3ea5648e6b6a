//! The TUI's actions, key by key: what each asks the engine, and what the
//! screen shows when the answer comes (request form, Admin forms, delete
//! with confirmation, host-key trust, revision diffs, rebound keys, mouse).

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
mod common;

use common::screen::{key, screen, type_in};
use gatehouse::domain::*;
use gatehouse::engine::{EngineError, RequestTerms, Response};
use gatehouse::ui::{App, Call, Confirm, Keymap, Message, Tab, Theme};
use std::collections::BTreeMap;

fn ctrl(c: char) -> Message {
    Message::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn records(kind: Kind, records: Vec<Record>) -> Message {
    Message::Answer(Call::List(kind), Ok(Response::Records(records)))
}

fn named(kind: Kind, name: &str) -> Record {
    let meta = Meta {
        revision: 1,
        ..Meta::named(name)
    };
    match kind {
        Kind::Environment => Record::Environment(Environment {
            meta,
            ..Default::default()
        }),
        Kind::System => Record::System(System { meta }),
        _ => unreachable!(),
    }
}

fn device(name: &str, host_key: Option<HostKey>) -> Record {
    Record::Device(Device {
        meta: Meta {
            revision: 1,
            ..Meta::named(name)
        },
        address: "127.0.0.1".into(),
        port: 22,
        product: "Linux".into(),
        tags: vec![],
        environment: "lab".into(),
        system: "tools".into(),
        host_keys: host_key.into_iter().collect(),
        ..Default::default()
    })
}

fn template(revision: u32, content: &str) -> Template {
    Template {
        meta: Meta {
            revision,
            updated_by: "root".into(),
            ..Meta::named("restart")
        },
        executor: Executor::SshScript,
        content: content.into(),
        ..Template::default()
    }
}

/// Admin on the given kind, with environments and systems to choose from.
fn admin(kind: Kind) -> App {
    let mut app = App::new("root".into(), Theme::default());
    app.update(records(
        Kind::Environment,
        vec![named(Kind::Environment, "lab")],
    ));
    app.update(records(Kind::System, vec![named(Kind::System, "tools")]));
    app.update(key(KeyCode::Char('7')));
    while app.admin_kind() != kind {
        app.update(key(KeyCode::Right));
    }
    app
}

#[test]
fn enter_on_a_task_opens_its_request_form_and_submits_what_was_typed() {
    let mut app = App::new("alice".into(), Theme::default());
    let task = Record::Task(Task {
        meta: Meta::named("restart"),
        devices: vec!["web-1".into(), "web-2".into()],
        ..Task::default()
    });
    app.update(records(Kind::Task, vec![task]));
    app.update(key(KeyCode::Char('2')));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Call::Terms("restart".into())]
    );
    let terms = RequestTerms {
        task: "restart".into(),
        devices: vec!["web-1".into(), "web-2".into()],
        variables: vec![Variable {
            name: "SERVICE".into(),
            description: "unit".into(),
            default: Some("nginx".into()),
            pattern: String::new(),
        }],
        policy: Some("prod-web".into()),
        requires_approval: true,
        approval_levels: 1,
        requires_justification: true,
        ..Default::default()
    };
    app.update(Message::Answer(
        Call::Terms("restart".into()),
        Ok(Response::Terms(Box::new(terms))),
    ));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("Request restart"), "{shown}");
    assert!(
        shown.contains("Policy prod-web: approval at 1 level, needs a justification"),
        "{shown}"
    );
    // Submitting without the justification the policy requires is stopped here.
    assert!(app.update(ctrl('s')).is_empty());
    assert!(screen(&app, 120, 40).contains("Justification is required"));
    // The focus went to the field that needs it.
    type_in(&mut app, "disk full");
    let asked = app.update(ctrl('s'));
    let [Call::Submit(spec)] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert_eq!(spec.task, "restart");
    assert_eq!(spec.justification.as_deref(), Some("disk full"));
    assert_eq!(
        spec.variables.get("SERVICE").map(String::as_str),
        Some("nginx")
    );
    // The engine refuses: the form stays, saying why.
    app.update(Message::Answer(
        asked[0].clone(),
        Err(
            "not permitted: outside the access window of policy prod-web: Mon–Fri 08:00–18:00"
                .into(),
        ),
    ));
    assert!(screen(&app, 120, 40).contains("outside the access window of policy prod-web"));
    // Accepted: the form closes and says where the request went.
    let mut filed = pending(9);
    filed.task = "restart".into();
    app.update(Message::Answer(
        asked[0].clone(),
        Ok(Response::Filed(Box::new(filed))),
    ));
    assert!(app.request_form().is_none());
    assert_eq!(
        app.status.as_ref().map(|s| s.0.as_str()),
        Some("request 9 is waiting for approval at level 1")
    );
}

fn pending(id: u64) -> ExecutionRequest {
    ExecutionRequest {
        id: Id(id),
        task: "t".into(),
        devices: vec![],
        variables: BTreeMap::new(),
        reason: None,
        justification: None,
        governance_id: None,
        requester: "alice".into(),
        policy: None,
        window_start: Timestamp(0),
        window_end: Timestamp(0),
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
        created_at: Timestamp(0),
        operations: vec![],
        void_reason: None,
        schedule: None,
        kind: gatehouse::domain::RequestKind::Task,
        change: None,
    }
}

#[test]
fn a_new_device_is_saved_through_the_import_and_a_refusal_lands_under_its_field() {
    let mut app = admin(Kind::Device);
    app.update(key(KeyCode::Char('n')));
    assert!(screen(&app, 120, 40).contains("New device"));
    type_in(&mut app, "web-9");
    app.update(key(KeyCode::Tab));
    type_in(&mut app, "127.0.0.9");
    let asked = app.update(ctrl('s'));
    let [Call::Save { kind, name, items }] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert_eq!((*kind, name.as_str()), (Kind::Device, "web-9"));
    let Record::Device(d) = &items[0].record else {
        panic!()
    };
    assert_eq!(
        (
            d.address.as_str(),
            d.environment.as_str(),
            d.system.as_str()
        ),
        ("127.0.0.9", "lab", "tools")
    );
    app.update(Message::Answer(
        asked[0].clone(),
        Err(gatehouse::ui::Failure::Engine(EngineError::Invalid {
            kind: Kind::Device,
            name: "web-9".into(),
            line: 1,
            field: Some("address".into()),
            at: None,
            message: "already used by device web-1 on port 22".into(),
        })),
    ));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("✗ already used by device web-1 on port 22"),
        "{shown}"
    );
    app.update(Message::Answer(
        asked[0].clone(),
        Ok(Response::Imported {
            created: vec!["device web-9".into()],
            updated: vec![],
            unchanged: 0,
        }),
    ));
    assert!(app.record_form().is_none());
    assert_eq!(
        app.status.as_ref().map(|s| s.0.as_str()),
        Some("created device web-9")
    );
}

#[test]
fn editing_a_credential_never_shows_its_secret_and_keeps_it_when_left_blank() {
    let mut app = admin(Kind::Credential);
    let credential = Record::Credential(Credential {
        meta: Meta {
            revision: 2,
            ..Meta::named("ops")
        },
        username: "ops".into(),
        password: Some(Sealed(vec![1, 2, 3])),
        ..Credential::default()
    });
    app.update(records(Kind::Credential, vec![credential]));
    app.update(key(KeyCode::Char('e')));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("Edit credential ops"), "{shown}");
    assert!(shown.contains("(set; type to replace)"), "{shown}");
    let asked = app.update(ctrl('s'));
    let [Call::Save { items, .. }] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert!(
        items[0].secrets.password.is_none(),
        "a blank secret is left as stored"
    );
    // Typed secrets are masked on screen.
    app.update(key(KeyCode::Esc));
    app.update(key(KeyCode::Char('e')));
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Tab));
    type_in(&mut app, "hunter2");
    let shown = screen(&app, 120, 40);
    assert!(
        !shown.contains("hunter2") && shown.contains("•••••••"),
        "{shown}"
    );
    let asked = app.update(ctrl('s'));
    let [Call::Save { items, .. }] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert_eq!(items[0].secrets.password.as_deref(), Some("hunter2"));
    // Credentials are not cloned.
    app.update(key(KeyCode::Esc));
    app.update(key(KeyCode::Char('c')));
    assert!(app.record_form().is_none());
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .contains("credential records are not cloned"));
}

#[test]
fn delete_asks_first_and_only_y_deletes() {
    let mut app = admin(Kind::Device);
    app.update(records(Kind::Device, vec![device("web-1", None)]));
    assert!(app.update(key(KeyCode::Char('D'))).is_empty());
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .starts_with("delete device web-1?"));
    assert!(app.update(key(KeyCode::Char('n'))).is_empty());
    assert_eq!(app.status.as_ref().unwrap().0, "device web-1 kept");
    app.update(key(KeyCode::Char('D')));
    assert_eq!(
        app.update(key(KeyCode::Char('y'))),
        vec![Call::Delete {
            kind: Kind::Device,
            name: "web-1".into()
        }]
    );
    // In use: the engine says by whom.
    app.update(Message::Answer(
        Call::Delete {
            kind: Kind::Device,
            name: "web-1".into(),
        },
        Err(gatehouse::ui::Failure::Engine(EngineError::InUse {
            kind: Kind::Device,
            name: "web-1".into(),
            used_by: vec!["task restart".into()],
        })),
    ));
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .contains("in use by task restart"));
}

#[test]
fn trusting_shows_every_offered_key_and_what_they_replace() {
    let old = HostKey::parse("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU").unwrap();
    let mut app = admin(Kind::Device);
    app.update(records(
        Kind::Device,
        vec![device("web-1", Some(old.clone()))],
    ));
    assert_eq!(
        app.update(key(KeyCode::Char('t'))),
        vec![Call::ScanHostKeys("web-1".into())]
    );
    let offered = vec![
        HostKey::parse("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s").unwrap(),
        HostKey::parse("SHA256:2u0GMvXv4M1wVkmq3ZV0oPg4EfbJc6m4dUQo7n0Hq0E").unwrap(),
    ];
    app.update(Message::Answer(
        Call::ScanHostKeys("web-1".into()),
        Ok(Response::HostKeys(offered.clone())),
    ));
    let status = app.status.clone().unwrap().0;
    for key in &offered {
        assert!(status.contains(&key.fingerprint()), "{status}");
    }
    assert!(
        status.contains(&format!("REPLACE the pinned {}", old.fingerprint())),
        "{status}"
    );
    assert_eq!(
        app.confirm(),
        Some(&Confirm::Trust {
            device: "web-1".into(),
            keys: offered.clone()
        })
    );
    assert_eq!(
        app.update(key(KeyCode::Char('y'))),
        vec![Call::PinHostKeys {
            device: "web-1".into(),
            keys: offered
        }]
    );
}

#[test]
fn revisions_show_the_difference_between_two() {
    let mut app = admin(Kind::Template);
    app.update(records(
        Kind::Template,
        vec![Record::Template(template(2, "systemctl restart nginx\n"))],
    ));
    assert_eq!(
        app.update(key(KeyCode::Char('v'))),
        vec![Call::Revisions("restart".into())]
    );
    app.update(Message::Answer(
        Call::Revisions("restart".into()),
        Ok(Response::Records(vec![
            Record::Template(template(1, "service nginx restart\n")),
            Record::Template(template(2, "systemctl restart nginx\n")),
        ])),
    ));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("comparing revision 1 → 2"), "{shown}");
    assert!(shown.contains("- service nginx restart"), "{shown}");
    assert!(shown.contains("+ systemctl restart nginx"), "{shown}");
    app.update(key(KeyCode::Esc));
    assert!(app.revisions().is_none());
}

#[test]
fn rebound_keys_work_and_the_footer_shows_them() {
    let mut app = App::new("bob".into(), Theme::default());
    let mut overrides = BTreeMap::new();
    overrides.insert("approve".to_string(), vec!["y".to_string()]);
    overrides.insert("quit".to_string(), vec!["ctrl-q".to_string()]);
    app.keys = Keymap::with(&overrides).unwrap();
    app.update(Message::Answer(
        Call::Queue,
        Ok(Response::Requests(vec![pending(5)])),
    ));
    app.update(key(KeyCode::Char('3')));
    app.update(key(KeyCode::Char('a')));
    assert!(app.decision_input().is_none(), "a no longer approves");
    app.update(key(KeyCode::Char('y')));
    assert!(app.decision_input().is_some());
    app.update(key(KeyCode::Esc));
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("y approve") && shown.contains("Ctrl-Q quit"),
        "{shown}"
    );
    app.update(key(KeyCode::Char('q')));
    assert!(!app.should_quit());
    app.update(ctrl('q'));
    assert!(app.should_quit());
}

#[test]
fn clicks_pick_tabs_and_rows_and_the_wheel_scrolls() {
    let mut app = admin(Kind::Device);
    let devices: Vec<Record> = (0..30).map(|i| device(&format!("d{i:02}"), None)).collect();
    app.update(records(Kind::Device, devices));
    let click = |column, row| {
        Message::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    // Rows start below the kind bar, the border and the header.
    screen(&app, 120, 40);
    app.update(click(10, 6));
    assert_eq!(app.list(Kind::Device).unwrap().selected, 2);
    app.update(Message::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 10,
        row: 10,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.list(Kind::Device).unwrap().selected, 5);
    // The tab bar: " 1 Dashboard │ 2 Tasks │ 3 Approvals …"
    app.update(click(27, 0));
    assert_eq!(app.tab, Tab::Approvals);
}

fn op(id: u64, task: &str, state: OpState) -> Operation {
    Operation {
        id: Id(id),
        request: Id(id),
        task: task.into(),
        template: "t".into(),
        template_id: Id(1),
        template_revision: 1,
        executor: Executor::SshScript,
        device: "web-1".into(),
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
        exit_status: Some(1),
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
fn history_filters_by_task_device_user_state_and_text_through_the_engine() {
    use gatehouse::engine::HistoryFilter;
    let mut app = App::new("carol".into(), Theme::default());
    app.update(key(KeyCode::Char('5')));
    app.update(key(KeyCode::Char('/')));
    type_in(&mut app, "task:restart state:nope");
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .starts_with("state:nope: not a state"));
    for _ in 0..4 {
        app.update(key(KeyCode::Backspace));
    }
    type_in(&mut app, "failed disk full");
    let asked = app.update(key(KeyCode::Enter));
    let wanted = HistoryFilter {
        task: Some("restart".into()),
        state: Some(OpState::Failed),
        text: Some("disk full".into()),
        ..Default::default()
    };
    assert_eq!(asked.first(), Some(&Call::HistoryFiltered(wanted.clone())));
    let page: Vec<Operation> = (0..2000)
        .rev()
        .map(|i| op(i + 1, "restart", OpState::Failed))
        .collect();
    app.update(Message::Answer(
        Call::HistoryFiltered(wanted.clone()),
        Ok(Response::Operations(page)),
    ));
    assert_eq!(app.history.ops.len(), 2000);
    // An unfiltered answer arriving late does not replace the filtered list.
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(vec![op(
            9999,
            "other",
            OpState::Succeeded,
        )])),
    ));
    assert_eq!(app.history.ops.len(), 2000);
    // Paging back keeps the filter.
    let mut asked = Vec::new();
    for _ in 0..1900 {
        asked.extend(app.update(key(KeyCode::Down)));
    }
    assert!(
        asked.contains(&Call::HistoryFiltered(HistoryFilter {
            before: Some(Id(1)),
            ..wanted
        })),
        "{asked:?}"
    );
    // Esc on the filter line drops it.
    app.update(key(KeyCode::Char('/')));
    assert_eq!(app.update(key(KeyCode::Esc)).first(), Some(&Call::History));
    assert!(app.history.filter.is_none());
}

#[test]
fn the_audit_list_filters_and_exports() {
    let mut app = App::new("carol".into(), Theme::default());
    let mut prev = [0u8; 32];
    let events: Vec<gatehouse::store::AuditEvent> = (1..=30u64)
        .map(|seq| {
            let mut e = gatehouse::store::AuditEvent {
                seq,
                time: Timestamp(0),
                actor: if seq % 3 == 0 {
                    "alice".into()
                } else {
                    "bob".into()
                },
                action: "request.create".into(),
                target: format!("request {seq}"),
                details: String::new(),
                prev_hash: prev,
                hash: [0; 32],
            };
            e.hash = e.compute_hash();
            prev = e.hash;
            e
        })
        .collect();
    app.update(Message::Answer(
        Call::AuditTail,
        Ok(Response::AuditEvents(events)),
    ));
    app.update(key(KeyCode::Char('6')));
    app.update(key(KeyCode::Char('/')));
    type_in(&mut app, "alice");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.audit_view().len(), 10);
    let shown = screen(&app, 120, 40);
    assert!(
        shown.contains("10 of the newest 30 match 'alice'"),
        "{shown}"
    );
    assert!(!shown.contains(" bob "), "{shown}");
    // x asks where first, offering a new file in the current directory.
    assert!(app.update(key(KeyCode::Char('x'))).is_empty());
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("export the audit log to"), "{shown}");
    assert!(shown.contains(".jsonl"), "{shown}");
    // Esc writes nothing.
    assert!(app.update(key(KeyCode::Esc)).is_empty());
    assert!(screen(&app, 120, 40).contains("nothing exported"));
    app.update(key(KeyCode::Char('x')));
    for _ in 0..80 {
        app.update(key(KeyCode::Backspace));
    }
    type_in(&mut app, "/tmp/chosen.jsonl");
    let asked = app.update(key(KeyCode::Enter));
    let [Call::ExportAudit(path)] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    assert_eq!(path, std::path::Path::new("/tmp/chosen.jsonl"));
    app.update(Message::Status(
        "exported 30 audit events to x.jsonl".into(),
        false,
    ));
    assert!(screen(&app, 120, 40).contains("exported 30 audit events"));
}

fn credential(name: &str) -> Record {
    Record::Credential(Credential {
        meta: Meta {
            revision: 1,
            ..Meta::named(name)
        },
        username: "svc".into(),
        device: Some("web-1".into()),
        change_template: Some("chpasswd".into()),
        ..Credential::default()
    })
}

#[test]
fn p_on_a_credential_changes_its_password_after_a_confirmation() {
    let mut app = admin(Kind::Credential);
    let asked = app.update(records(Kind::Credential, vec![credential("svc-web")]));
    assert_eq!(asked, vec![Call::CredentialStates], "its state is asked");
    app.update(Message::Answer(
        Call::CredentialStates,
        Ok(Response::CredentialStates(vec![
            gatehouse::engine::rotation::CredentialState {
                name: "svc-web".into(),
                status: SecretStatus::OutOfSync { why: "w".into() },
                changed_at: None,
                next_due: None,
                verified_at: None,
                changes: 0,
            },
        ])),
    ));
    assert!(screen(&app, 120, 40).contains("password out-of-sync"));
    // Positive control for the confirmation: `n` changes nothing.
    assert!(app.update(key(KeyCode::Char('p'))).is_empty());
    assert!(app.update(key(KeyCode::Char('n'))).is_empty());
    assert!(app.status.as_ref().unwrap().0.contains("unchanged"));
    assert!(app.update(key(KeyCode::Char('p'))).is_empty());
    assert_eq!(
        app.confirm(),
        Some(&Confirm::ChangePassword {
            credential: "svc-web".into()
        })
    );
    assert_eq!(
        app.update(key(KeyCode::Char('y'))),
        vec![Call::ChangeCredential("svc-web".into())]
    );
}

#[test]
fn reveal_asks_why_shows_the_password_then_hides_it() {
    let mut app = admin(Kind::Credential);
    app.update(records(Kind::Credential, vec![credential("svc-web")]));
    assert!(app.update(key(KeyCode::Char('R'))).is_empty());
    assert!(screen(&app, 120, 40).contains("show the password of svc-web; why (audited):"));
    // No justification, no reveal.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    assert!(app.status.as_ref().unwrap().0.contains("say why"));
    type_in(&mut app, "INC-7");
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Call::RevealCredential {
            name: "svc-web".into(),
            justification: "INC-7".into()
        }]
    );
    app.update(Message::Answer(
        Call::RevealCredential {
            name: "svc-web".into(),
            justification: "INC-7".into(),
        },
        Ok(Response::Revealed(gatehouse::engine::api::Revealed(
            "Zq8%tW-the-secret".into(),
        ))),
    ));
    let shown = screen(&app, 120, 40);
    assert!(shown.contains("password of svc-web"), "{shown}");
    assert!(shown.contains("Zq8%tW-the-secret"), "{shown}");
    app.update(Message::HideSecret);
    let hidden = screen(&app, 120, 40);
    assert!(!hidden.contains("Zq8%tW-the-secret"), "{hidden}");
    // Esc hides it too.
    app.update(Message::Answer(
        Call::RevealCredential {
            name: "svc-web".into(),
            justification: "INC-7".into(),
        },
        Ok(Response::Revealed(gatehouse::engine::api::Revealed(
            "Zq8%tW-the-secret".into(),
        ))),
    ));
    assert!(screen(&app, 120, 40).contains("Zq8%tW-the-secret"));
    app.update(key(KeyCode::Esc));
    assert!(!screen(&app, 120, 40).contains("Zq8%tW-the-secret"));
}

/// Under a policy with approval the reveal is filed: the status line says
/// which request waits, and no password box opens.
#[test]
fn a_reveal_that_needs_approval_says_its_request_is_pending() {
    let mut app = admin(Kind::Credential);
    app.update(records(Kind::Credential, vec![credential("svc-web")]));
    let mut filed = pending(4000041);
    filed.task = String::new();
    filed.kind = gatehouse::domain::RequestKind::Reveal(gatehouse::domain::RevealRequest {
        credential: "svc-web".into(),
        revealed_at: None,
    });
    app.update(Message::Answer(
        Call::RevealCredential {
            name: "svc-web".into(),
            justification: "INC-7".into(),
        },
        Ok(Response::Filed(Box::new(filed))),
    ));
    let status = &app.status.as_ref().unwrap().0;
    assert!(
        status.contains("request 4000041 to reveal svc-web is pending at level 1"),
        "{status}"
    );
    assert!(!screen(&app, 120, 40).contains("password of svc-web"));
}

/// `out:TEXT` asks the engine for operations whose output holds TEXT;
/// a `word:` that is no filter is refused by name, not searched as text.
#[test]
fn history_filters_by_output_and_refuses_an_unknown_filter_word() {
    use gatehouse::engine::HistoryFilter;
    let mut app = App::new("carol".into(), Theme::default());
    app.update(key(KeyCode::Char('5')));
    app.update(key(KeyCode::Char('/')));
    type_in(&mut app, "stat:failed");
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    let status = app.status.clone().unwrap().0;
    assert!(
        status.starts_with(
            "stat:failed: 'stat:' is not a filter; use task: device: user: state: out:"
        ),
        "{status}"
    );
    for _ in 0.."stat:failed".len() {
        app.update(key(KeyCode::Backspace));
    }
    type_in(&mut app, "task:say out:boom");
    let asked = app.update(key(KeyCode::Enter));
    assert_eq!(
        asked.first(),
        Some(&Call::HistoryFiltered(HistoryFilter {
            task: Some("say".into()),
            output: Some("boom".into()),
            ..Default::default()
        }))
    );
}

/// History's detail of a Superuser's own run says it has no request
/// (nothing is asked, nothing loads forever); a request that cannot be
/// shown says why instead of "loading…".
#[test]
fn the_detail_of_a_superusers_run_says_it_has_no_request_and_a_refusal_is_said() {
    let mut app = App::new("root".into(), Theme::default());
    app.update(key(KeyCode::Char('5')));
    let mut bypass = op(31, "restart", OpState::Succeeded);
    bypass.superuser_bypass = true;
    let other = op(30, "restart", OpState::Succeeded);
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(vec![bypass, other])),
    ));
    let asked = app.update(key(KeyCode::Enter));
    assert!(
        !asked.iter().any(|c| matches!(c, Call::RequestOf(_))),
        "{asked:?}"
    );
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("run by a Superuser without a request"),
        "{text}"
    );
    assert!(!text.contains("loading…"), "{text}");
    app.update(key(KeyCode::Esc));
    app.update(key(KeyCode::Down));
    let asked = app.update(key(KeyCode::Enter));
    assert!(asked.contains(&Call::RequestOf(Id(30))), "{asked:?}");
    app.update(Message::Answer(
        Call::RequestOf(Id(30)),
        Err(gatehouse::ui::Failure::Engine(EngineError::Missing(
            "request 30".into(),
        ))),
    ));
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("there is no request 30") && !text.contains("no there is"),
        "{text}"
    );
    assert!(!text.contains("loading…"), "{text}");
}

/// `R` on a failed operation in History opens the task's request form
/// filled for a retry: only the devices of its request that failed, and
/// its values; submitting files a new request (through the policy).
#[test]
fn r_in_history_opens_a_request_form_filled_to_retry_the_failures() {
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key(KeyCode::Char('5')));
    let mut failed = op(41, "restart", OpState::Failed);
    failed.request = Id(40);
    failed.device = "web-2".into();
    failed.variables.insert("SERVICE".into(), "haproxy".into());
    let mut fine = op(42, "restart", OpState::Succeeded);
    fine.request = Id(40);
    fine.device = "web-1".into();
    app.update(Message::Answer(
        Call::History,
        Ok(Response::Operations(vec![fine, failed])),
    ));
    app.update(key(KeyCode::Down));
    let asked = app.update(key(KeyCode::Char('R')));
    assert_eq!(asked, vec![Call::Terms("restart".into())]);
    let terms = RequestTerms {
        task: "restart".into(),
        devices: vec!["web-1".into(), "web-2".into()],
        variables: vec![Variable {
            name: "SERVICE".into(),
            description: "unit".into(),
            default: Some("nginx".into()),
            pattern: String::new(),
        }],
        policy: Some("prod-web".into()),
        ..Default::default()
    };
    app.update(Message::Answer(
        Call::Terms("restart".into()),
        Ok(Response::Terms(Box::new(terms))),
    ));
    let Some(Call::Submit(spec)) = app.update(ctrl('s')).pop() else {
        panic!("not submitted: {:?}", app.status)
    };
    assert_eq!(spec.devices, vec!["web-2".to_string()]);
    assert_eq!(spec.variables["SERVICE"], "haproxy");
}

/// A filter left on History or Tasks is always said in the list's title.
#[test]
fn a_filter_left_in_force_is_said_in_the_title() {
    let mut app = App::new("carol".into(), Theme::default());
    app.update(key(KeyCode::Char('5')));
    app.update(key(KeyCode::Char('/')));
    type_in(&mut app, "state:failed");
    app.update(key(KeyCode::Enter));
    app.update(key(KeyCode::Char('2')));
    app.update(key(KeyCode::Char('5')));
    let text = screen(&app, 120, 40);
    assert!(text.contains("History matching 'state:failed'"), "{text}");
    // Tasks: the filter and how many of how many.
    let tasks: Vec<Record> = ["restart", "status", "disk"]
        .iter()
        .map(|n| {
            Record::Task(Task {
                meta: Meta::named(*n),
                ..Task::default()
            })
        })
        .collect();
    app.update(records(Kind::Task, tasks));
    app.update(key(KeyCode::Char('2')));
    app.update(key(KeyCode::Char('/')));
    type_in(&mut app, "st");
    app.update(key(KeyCode::Enter));
    let text = screen(&app, 120, 40);
    assert!(text.contains("Tasks matching 'st': 2 of 3"), "{text}");
}

/// Device lists show tags and product, and the filter matches them:
/// `tag:pci`, `product:mysql`, and several words together.
#[test]
fn device_lists_show_tags_and_filter_by_tag_and_product() {
    let mut app = admin(Kind::Device);
    let mut tagged = device("db-1", None);
    if let Record::Device(d) = &mut tagged {
        d.tags = vec!["pci".into(), "eu".into()];
        d.product = "MySQL".into();
    }
    app.update(records(
        Kind::Device,
        vec![tagged, device("web-1", None), device("web-2", None)],
    ));
    let text = screen(&app, 120, 40);
    assert!(text.contains("MySQL [pci, eu]"), "{text}");
    let shown = |app: &App| app.list(Kind::Device).unwrap().view.len();
    for (filter, n) in [
        ("tag:pci", 1),
        ("tag:pc", 0),
        ("product:mysql", 1),
        ("product:linux web", 2),
        ("web-2 lab", 1),
    ] {
        app.update(key(KeyCode::Char('/')));
        type_in(&mut app, filter);
        app.update(key(KeyCode::Enter));
        assert_eq!(shown(&app), n, "{filter}");
        app.update(key(KeyCode::Char('/')));
        app.update(key(KeyCode::Esc));
        assert_eq!(shown(&app), 3, "cleared after {filter}");
    }
}

/// `R` on the Operations tab re-runs like History's: the request form,
/// filled with the operation's task, device and values.
#[test]
fn r_in_operations_opens_the_request_form_filled() {
    let mut app = App::new("alice".into(), Theme::default());
    app.update(key(KeyCode::Char('4')));
    let mut running = op(61, "restart", OpState::Running);
    running.device = "web-1".into();
    app.update(Message::Answer(
        Call::LiveOperations,
        Ok(Response::Operations(vec![running])),
    ));
    assert_eq!(
        app.update(key(KeyCode::Char('R'))),
        vec![Call::Terms("restart".into())]
    );
    assert_eq!(
        app.prefill.as_ref().unwrap().devices,
        vec!["web-1".to_string()]
    );
}
