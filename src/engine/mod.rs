//! The engine: the one place that decides. It owns the store, checks every
//! command against the caller's roles, writes changes with their audit
//! events, and tells subscribers what changed.

pub mod api;
mod bootstrap;
pub mod cluster;
mod dry_run;
mod explain;
mod freezes;
mod gate;
mod hostkeys;
mod jit;
pub mod journal;
pub mod metrics;
mod mfa;
mod operations;
mod records;
mod refusals;
mod request_view;
mod requests;
mod reveal;
mod review;
pub mod rotation;
pub mod schedules;
mod search;
mod sessions;
mod visibility;

pub use api::{
    Command, EngineError, Event, HistoryFilter, ImportItem, PlainSecrets, RequestSpec,
    RequestTerms, Response,
};
pub use operations::HISTORY_MAX;
pub use visibility::{EventFilter, Verdict};

use crate::access::{self, Effect, Principal};
use crate::domain::{Kind, Permission, Record, Role, User};
use crate::exec::{ExecEvent, Limits, Runner};
use crate::store::{NewAuditEvent, Store};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{broadcast, Mutex, Notify};

/// How many events a slow subscriber may fall behind before it skips some.
const EVENT_BUFFER: usize = 4096;
/// Output chunks are up to 32 KiB each and a broadcast channel keeps its last
/// values until they are overwritten: few are kept, so a long output never
/// grows the server's memory. A client that falls behind reads the rest back
/// from the store.
const OUTPUT_BUFFER: usize = 64;

/// The engine of one data directory.
pub struct Engine {
    store: Arc<Store>,
    /// Every write, and the events that say so.
    journal: journal::Journal,
    runner: Arc<Runner>,
    events: broadcast::Sender<Event>,
    output: broadcast::Sender<Event>,
    /// Held while a command checks and then writes, so that two commands
    /// never both pass a check the other's write would have failed.
    write_lock: Mutex<()>,
    shutdown: Notify,
    /// The OS login that started the server.
    owner: String,
    /// Wrong second-factor codes per user.
    mfa_tries: mfa::MfaThrottle,
    /// When refusals were last audited, per actor and kind.
    refusals: refusals::RefusalLog,
    /// The OS account local templates run as: never admitted to the socket.
    local_account: crate::exec::local::LocalAccount,
    /// Sessions open now, for their monitors.
    live_sessions: sessions::LiveSessions,
    /// OS groups, from the name service.
    directory: crate::people::Directory,
    /// Members of these OS groups are let in without a user record.
    admission: crate::config::PeopleConfig,
    /// An emergency run unreviewed for longer is overdue.
    review_within: std::time::Duration,
    /// Whose reads of which operation's output were audited during this
    /// server's run: each is audited once, not at every look (a History
    /// cursor passing by would otherwise write, and make every auditor's
    /// TUI verify the chain, at each step).
    reads_audited: std::sync::Mutex<std::collections::HashSet<(String, crate::domain::Id)>>,
    /// This server among the others of a shared store (none on its own).
    cluster: Option<cluster::Membership>,
}

/// A user as a command sees them: the record, the roles it holds (its own
/// and its OS groups'), its groups, and where each role comes from.
pub struct Person {
    pub user: User,
    pub roles: Vec<Role>,
    pub groups: Vec<String>,
}

impl Person {
    pub fn principal(&self) -> Principal<'_> {
        Principal {
            user: &self.user,
            roles: self.roles.iter().collect(),
            groups: &self.groups,
        }
    }
}

/// What one client receives: every event, output through its own small buffer.
pub struct Subscription {
    events: broadcast::Receiver<Event>,
    output: broadcast::Receiver<Event>,
    /// An operation's end, held back until the output already sent before
    /// it has been handed out (the two channels keep no order between them).
    held: Option<Event>,
}

impl Subscription {
    /// The next event; `Err(n)` when `n` were skipped because this
    /// subscriber fell behind (output it can read back from the store).
    /// An operation's end comes after every output chunk sent before it.
    pub async fn recv(&mut self) -> Result<Event, u64> {
        use broadcast::error::{RecvError, TryRecvError};
        loop {
            if self.held.is_some() {
                match self.output.try_recv() {
                    Ok(e) => return Ok(e),
                    Err(TryRecvError::Lagged(n)) => return Err(n),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => {
                        if let Some(e) = self.held.take() {
                            return Ok(e);
                        }
                    }
                }
            }
            let result = tokio::select! {
                biased;
                e = self.events.recv() => e,
                o = self.output.recv() => o,
            };
            return match result {
                Ok(Event::OperationChanged(op)) if op.state.is_final() => {
                    self.held = Some(Event::OperationChanged(op));
                    continue;
                }
                Ok(e) => Ok(e),
                Err(RecvError::Lagged(n)) => Err(n),
                Err(RecvError::Closed) => std::future::pending().await,
            };
        }
    }
}

impl Engine {
    /// Opens the store in `dir`; on an empty store, makes `owner` and `root`
    /// Superusers. Then recovers cut-off operations and starts schedules.
    pub async fn open(dir: &Path, owner: &str, limits: Limits) -> Result<Arc<Engine>, EngineError> {
        let store = Arc::new(match &limits.store_url {
            Some(url) => Store::open_shared(dir, &url.0)?,
            None => Store::open(dir)?,
        });
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (output, _) = broadcast::channel(OUTPUT_BUFFER);
        let output_sender = output.clone();
        // Several servers on one shared store: each tells the others.
        let relay = cluster::Relay::for_store(&store);
        let output_relay = relay.clone();
        let notify: crate::exec::Notify = Arc::new(move |e: ExecEvent| {
            // No receiver is fine: nobody is watching.
            match e {
                // The debug trace is read from the store, by who may.
                ExecEvent::Output { chunk, .. } if chunk.stream == crate::domain::Stream::Debug => {
                }
                ExecEvent::Output { op, chunk } => {
                    let event = Event::Output { id: op, chunk };
                    if let Some(relay) = &output_relay {
                        relay.tell(&event);
                    }
                    let _ = output_sender.send(event);
                }
            }
        });
        let journal = journal::Journal::new(store.clone(), events.clone(), relay.clone());
        if let Some(relay) = &relay {
            relay.listen(events.clone(), output.clone());
        }
        let (finished_tx, finished_rx) = tokio::sync::mpsc::unbounded_channel();
        let local_account = limits.local_account.clone();
        let admission = limits.people.clone();
        let review_within = limits.review_within;
        let lease = limits.cluster_lease;
        let environments = limits.cluster_environments.clone();
        let runner = Arc::new(Runner::new(
            store.clone(),
            Arc::new(journal.clone()),
            notify,
            limits,
            finished_tx,
        ));
        let engine = Arc::new(Engine {
            store,
            journal,
            runner,
            events,
            output,
            write_lock: Mutex::new(()),
            shutdown: Notify::new(),
            owner: owner.to_string(),
            mfa_tries: Default::default(),
            refusals: Default::default(),
            local_account,
            live_sessions: Default::default(),
            directory: Default::default(),
            admission,
            review_within,
            reads_audited: Default::default(),
            cluster: relay
                .as_ref()
                .map(|r| cluster::Membership::new(r.id(), lease, environments)),
        });
        engine.runner.set_gate(gate::gate(Arc::downgrade(&engine)));
        engine
            .runner
            .set_hold(rotation::hold(Arc::downgrade(&engine)));
        engine.bootstrap().await?;
        engine.start(finished_rx).await?;
        Ok(engine)
    }

    /// The store, for the parts of the server that read it directly.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The OS login the server runs as.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A stream of everything that happens from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            events: self.events.subscribe(),
            output: self.output.subscribe(),
            held: None,
        }
    }

    /// Resolves when a client asked the server to stop.
    pub async fn shutdown_requested(&self) {
        self.shutdown.notified().await
    }

    /// Sends an event that no store change carries (a shutdown); every
    /// change is published by the journal that writes it.
    fn publish(&self, event: Event) {
        self.journal.publish(event);
    }

    /// Whether `login` may use this server at all: an enabled Gatehouse user.
    /// The refusal says what to do about it.
    pub fn admits(&self, login: &str) -> Result<(), String> {
        if matches!(&self.local_account, crate::exec::local::LocalAccount::Named(n) if n == login) {
            return Err(format!(
                "OS user '{login}' runs local tasks and may not use Gatehouse"
            ));
        }
        match self.store.find(Kind::User, login) {
            Ok(Some(Record::User(u))) if u.meta.enabled => Ok(()),
            Ok(Some(_)) => Err(format!("Gatehouse user '{login}' is disabled")),
            Ok(None) => Err(format!(
                "OS user '{login}' is not a Gatehouse user; ask an administrator to add them"
            )),
            Err(e) => Err(format!("cannot read the users: {e}")),
        }
    }

    /// Lets `login` in: a user with a record (as [`Engine::admits`]), or a
    /// member of one of `[people] admit_groups`, whose user is made now
    /// (audited) with the default role. A disabled user stays out
    /// whatever their groups.
    pub async fn admit(&self, login: &str) -> Result<(), String> {
        let refused = match self.admits(login) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let local =
            matches!(&self.local_account, crate::exec::local::LocalAccount::Named(n) if n == login);
        let unknown = matches!(self.store.find(Kind::User, login), Ok(None));
        if local || !unknown || self.admission.admit_groups.is_empty() {
            return Err(refused);
        }
        let groups = self.directory.groups_of(login)?;
        let Some(group) = self
            .admission
            .admit_groups
            .iter()
            .find(|g| groups.contains(g))
            .cloned()
        else {
            return Err(refused);
        };
        let role = self
            .admission
            .default_role
            .clone()
            .unwrap_or_else(|| "User".to_string());
        let _guard = self.write_lock.lock().await;
        if !matches!(self.store.find(Kind::User, login), Ok(None)) {
            return Ok(()); // made by a connection that came first
        }
        let now = crate::domain::Timestamp::now();
        let id = self.store.next_id().map_err(|e| e.to_string())?;
        let user = User {
            meta: crate::domain::Meta {
                id,
                name: login.to_string(),
                enabled: true,
                revision: 1,
                created_at: now,
                updated_at: now,
                created_by: "gatehouse".into(),
                updated_by: "gatehouse".into(),
            },
            display_name: login.to_string(),
            roles: vec![role.clone()],
            totp_secret: None,
        };
        self.journal
            .commit(
                vec![crate::store::Change::Put(Box::new(Record::User(user)))],
                vec![NewAuditEvent::new(
                    "gatehouse",
                    "user.admit",
                    format!("user {login}"),
                    format!("a member of OS group {group} (admit_groups), with role {role}"),
                )],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The user record of `login`, its roles (its own and its OS groups')
    /// and its groups, refused for strangers, disabled users, and when the
    /// name service cannot say which groups it is in.
    pub(super) fn principal_records(&self, login: &str) -> Result<Person, EngineError> {
        let user = match self.store.find(Kind::User, login)? {
            Some(Record::User(u)) => u,
            _ => {
                return Err(EngineError::Denied(format!(
                    "OS user '{login}' is not a Gatehouse user; ask an administrator to add them"
                )))
            }
        };
        if !user.meta.enabled {
            return Err(EngineError::Denied(format!(
                "Gatehouse user '{login}' is disabled"
            )));
        }
        let all: Vec<Role> = self
            .store
            .list(Kind::Role)?
            .into_iter()
            .filter_map(|r| match r {
                Record::Role(role) => Some(role),
                _ => None,
            })
            .collect();
        // Only roles that name groups need the directory.
        let groups = if all.iter().any(|r| !r.os_groups.is_empty()) || self.groups_in_lists()? {
            self.directory
                .groups_of(login)
                .map_err(EngineError::Denied)?
        } else {
            Vec::new()
        };
        let roles = all
            .into_iter()
            .filter(|role| {
                user.roles.contains(&role.meta.name)
                    || role.os_groups.iter().any(|g| groups.contains(g))
            })
            .collect();
        Ok(Person {
            user,
            roles,
            groups,
        })
    }

    /// The OS groups that roles, policies and admission name, with their
    /// members, for whoever may list users.
    fn groups_in_use(&self, who: &Principal<'_>) -> Result<Response, EngineError> {
        self.authorize(who, Effect::List(Kind::User))?;
        let mut groups: std::collections::BTreeMap<String, api::GroupInUse> = Default::default();
        let entry = |groups: &mut std::collections::BTreeMap<String, api::GroupInUse>,
                     name: &str| {
            groups
                .entry(name.to_string())
                .or_insert_with(|| api::GroupInUse {
                    name: name.to_string(),
                    roles: Vec::new(),
                    policies: Vec::new(),
                    admits: false,
                    members: Ok(Vec::new()),
                })
                .clone()
        };
        for record in self.store.list(Kind::Role)? {
            if let Record::Role(r) = record {
                for g in &r.os_groups {
                    let mut e = entry(&mut groups, g);
                    e.roles.push(r.meta.name.clone());
                    groups.insert(g.clone(), e);
                }
            }
        }
        for record in self.store.list(Kind::Policy)? {
            if let Record::Policy(p) = record {
                let named = p
                    .users
                    .iter()
                    .filter_map(|u| {
                        u.strip_prefix('@')
                            .map(|g| (g.to_string(), "users".to_string()))
                    })
                    .chain(p.approvers.iter().filter_map(|a| {
                        a.user
                            .strip_prefix('@')
                            .map(|g| (g.to_string(), format!("approvers level {}", a.level)))
                    }));
                for (g, place) in named {
                    let mut e = entry(&mut groups, &g);
                    e.policies.push(format!("{} ({place})", p.meta.name));
                    groups.insert(g, e);
                }
            }
        }
        for g in &self.admission.admit_groups {
            let mut e = entry(&mut groups, g);
            e.admits = true;
            groups.insert(g.clone(), e);
        }
        let mut out: Vec<api::GroupInUse> = groups.into_values().collect();
        for g in &mut out {
            g.members = self.directory.members_of(&g.name);
        }
        Ok(Response::Groups(out))
    }

    /// Whether some policy names an `@group` (as a user or an approver):
    /// then a person's groups are needed to judge them.
    fn groups_in_lists(&self) -> Result<bool, EngineError> {
        Ok(self.store.list(Kind::Policy)?.iter().any(|r| match r {
            Record::Policy(p) => {
                p.users.iter().any(|u| u.starts_with('@'))
                    || p.approvers.iter().any(|a| a.user.starts_with('@'))
            }
            _ => false,
        }))
    }

    /// Runs one command for the OS user `login`.
    pub async fn handle(&self, login: &str, command: Command) -> Result<Response, EngineError> {
        let person = self.principal_records(login)?;
        let who = person.principal();
        self.dispatch(&who, command).await
    }

    /// Writes a backup of the whole store to `sink` for a Superuser; `path`
    /// is where the caller says it keeps it (for the audit).
    pub async fn backup(
        &self,
        login: &str,
        path: &Path,
        sink: impl std::io::Write + Send + 'static,
    ) -> Result<Response, EngineError> {
        let person = self.principal_records(login)?;
        let who = person.principal();
        self.authorize(&who, Effect::Backup)?;
        let store = self.store.clone();
        let summary = tokio::task::spawn_blocking(move || store.backup_to(sink))
            .await
            .map_err(|e| EngineError::Store(format!("the backup stopped: {e}")))??;
        self.audit(vec![NewAuditEvent::new(
            login,
            "store.backup",
            crate::text::clipped(&path.display().to_string(), 300),
            format!(
                "{} trees, {} entries, written by the client",
                summary.trees, summary.entries
            ),
        )])
        .await?;
        Ok(Response::Backup(summary))
    }

    async fn dispatch(
        &self,
        who: &Principal<'_>,
        command: Command,
    ) -> Result<Response, EngineError> {
        let login = who.user.meta.name.as_str();
        match command {
            Command::Whoami => Ok(Response::Whoami {
                roles: who.role_sources(),
                login: login.to_string(),
                superuser: who.is_superuser(),
                server_owner: self.owner.clone(),
            }),
            Command::List { kind } => Ok(Response::Records(self.visible(who, kind)?)),
            Command::Export => {
                let mut all = Vec::new();
                for kind in Kind::ALL {
                    if self.authorize(who, Effect::List(kind)).is_ok() {
                        all.extend(self.visible(who, kind)?);
                    }
                }
                self.audit(vec![NewAuditEvent::new(
                    &who.user.meta.name,
                    "records.export",
                    "records",
                    format!("{} record(s), secrets withheld", all.len()),
                )])
                .await?;
                Ok(Response::Records(all))
            }
            Command::Import { items } => self.import(who, items).await,
            Command::Delete { kind, name } => self.delete(who, kind, &name).await,
            Command::Clone { kind, from, to } => self.clone_record(who, kind, &from, &to).await,
            // Streamed by the server through `Engine::backup`.
            Command::Backup { .. } => Err(EngineError::Protocol(
                "a backup is streamed to the client: ask through the server".into(),
            )),
            Command::SetEnabled {
                kind,
                name,
                enabled,
            } => self.set_enabled(who, kind, &name, enabled).await,
            Command::TemplateRevisions { name } => {
                let template =
                    self.store
                        .find(Kind::Template, &name)?
                        .ok_or(EngineError::NotFound {
                            kind: Kind::Template,
                            name,
                        })?;
                self.authorize(who, Effect::Read(&template))?;
                let revisions = self.store.template_revisions(template.meta().id)?;
                Ok(Response::Records(
                    revisions.into_iter().map(Record::Template).collect(),
                ))
            }
            Command::RequestTerms { task } => self.request_terms(who, &task),
            Command::RequestOf { id } => self.request_of(who, id),
            Command::PinnedTemplate { request } => self.pinned_template(who, request),
            Command::AuditVerify => {
                self.authorize(who, Effect::Use(Permission::ViewAudit))?;
                Ok(Response::AuditVerified(self.store.verify_audit()?))
            }
            Command::AuditEvents { from, limit } => {
                self.authorize(who, Effect::Use(Permission::ViewAudit))?;
                Ok(Response::AuditEvents(
                    self.store.audit_events(from, limit as usize)?,
                ))
            }
            Command::AuditExport { from, limit } => {
                self.authorize(who, Effect::Use(Permission::ViewAudit))?;
                self.authorize(who, Effect::Use(Permission::ExportAudit))?;
                // Audited once, at its first page (the event is part of
                // what a later page exports).
                if from <= 1 {
                    self.audit(vec![NewAuditEvent::new(
                        &who.user.meta.name,
                        "audit.export",
                        "audit log",
                        format!("{} event(s)", self.store.audit_len()?),
                    )])
                    .await?;
                }
                Ok(Response::AuditEvents(
                    self.store.audit_events(from, limit as usize)?,
                ))
            }
            Command::AuditTail { limit } => {
                self.authorize(who, Effect::Use(Permission::ViewAudit))?;
                Ok(Response::AuditEvents(
                    self.store.audit_tail(limit as usize)?,
                ))
            }
            Command::Subscribe => Ok(Response::Done),
            Command::Request(spec) => self.request(who, spec).await,
            // Everyone sees their own executions; others' need view-executions
            // in their environment (`access::visibility`).
            Command::Operations { states } => self.operations(who, &states),
            Command::History(filter) => self.history(who, &filter),
            Command::Operation { id } => {
                Ok(Response::Operations(vec![self.visible_operation(who, id)?]))
            }
            Command::Output {
                id,
                from,
                limit,
                debug,
            } => self.output(who, id, from, limit, debug).await,
            Command::Cancel { id } => self.cancel(who, id).await,
            Command::ScanHostKeys { device } => self.scan_host_keys(who, &device).await,
            Command::PinHostKeys { device, keys } => self.pin_host_keys(who, &device, keys).await,
            Command::Approve {
                id,
                comment,
                until,
                totp,
            } => self.approve(who, id, comment, until, totp).await,
            Command::TotpEnroll { login, code } => {
                self.totp_enroll(who, &login, code.as_deref()).await
            }
            Command::TotpReset { login } => self.totp_reset(who, &login).await,
            Command::Jit { all } => self.jit_list(who, all),
            Command::JitRevoke { id } => self.jit_revoke_now(who, id).await,
            Command::Reject { id, comment } => self.reject(who, id, comment).await,
            Command::Queue => self.queue(who),
            Command::Requests { mine } => self.requests(who, mine),
            Command::RoleCheck { name } => {
                self.authorize(who, Effect::Use(Permission::ManageUsers))?;
                match self.store.find(Kind::Role, &name)? {
                    Some(Record::Role(role)) => Ok(Response::RoleWarnings(
                        access::analysis::analyse_together(&[&role], &self.reach()?),
                    )),
                    _ => Err(EngineError::NotFound {
                        kind: Kind::Role,
                        name,
                    }),
                }
            }
            Command::Schedules => self.schedules(who),
            Command::ChangeCredential { name, devices } => {
                self.ask_change(who, &name, devices, crate::domain::ChangeReason::Manual)
                    .await
            }
            Command::ReconcileCredential { name, devices } => {
                self.ask_change(who, &name, devices, crate::domain::ChangeReason::Reconcile)
                    .await
            }
            Command::RevealCredential(spec) => self.reveal(who, spec).await,
            Command::CredentialStates => self.credential_states(who),
            Command::Sessions { open_only, text } => self.sessions(who, open_only, text.as_deref()),
            Command::SessionRecording { id, input } => self.session_recording(who, id, input).await,
            // Both live on the connection: the server relays them.
            Command::EndSession { id, reason } => self.end_session(who, id, reason).await,
            Command::Groups => self.groups_in_use(who),
            Command::ExplainPolicy(spec) => self.explain(who, spec),
            Command::RequestView { id } => self.request_view(who, id),
            Command::ReviewEmergency {
                ids,
                accepted,
                comment,
            } => self.review_emergencies(who, ids, accepted, comment).await,
            Command::SearchOutput { text, filter } => self.search_output(who, &text, &filter).await,
            Command::DryRun { id } => self.dry_run(who, id).await,
            Command::ClusterStatus => {
                self.authorize(who, Effect::ClusterStatus)?;
                Ok(Response::Cluster(Box::new(self.cluster_status()?)))
            }
            Command::DecideMany {
                ids,
                approve,
                comment,
                until,
                totp,
            } => {
                self.decide_many(who, ids, approve, comment, until, totp)
                    .await
            }
            Command::Connect(_) | Command::SessionInput { .. } | Command::WatchSession { .. } => {
                Err(EngineError::Protocol(
                    "a session is opened and fed on its own connection, through the server".into(),
                ))
            }
            Command::Metrics => self.metrics(who),
            Command::UserCheck { login: name } => {
                self.authorize(who, Effect::Use(Permission::ManageUsers))?;
                let user = match self.store.find(Kind::User, &name)? {
                    Some(Record::User(u)) => u,
                    _ => {
                        return Err(EngineError::NotFound {
                            kind: Kind::User,
                            name,
                        })
                    }
                };
                // Their own roles and their OS groups' (as the name
                // service says now; a failure is said, not guessed).
                let groups = self
                    .directory
                    .groups_of(&name)
                    .map_err(EngineError::Denied)?;
                let roles: Vec<Role> = self
                    .store
                    .list(Kind::Role)?
                    .into_iter()
                    .filter_map(|r| match r {
                        Record::Role(role)
                            if role.meta.enabled
                                && (user.roles.contains(&role.meta.name)
                                    || role.os_groups.iter().any(|g| groups.contains(g))) =>
                        {
                            Some(role)
                        }
                        _ => None,
                    })
                    .collect();
                let refs: Vec<&Role> = roles.iter().collect();
                Ok(Response::RoleWarnings(access::analysis::analyse_together(
                    &refs,
                    &self.reach()?,
                )))
            }
            Command::Shutdown => {
                self.authorize(who, Effect::Shutdown { owner: &self.owner })?;
                self.audit(vec![NewAuditEvent::new(
                    login,
                    "server.shutdown",
                    "server",
                    "",
                )])
                .await?;
                self.publish(Event::ShuttingDown);
                self.shutdown.notify_waiters();
                self.shutdown.notify_one();
                Ok(Response::Done)
            }
        }
    }

    /// The records of a kind the caller may see, secrets withheld.
    fn visible(&self, who: &Principal<'_>, kind: Kind) -> Result<Vec<Record>, EngineError> {
        self.authorize(who, Effect::List(kind))?;
        let facts = StoreFacts(&self.store);
        Ok(self
            .store
            .list(kind)?
            .into_iter()
            .filter(|r| access::authorize(who, Effect::Read(r), &facts).is_ok())
            .map(Record::withhold_secrets)
            .collect())
    }

    /// What the store holds that role analysis weighs grants against.
    fn reach(&self) -> Result<access::analysis::Reach, EngineError> {
        let mut reach = access::analysis::Reach::default();
        for r in self.store.list(Kind::Task)? {
            if let Record::Task(t) = r {
                reach
                    .tasks
                    .push((t.meta.name, t.template, t.schedule.is_some()));
            }
        }
        for r in self.store.list(Kind::Template)? {
            if let Record::Template(t) = r {
                if t.executor == crate::domain::Executor::Local {
                    reach.local_templates.push(t.meta.name);
                }
            }
        }
        Ok(reach)
    }

    /// Asks the one authorization function; a denial becomes the error.
    pub(crate) fn authorize(
        &self,
        who: &Principal<'_>,
        effect: Effect<'_>,
    ) -> Result<(), EngineError> {
        access::authorize(who, effect, &StoreFacts(&self.store)).map_err(|d| match d.needs {
            Some(permission) => EngineError::NeedsPermission {
                message: d.message,
                permission,
            },
            None => EngineError::Denied(d.message),
        })
    }

    /// The server's own events (its start and stop), in the audit.
    pub async fn audit_server(&self, action: &str, details: String) -> Result<(), EngineError> {
        self.audit(vec![NewAuditEvent::new(
            "gatehouse",
            action,
            "server",
            details,
        )])
        .await
    }

    async fn audit(&self, events: Vec<NewAuditEvent>) -> Result<(), EngineError> {
        self.journal.commit(Vec::new(), events).await?;
        Ok(())
    }
}

/// What authorization needs to know of the store.
pub(crate) struct StoreFacts<'a>(pub &'a crate::store::Store);

impl access::Facts for StoreFacts<'_> {
    fn executor_of(&self, template: &str) -> Option<crate::domain::Executor> {
        match self.0.find(Kind::Template, template) {
            Ok(Some(Record::Template(t))) => Some(t.executor),
            _ => None,
        }
    }
    fn task_parts(&self, task: &str) -> Option<(String, Vec<String>)> {
        match self.0.find(Kind::Task, task) {
            Ok(Some(Record::Task(t))) => Some((t.template, t.children)),
            _ => None,
        }
    }
    fn device_environment(&self, device: &str) -> Option<String> {
        match self.0.find(Kind::Device, device) {
            Ok(Some(Record::Device(d))) => Some(d.environment),
            _ => None,
        }
    }
}

/// A user record, when the record is one.
pub(crate) fn as_user(record: &Record) -> Option<&User> {
    match record {
        Record::User(u) => Some(u),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Executor, Id, OpState, Operation, OutputChunk, Stream, Timestamp, Trigger,
    };

    fn ended(id: u64) -> Event {
        Event::OperationChanged(Box::new(Operation {
            id: Id(id),
            request: Id(1),
            task: "t".into(),
            template: "t".into(),
            template_id: Id(2),
            template_revision: 1,
            executor: Executor::Local,
            device: "here".into(),
            credential: "c".into(),
            variables: Default::default(),
            trigger: Trigger::User,
            requested_by: "alice".into(),
            superuser_bypass: false,
            state: OpState::Succeeded,
            attempts: 1,
            max_attempts: 1,
            rerun: Default::default(),
            timeout_secs: 60,
            exit_status: Some(0),
            created_at: Timestamp(0),
            not_before: Timestamp(0),
            started_at: None,
            finished_at: None,
            error: None,
            jit_until: None,
            output_bytes: 0,
            output_truncated: false,
        }))
    }

    fn chunk(id: u64, seq: u64) -> Event {
        Event::Output {
            id: Id(id),
            chunk: OutputChunk {
                seq,
                stream: Stream::Stdout,
                time: Timestamp(0),
                bytes: b"x\n".to_vec(),
            },
        }
    }

    /// The two channels keep no order between them; an operation's end
    /// must not overtake the output sent before it (a watcher that takes the
    /// end as the last word would miss output the store may not have).
    #[tokio::test]
    async fn an_operations_end_comes_after_the_output_sent_before_it() {
        let (events, _) = broadcast::channel(16);
        let (output, _) = broadcast::channel(16);
        let mut sub = Subscription {
            events: events.subscribe(),
            output: output.subscribe(),
            held: None,
        };
        for seq in 0..3 {
            output.send(chunk(7, seq)).unwrap();
        }
        events.send(ended(7)).unwrap();
        output.send(chunk(8, 0)).unwrap();
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(match sub.recv().await.unwrap() {
                Event::Output { id, chunk } => format!("output {} {}", id.0, chunk.seq),
                Event::OperationChanged(op) => format!("end {}", op.id.0),
                _ => "other".into(),
            });
        }
        assert_eq!(
            got,
            [
                "output 7 0",
                "output 7 1",
                "output 7 2",
                "output 8 0",
                "end 7"
            ]
        );
    }
}
