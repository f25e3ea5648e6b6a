//! Stored values and wire frames are bincode: positional, not self-describing.
//! A field added, removed or moved, or an enum variant inserted, would
//! re-map what is already stored (or what an older client sends) without
//! an error. These tests pin the exact bytes of a sample of every stored
//! type, of every kind of record, and of every command, response and event
//! on the wire, against files under `tests/golden/`.
//!
//! When one fails, the layout changed. Then:
//! - for a stored type: bump `store::VALUE_FORMAT` or `store::SCHEMA_VERSION`
//!   and write a migration that rewrites the old values (see
//!   `src/store/schema.rs`, version 4, for a worked one), then regenerate;
//! - for a wire message: bump `server::wire::PROTOCOL_VERSION`, then
//!   regenerate.
//!
//! Regenerate with `GOLDEN_UPDATE=1 cargo test --test golden` and commit
//! the files. A missing golden file fails too (it is not written silently).

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::domain::*;
use gatehouse::engine::api::{
    HistoryFilter, ImportItem, PlainSecrets, RequestSpec, RequestTerms, RevealSpec,
};
use gatehouse::engine::{Command, EngineError, Event, Response};
use gatehouse::server::wire::{ClientFrame, Hello, ServerFrame, Welcome};
use gatehouse::store::{AuditEvent, BackupSummary};
use std::collections::BTreeMap;
use std::path::PathBuf;

const T: Timestamp = Timestamp(1_795_694_400_000);

fn meta(name: &str) -> Meta {
    Meta {
        id: Id(7),
        name: name.into(),
        enabled: true,
        created_by: "root".into(),
        created_at: T,
        updated_by: "alice".into(),
        updated_at: T,
        revision: 3,
    }
}

/// A record of each kind. The match is exhaustive: a new kind does not
/// compile until it has a sample here.
fn record(kind: Kind) -> Record {
    match kind {
        Kind::Environment => Record::Environment(Environment {
            meta: meta("production"),
            ssh_options: SshOptions {
                kex: "+diffie-hellman-group14-sha1".into(),
                ..Default::default()
            },
            password_policy: Some(PasswordPolicy::default()),
        }),
        Kind::System => Record::System(System { meta: meta("web") }),
        Kind::Device => Record::Device(Device {
            meta: meta("web-1"),
            address: "127.0.0.1".into(),
            port: 22,
            product: "Linux".into(),
            tags: vec!["a".into()],
            environment: "production".into(),
            system: "web".into(),
            host_keys: vec![HostKey::Fingerprint("SHA256:abc".into())],
            ssh_options: SshOptions {
                kex: "k".into(),
                ciphers: "c".into(),
                macs: "m".into(),
                host_key_algorithms: "h".into(),
            },
            via: Some("bastion".into()),
        }),
        Kind::Credential => Record::Credential(Credential {
            meta: meta("ops"),
            username: "ops".into(),
            certificate: Some("ssh-ed25519-cert-v01@openssh.com AAAA".into()),
            change_template: Some("chpasswd".into()),
            change_with: Some("root".into()),
            reconcile_with: Some("root".into()),
            reconcile_template: Some("chpasswd".into()),
            children: vec!["child".into()],
            password_policy: Some(PasswordPolicy {
                length: 20,
                symbols: false,
                avoid: "0O".into(),
                ..Default::default()
            }),
            checkout_secs: Some(600),
            rotation_window: Some(DailyWindow {
                from: "22:00".into(),
                to: "06:00".into(),
            }),
            rotate_every_secs: Some(86_400),
            rotate_after_view: true,
            rotate_after_use: true,
            verify_every_secs: Some(3_600),
            ..Default::default()
        }),
        Kind::Reason => Record::Reason(Reason {
            meta: meta("incident"),
            ..Default::default()
        }),
        Kind::Template => Record::Template(Template {
            meta: meta("restart"),
            description: "d".into(),
            executor: Executor::Local,
            execution_type: ExecutionType::JitGrant,
            content: "echo [#WHAT#]".into(),
            variables: vec![Variable {
                name: "WHAT".into(),
                description: "w".into(),
                default: Some("x".into()),
                pattern: String::new(),
            }],
            interpreter: "bash".into(),
            pty: true,
        }),
        Kind::Task => Record::Task(Task {
            meta: meta("restart-web"),
            template: "restart".into(),
            environment: "production".into(),
            system: "web".into(),
            devices: vec!["web-1".into()],
            credential: "ops".into(),
            variables: BTreeMap::from([("WHAT".into(), "nginx".into())]),
            schedule: Some("0 3 * * *".into()),
            timeout_secs: 60,
            retries: 1,
            retry_on_failure: true,
            idempotent: true,
            parallelism: 10,
            children: vec!["after".into()],
            ..Default::default()
        }),
        Kind::User => Record::User(User {
            meta: meta("alice"),
            display_name: "Alice".into(),
            roles: vec!["User".into()],
            totp_secret: None,
        }),
        Kind::Role => Record::Role(Role {
            meta: meta("ops"),
            description: "d".into(),
            builtin: false,
            grants: vec![Grant {
                action: Permission::RunLocal,
                environments: vec!["lab".into()],
            }],
            resources: vec![ResourceGrant {
                kind: Kind::Task,
                name: "restart-web".into(),
                levels: vec![AccessLevel::Run],
            }],
            os_groups: vec!["dba".into()],
        }),
        Kind::Policy => Record::Policy(Policy {
            meta: meta("prod"),
            requires_approval: true,
            users: vec!["alice".into()],
            approvers: vec![Approver {
                user: "bob".into(),
                level: 1,
            }],
            windows: vec![Window {
                days: vec![1, 2],
                from_minute: 480,
                to_minute: 1080,
                start_date: None,
                end_date: None,
            }],
            covers: Covers {
                tasks: true,
                sessions: true,
                reveals: false,
            },
            credentials: vec!["db-root".into()],
            requires_change: true,
            deny_commands: vec!["rm -rf *".into()],
            products: vec!["MySQL*".into()],
            device_tags: vec!["pci".into()],
            usernames: vec!["svc-*".into()],
            timezone: Some("Europe/Berlin".into()),
            requires_approval_comment: true,
            ..Default::default()
        }),
        Kind::Freeze => Record::Freeze(Freeze {
            meta: meta("year-end"),
            reason: "end of year".into(),
            from: parse_wall_clock("2026-12-20 18:00").unwrap(),
            to: parse_wall_clock("2027-01-04 08:00").unwrap(),
            timezone: "Europe/Berlin".into(),
            environments: vec!["production".into()],
        }),
    }
}

fn operation() -> Operation {
    Operation {
        id: Id(12),
        request: Id(11),
        task: "restart-web".into(),
        template: "restart".into(),
        template_id: Id(3),
        template_revision: 2,
        executor: Executor::SshScript,
        device: "web-1".into(),
        credential: "ops".into(),
        variables: BTreeMap::from([("WHAT".into(), "nginx".into())]),
        trigger: Trigger::Chain { parent: Id(9) },
        requested_by: "alice".into(),
        superuser_bypass: false,
        state: OpState::Failed,
        attempts: 2,
        max_attempts: 3,
        // Where a `retry_on_failure: true` was: the same byte.
        rerun: Rerun::Failed,
        timeout_secs: 60,
        exit_status: Some(1),
        created_at: T,
        not_before: T,
        started_at: Some(T),
        finished_at: Some(T),
        error: Some("exit status 1".into()),
        jit_until: None,
        output_bytes: 10,
        output_truncated: false,
    }
}

fn request() -> ExecutionRequest {
    ExecutionRequest {
        id: Id(11),
        task: "restart-web".into(),
        devices: vec!["web-1".into()],
        variables: BTreeMap::new(),
        reason: Some("incident".into()),
        justification: Some("disk full".into()),
        governance_id: None,
        requester: "alice".into(),
        policy: Some("prod".into()),
        window_start: T,
        window_end: T,
        state: RequestState::Pending { level: 2 },
        decisions: vec![Decision {
            approver: "bob".into(),
            level: 1,
            approved: true,
            comment: "ok".into(),
            time: T,
            narrowed_to: None,
        }],
        pinned: Pinned {
            task_revision: 3,
            template_id: Id(3),
            template_revision: 2,
            credential_revision: 1,
            devices: vec![("web-1".into(), 4)],
            children: vec![ChildPin {
                task: "after".into(),
                task_revision: 1,
                template_id: Id(5),
                template_revision: 1,
            }],
        },
        created_at: T,
        operations: vec![Id(12)],
        void_reason: None,
        schedule: Some("0 3 * * *".into()),
        change: Some(ChangePlan {
            code: "CHG-1".into(),
            plan: vec!["uptime".into()],
        }),
        kind: RequestKind::Reveal(RevealRequest {
            credential: "db-root".into(),
            revealed_at: Some(T),
        }),
    }
}

/// A credential's secret state, every field set.
fn secret_state() -> SecretState {
    SecretState {
        credential: Id(4),
        status: SecretStatus::Changing {
            ops: vec![Id(7), Id(8)],
        },
        pending: Some(PendingChange {
            password: Some(Sealed::withheld()),
            private_key: Some(Sealed::withheld()),
            reason: ChangeReason::AfterView { by: "vera".into() },
            started_at: T,
            started_by: "vera".into(),
        }),
        changed_at: Some(T),
        verified_at: Some(T),
        rotate_at: Some((T, "vera".into())),
        changes: 3,
        previous: vec![PreviousSecret {
            password: Some(Sealed::withheld()),
            private_key: None,
            passphrase: Some(Sealed::withheld()),
            replaced_at: T,
        }],
    }
}

fn grant() -> JitGrant {
    JitGrant {
        id: Id(20),
        grant_op: Id(12),
        task: "grant-root".into(),
        credential: "ops".into(),
        device: "web-1".into(),
        requested_by: "alice".into(),
        granted_at: T,
        expires_at: T,
        state: JitState::Failing {
            attempts: 2,
            retry_at: T,
            error: "refused".into(),
        },
    }
}

fn audit_event() -> AuditEvent {
    AuditEvent {
        seq: 5,
        time: T,
        actor: "alice".into(),
        action: "task.request".into(),
        target: "task restart-web".into(),
        details: "d".into(),
        prev_hash: [1; 32],
        hash: [2; 32],
    }
}

fn chunk() -> OutputChunk {
    OutputChunk {
        seq: 3,
        stream: Stream::Stderr,
        time: T,
        bytes: b"oops\n".to_vec(),
    }
}

/// Every command, one sample each; `command_index` is exhaustive, so a new
/// variant does not compile until it is numbered there and sampled here.
fn commands() -> Vec<Command> {
    vec![
        Command::Whoami,
        Command::List { kind: Kind::Task },
        Command::Import {
            items: vec![ImportItem {
                record: record(Kind::Device),
                secrets: PlainSecrets::default(),
                line: 3,
            }],
        },
        Command::Export,
        Command::Delete {
            kind: Kind::Device,
            name: "web-1".into(),
        },
        Command::Backup {
            path: PathBuf::from("/tmp/b"),
        },
        Command::Clone {
            kind: Kind::Task,
            from: "a".into(),
            to: "b".into(),
        },
        Command::SetEnabled {
            kind: Kind::User,
            name: "alice".into(),
            enabled: false,
        },
        Command::TemplateRevisions {
            name: "restart".into(),
        },
        Command::RequestTerms {
            task: "restart-web".into(),
        },
        Command::AuditVerify,
        Command::AuditEvents { from: 1, limit: 10 },
        Command::AuditExport { from: 1, limit: 10 },
        Command::AuditTail { limit: 10 },
        Command::Subscribe,
        Command::Request(RequestSpec {
            task: "restart-web".into(),
            justification: Some("x".into()),
            schedule: true,
            ..Default::default()
        }),
        Command::Operations {
            states: vec![OpState::Running, OpState::Skipped],
        },
        Command::History(HistoryFilter {
            task: Some("t".into()),
            limit: 5,
            ..Default::default()
        }),
        Command::Operation { id: Id(1) },
        Command::Output {
            id: Id(1),
            from: 0,
            limit: 10,
            debug: true,
        },
        Command::Cancel { id: Id(1) },
        Command::ScanHostKeys {
            device: "web-1".into(),
        },
        Command::PinHostKeys {
            device: "web-1".into(),
            keys: vec![HostKey::Fingerprint("SHA256:abc".into())],
        },
        Command::Approve {
            id: Id(1),
            comment: "ok".into(),
            until: Some(T),
            totp: Some("123456".into()),
        },
        Command::TotpEnroll {
            login: "alice".into(),
            code: None,
        },
        Command::TotpReset {
            login: "alice".into(),
        },
        Command::Reject {
            id: Id(1),
            comment: "no".into(),
        },
        Command::Queue,
        Command::Requests { mine: true },
        Command::RequestOf { id: Id(1) },
        Command::PinnedTemplate { request: Id(1) },
        Command::Schedules,
        Command::Metrics,
        Command::RoleCheck { name: "ops".into() },
        Command::UserCheck {
            login: "alice".into(),
        },
        Command::Jit { all: true },
        Command::JitRevoke { id: Id(20) },
        Command::Shutdown,
        Command::ChangeCredential {
            name: "ops".into(),
            devices: vec!["web-1".into()],
        },
        Command::ReconcileCredential {
            name: "ops".into(),
            devices: vec![],
        },
        Command::RevealCredential(RevealSpec {
            name: "ops".into(),
            reason: "r".into(),
            justification: "j".into(),
            governance_id: Some("CHG-1".into()),
            totp: Some("123456".into()),
            request: Some(Id(9)),
            until: Some(T),
        }),
        Command::CredentialStates,
        Command::Connect(gatehouse::engine::api::ConnectSpec {
            device: "web-1".into(),
            credential: Some("ops".into()),
            reason: Some("incident".into()),
            justification: Some("j".into()),
            governance_id: Some("CHG-1".into()),
            totp: Some("123456".into()),
            term: "xterm".into(),
            cols: 120,
            rows: 40,
            change: Some(ChangePlan {
                code: "CHG-1".into(),
                plan: vec!["uptime".into()],
            }),
            duration_secs: Some(3600),
            emergency: true,
            request: Some(Id(9)),
        }),
        Command::SessionInput {
            session: 3,
            input: SessionInput::Bytes(b"ls\r".to_vec()),
        },
        Command::Sessions {
            open_only: true,
            text: Some("boom".into()),
        },
        Command::SessionRecording {
            id: Id(14),
            input: true,
        },
        Command::WatchSession { id: Id(14) },
        Command::EndSession {
            id: Id(14),
            reason: "r".into(),
        },
        Command::Groups,
        Command::ExplainPolicy(gatehouse::engine::api::ExplainSpec {
            user: Some("alice".into()),
            task: "restart".into(),
            devices: vec!["web-1".into()],
            at: Some(T),
        }),
        Command::DecideMany {
            ids: vec![Id(3), Id(4)],
            approve: true,
            comment: "fine".into(),
            until: Some(T),
            totp: Some("123456".into()),
        },
        Command::RequestView { id: Id(3) },
        Command::SearchOutput {
            text: "boom".into(),
            filter: HistoryFilter {
                task: Some("restart".into()),
                before: Some(Id(9)),
                limit: 200,
                ..Default::default()
            },
        },
        Command::ReviewEmergency {
            ids: vec![Id(3)],
            accepted: true,
            comment: "ok".into(),
        },
        Command::ClusterStatus,
        Command::DryRun { id: Id(3) },
    ]
}

/// A session, every field set.
fn session() -> SessionRecord {
    SessionRecord {
        id: Id(14),
        user: "alice".into(),
        device: "web-1".into(),
        credential: "ops".into(),
        policy: Some("prod".into()),
        reason: Some("incident".into()),
        justification: Some("j".into()),
        governance_id: Some("CHG-1".into()),
        started_at: T,
        ended_at: Some(T),
        end: Some(SessionEnd::Terminated {
            by: "bob".into(),
            reason: "r".into(),
        }),
        term: "xterm".into(),
        cols: 120,
        rows: 40,
        output_bytes: 99,
        commands: 2,
        request: Some(Id(9)),
        window_end: Some(T),
        change: Some(ChangePlan {
            code: "CHG-1".into(),
            plan: vec!["uptime".into()],
        }),
        deviations: vec!["whoami".into()],
        denied: 1,
    }
}

fn command_index(c: &Command) -> usize {
    match c {
        Command::Whoami => 0,
        Command::List { .. } => 1,
        Command::Import { .. } => 2,
        Command::Export => 3,
        Command::Delete { .. } => 4,
        Command::Backup { .. } => 5,
        Command::Clone { .. } => 6,
        Command::SetEnabled { .. } => 7,
        Command::TemplateRevisions { .. } => 8,
        Command::RequestTerms { .. } => 9,
        Command::AuditVerify => 10,
        Command::AuditEvents { .. } => 11,
        Command::AuditExport { .. } => 12,
        Command::AuditTail { .. } => 13,
        Command::Subscribe => 14,
        Command::Request(_) => 15,
        Command::Operations { .. } => 16,
        Command::History(_) => 17,
        Command::Operation { .. } => 18,
        Command::Output { .. } => 19,
        Command::Cancel { .. } => 20,
        Command::ScanHostKeys { .. } => 21,
        Command::PinHostKeys { .. } => 22,
        Command::Approve { .. } => 23,
        Command::TotpEnroll { .. } => 24,
        Command::TotpReset { .. } => 25,
        Command::Reject { .. } => 26,
        Command::Queue => 27,
        Command::Requests { .. } => 28,
        Command::RequestOf { .. } => 29,
        Command::PinnedTemplate { .. } => 30,
        Command::Schedules => 31,
        Command::Metrics => 32,
        Command::RoleCheck { .. } => 33,
        Command::UserCheck { .. } => 34,
        Command::Jit { .. } => 35,
        Command::JitRevoke { .. } => 36,
        Command::Shutdown => 37,
        Command::ChangeCredential { .. } => 38,
        Command::ReconcileCredential { .. } => 39,
        Command::RevealCredential(_) => 40,
        Command::CredentialStates => 41,
        Command::Connect(_) => 42,
        Command::SessionInput { .. } => 43,
        Command::Sessions { .. } => 44,
        Command::SessionRecording { .. } => 45,
        Command::WatchSession { .. } => 46,
        Command::EndSession { .. } => 47,
        Command::Groups => 48,
        Command::ExplainPolicy(_) => 49,
        Command::DecideMany { .. } => 50,
        Command::RequestView { .. } => 51,
        Command::SearchOutput { .. } => 52,
        Command::ReviewEmergency { .. } => 53,
        Command::ClusterStatus => 54,
        Command::DryRun { .. } => 55,
    }
}

fn responses() -> Vec<Response> {
    vec![
        Response::Done,
        Response::Whoami {
            login: "alice".into(),
            superuser: false,
            server_owner: "gatehouse".into(),
            roles: vec![("DBA".into(), "group dba".into())],
        },
        Response::Records(vec![record(Kind::Task)]),
        Response::Imported {
            created: vec!["a".into()],
            updated: vec![],
            unchanged: 2,
        },
        Response::AuditVerified(Ok(40)),
        Response::AuditEvents(vec![audit_event()]),
        Response::Requested {
            request: Id(11),
            operations: vec![operation()],
        },
        Response::Operations(vec![operation()]),
        Response::Output(vec![chunk()]),
        Response::HostKeys(vec![HostKey::Fingerprint("SHA256:abc".into())]),
        Response::Filed(Box::new(request())),
        Response::Requests(vec![request()]),
        Response::RoleWarnings(vec![]),
        Response::TotpEnrolled {
            uri: "otpauth://x".into(),
            recovery_codes: vec!["c".into()],
        },
        Response::Jit(vec![gatehouse::engine::api::JitLease {
            grant: grant(),
            uses: vec![Id(12)],
        }]),
        Response::Backup(BackupSummary {
            trees: 1,
            entries: 2,
            bytes: 3,
        }),
        Response::Terms(Box::new(RequestTerms {
            task: "t".into(),
            ..Default::default()
        })),
        Response::Schedules(vec![]),
        Response::Metrics(Box::default()),
        Response::Revealed(gatehouse::engine::api::Revealed("s3cret".into())),
        Response::CredentialStates(vec![gatehouse::engine::rotation::CredentialState {
            name: "ops".into(),
            status: SecretStatus::OutOfSync { why: "w".into() },
            changed_at: Some(T),
            next_due: None,
            verified_at: Some(T),
            changes: 2,
        }]),
        Response::Session(Box::new(session())),
        Response::Sessions(vec![session()]),
        Response::Recording("{}".into()),
        Response::Groups(vec![gatehouse::engine::api::GroupInUse {
            name: "dba".into(),
            roles: vec!["DBA".into()],
            policies: vec!["prod-db (users)".into()],
            admits: true,
            members: Err("the name service did not answer".into()),
        }]),
        Response::Explanation(Box::new(gatehouse::engine::api::Explanation {
            user: "alice".into(),
            task: "restart".into(),
            devices: vec!["web-1".into()],
            at: T,
            permission: Err("may not request".into()),
            verdicts: vec![gatehouse::access::policy::Verdict {
                policy: "prod".into(),
                passed: vec!["enabled".into(), "user".into()],
                failed: Some(("window".into(), "outside".into())),
            }],
            freeze: Some("freeze 'x'".into()),
            superuser: false,
        })),
        Response::Decided(vec![
            gatehouse::engine::api::Decided {
                id: Id(3),
                outcome: Ok("approved".into()),
            },
            gatehouse::engine::api::Decided {
                id: Id(4),
                outcome: Err("expired".into()),
            },
        ]),
        Response::RequestView(Box::new(gatehouse::engine::api::RequestView {
            request: request(),
            credential: "ops".into(),
            username: "svc".into(),
            template: "restart".into(),
            template_revision: 2,
            executor: "ssh-script".into(),
            template_now: Some(3),
            variables: vec![("SERVICE".into(), "nginx".into(), true)],
            runs: vec![gatehouse::engine::api::DeviceRun {
                devices: vec!["web-1".into()],
                text: "systemctl restart 'nginx'".into(),
            }],
            children: vec![gatehouse::engine::api::ChildRun {
                task: "check".into(),
                template: "check".into(),
                template_revision: 1,
                content: "true".into(),
            }],
            review: Some(EmergencyReview {
                request: Id(3),
                reviewer: "bob".into(),
                time: T,
                accepted: false,
                comment: "why?".into(),
            }),
            dry_runs: vec![gatehouse::engine::api::DryRunView {
                operation: Id(12),
                device: "web-1".into(),
                state: "succeeded".into(),
                requested_by: "bob".into(),
                error: None,
                output: vec!["TASK [write] changed".into()],
            }],
        })),
        Response::Found(Box::new(gatehouse::engine::api::SearchPage {
            matches: vec![gatehouse::engine::api::OutputMatch {
                op: Id(9),
                task: "restart".into(),
                device: "web-1".into(),
                user: "alice".into(),
                stream: Stream::Stderr,
                number: 4,
                time: T,
                line: "boom".into(),
            }],
            next: Some(Id(8)),
            operations: 200,
            bytes: 4096,
            cut: Some(Id(9)),
        })),
        Response::Cluster(Box::new(gatehouse::engine::api::ClusterStatus {
            store: "postgresql://gatehouse@/run/postgresql/gatehouse".into(),
            shared: true,
            lease_secs: 20,
            servers: vec![gatehouse::engine::api::ServerStatus {
                id: 7,
                host: "jump1".into(),
                pid: 4242,
                started_at: T,
                renewed_at: T,
                alive: true,
                this_server: true,
                operations: 3,
                environments: vec!["eu-prod".into()],
            }],
        })),
    ]
}

fn response_index(r: &Response) -> usize {
    match r {
        Response::Done => 0,
        Response::Whoami { .. } => 1,
        Response::Records(_) => 2,
        Response::Imported { .. } => 3,
        Response::AuditVerified(_) => 4,
        Response::AuditEvents(_) => 5,
        Response::Requested { .. } => 6,
        Response::Operations(_) => 7,
        Response::Output(_) => 8,
        Response::HostKeys(_) => 9,
        Response::Filed(_) => 10,
        Response::Requests(_) => 11,
        Response::RoleWarnings(_) => 12,
        Response::TotpEnrolled { .. } => 13,
        Response::Jit(_) => 14,
        Response::Backup(_) => 15,
        Response::Terms(_) => 16,
        Response::Schedules(_) => 17,
        Response::Metrics(_) => 18,
        Response::Revealed(_) => 19,
        Response::CredentialStates(_) => 20,
        Response::Session(_) => 21,
        Response::Sessions(_) => 22,
        Response::Recording(_) => 23,
        Response::Groups(_) => 24,
        Response::Explanation(_) => 25,
        Response::Decided(_) => 26,
        Response::RequestView(_) => 27,
        Response::Found(_) => 28,
        Response::Cluster(_) => 29,
    }
}

fn events() -> Vec<Event> {
    vec![
        Event::RecordChanged {
            kind: Kind::Device,
            name: "web-1".into(),
        },
        Event::AuditAppended { seq: 5 },
        Event::OperationChanged(Box::new(operation())),
        Event::RequestChanged(Box::new(request())),
        Event::JitChanged(Box::new(grant())),
        Event::Output {
            id: Id(12),
            chunk: chunk(),
        },
        Event::ShuttingDown,
        Event::SessionChanged(Box::new(session())),
    ]
}

fn event_index(e: &Event) -> usize {
    match e {
        Event::RecordChanged { .. } => 0,
        Event::AuditAppended { .. } => 1,
        Event::OperationChanged(_) => 2,
        Event::RequestChanged(_) => 3,
        Event::JitChanged(_) => 4,
        Event::Output { .. } => 5,
        Event::ShuttingDown => 6,
        Event::SessionChanged(_) => 7,
    }
}

fn errors() -> Vec<EngineError> {
    vec![
        EngineError::Denied("no".into()),
        EngineError::NotFound {
            kind: Kind::Task,
            name: "t".into(),
        },
        EngineError::Invalid {
            kind: Kind::Task,
            name: "t".into(),
            line: 3,
            field: Some("content".into()),
            at: Some((2, 5)),
            message: "m".into(),
        },
        EngineError::InUse {
            kind: Kind::Task,
            name: "t".into(),
            used_by: vec!["x".into()],
        },
        EngineError::Store("s".into()),
        EngineError::Protocol("p".into()),
        EngineError::MfaLocked {
            login: "alice".into(),
            seconds: 30,
        },
        EngineError::NeedsPermission {
            message: "m".into(),
            permission: Permission::RunLocal,
        },
        EngineError::Variable {
            task: "t".into(),
            variable: "WHAT".into(),
            message: "m".into(),
        },
        EngineError::MfaRequired {
            login: "alice".into(),
        },
        EngineError::MfaNotEnrolled {
            login: "alice".into(),
        },
        EngineError::Missing("session 14".into()),
        EngineError::Failed("device 'web-1' does not answer".into()),
    ]
}

fn error_index(e: &EngineError) -> usize {
    match e {
        EngineError::Denied(_) => 0,
        EngineError::NotFound { .. } => 1,
        EngineError::Invalid { .. } => 2,
        EngineError::InUse { .. } => 3,
        EngineError::Store(_) => 4,
        EngineError::Protocol(_) => 5,
        EngineError::MfaLocked { .. } => 6,
        EngineError::NeedsPermission { .. } => 7,
        EngineError::Variable { .. } => 8,
        EngineError::MfaRequired { .. } => 9,
        EngineError::MfaNotEnrolled { .. } => 10,
        EngineError::Missing(_) => 11,
        EngineError::Failed(_) => 12,
    }
}

/// Each sample's index, in order and without a gap: every variant sampled.
fn assert_every_variant<T>(samples: &[T], index: impl Fn(&T) -> usize, what: &str) {
    let got: Vec<usize> = samples.iter().map(index).collect();
    let want: Vec<usize> = (0..samples.len()).collect();
    assert_eq!(got, want, "every {what} variant has one sample, in order");
}

/// Compares `bytes` with the golden file `name`, or writes it under GOLDEN_UPDATE.
fn golden(name: &str, bytes: &[u8], bump: &str, mismatches: &mut Vec<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.hex"));
    let text = hex::encode(bytes);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{text}\n")).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(stored) if stored.trim() == text => {}
        Ok(_) => mismatches.push(format!(
            "{name}: the encoding changed. {bump}, then regenerate with GOLDEN_UPDATE=1"
        )),
        Err(_) => mismatches.push(format!(
            "{name}: no golden file {} (write it with GOLDEN_UPDATE=1)",
            path.display()
        )),
    }
}

const STORED: &str =
    "Bump VALUE_FORMAT (or SCHEMA_VERSION) and write a migration for the stored values";
const WIRE: &str = "Bump PROTOCOL_VERSION";

#[test]
fn stored_values_keep_their_bytes() {
    use gatehouse::store::encode;
    let mut bad = Vec::new();
    for kind in Kind::ALL {
        golden(
            &format!("stored-record-{}", kind.as_str()),
            &encode(&record(kind)).unwrap(),
            STORED,
            &mut bad,
        );
    }
    golden(
        "stored-operation",
        &encode(&operation()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-request",
        &encode(&request()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-request-session",
        &encode(&ExecutionRequest {
            kind: RequestKind::Session(SessionRequest {
                device: "web-1".into(),
                credential: "ops".into(),
                used_at: Some(T),
            }),
            ..request()
        })
        .unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-emergency-review",
        &encode(&EmergencyReview {
            request: Id(3),
            reviewer: "bob".into(),
            time: T,
            accepted: true,
            comment: "needed at once".into(),
        })
        .unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-jit-grant",
        &encode(&grant()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-secret-state",
        &encode(&secret_state()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-session",
        &encode(&session()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-audit-event",
        &encode(&audit_event()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-output-chunk",
        &encode(&chunk()).unwrap(),
        STORED,
        &mut bad,
    );
    golden(
        "stored-strings",
        &encode(&vec!["notice".to_string()]).unwrap(),
        STORED,
        &mut bad,
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn wire_messages_keep_their_bytes() {
    use gatehouse::server::wire::{encode, encode_hello};
    let commands = commands();
    assert_every_variant(&commands, command_index, "Command");
    let responses = responses();
    assert_every_variant(&responses, response_index, "Response");
    let events = events();
    assert_every_variant(&events, event_index, "Event");
    let errors = errors();
    assert_every_variant(&errors, error_index, "EngineError");
    let mut bad = Vec::new();
    for (i, command) in commands.into_iter().enumerate() {
        let frame = ClientFrame { id: 1, command };
        golden(
            &format!("wire-command-{i:02}"),
            &encode(&frame).unwrap(),
            WIRE,
            &mut bad,
        );
    }
    for (i, response) in responses.into_iter().enumerate() {
        let frame = ServerFrame::Reply {
            id: 1,
            result: Ok(response),
        };
        golden(
            &format!("wire-response-{i:02}"),
            &encode(&frame).unwrap(),
            WIRE,
            &mut bad,
        );
    }
    for (i, error) in errors.into_iter().enumerate() {
        let frame = ServerFrame::Reply {
            id: 1,
            result: Err(error),
        };
        golden(
            &format!("wire-error-{i:02}"),
            &encode(&frame).unwrap(),
            WIRE,
            &mut bad,
        );
    }
    for (i, event) in events.into_iter().enumerate() {
        golden(
            &format!("wire-event-{i:02}"),
            &encode(&ServerFrame::Event(event)).unwrap(),
            WIRE,
            &mut bad,
        );
    }
    golden(
        "wire-data",
        &encode(&ServerFrame::Data {
            id: 1,
            bytes: vec![1, 2, 3],
        })
        .unwrap(),
        WIRE,
        &mut bad,
    );
    golden(
        "wire-hello",
        &encode_hello(&Hello {
            as_login: Some("alice".into()),
        })
        .unwrap(),
        WIRE,
        &mut bad,
    );
    golden(
        "wire-welcome",
        &encode_hello(&Welcome {
            result: Ok("alice".into()),
            notices: vec!["n".into()],
        })
        .unwrap(),
        WIRE,
        &mut bad,
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
