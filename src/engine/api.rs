//! The engine's vocabulary: commands in, responses and events out. Front ends
//! speak only this, through the server.

use crate::domain::{ExecutionRequest, HostKey, Id, Kind, OpState, Operation, OutputChunk, Record};
use crate::store::{AuditBreak, AuditEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Secrets that arrive with an imported credential or user, in plain text
/// over the local socket; the engine seals them before anything is stored.
#[derive(Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PlainSecrets {
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    pub totp_secret: Option<String>,
}

impl fmt::Debug for PlainSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "set" } else { "unset" };
        f.debug_struct("PlainSecrets")
            .field("password", &set(&self.password))
            .field("private_key", &set(&self.private_key))
            .field("passphrase", &set(&self.passphrase))
            .field("totp_secret", &set(&self.totp_secret))
            .finish()
    }
}

impl Drop for PlainSecrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for s in [
            &mut self.password,
            &mut self.private_key,
            &mut self.passphrase,
            &mut self.totp_secret,
        ]
        .into_iter()
        .flatten()
        {
            s.zeroize();
        }
    }
}

/// One record of an import, with where it came from for error messages.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImportItem {
    pub record: Record,
    pub secrets: PlainSecrets,
    /// The line of the file the record starts on (0 when it has none).
    pub line: usize,
}

/// A request to the engine. The caller's identity travels beside it, set by
/// the server from the socket's peer credentials, never by the client.
/// On the wire by variant index: a new variant goes last and bumps
/// PROTOCOL_VERSION (tests/golden.rs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Who the engine takes the caller for.
    Whoami,
    /// Every record of a kind the caller may see.
    List { kind: Kind },
    /// Creates or updates records by name, all or nothing.
    Import { items: Vec<ImportItem> },
    /// Every record the caller may see, secrets withheld.
    Export,
    /// Deletes a record that nothing uses.
    Delete { kind: Kind, name: String },
    /// Streams a consistent backup of the whole store to the caller, which
    /// writes it to `path` itself (the path is recorded in the audit).
    Backup { path: std::path::PathBuf },
    /// Creates a record as a copy of another under a new name.
    Clone {
        kind: Kind,
        from: String,
        to: String,
    },
    /// Enables or disables a record.
    SetEnabled {
        kind: Kind,
        name: String,
        enabled: bool,
    },
    /// Every saved revision of a template.
    TemplateRevisions { name: String },
    /// What a request of this task needs from this user: the policy that
    /// would cover it and what it requires, the devices and variables.
    RequestTerms { task: String },
    /// Walks the audit chain.
    AuditVerify,
    /// Audit events from a sequence number on.
    AuditEvents { from: u64, limit: u32 },
    /// Audit events from a sequence number on, for an export out of
    /// Gatehouse (needs export-audit as well as view-audit).
    AuditExport { from: u64, limit: u32 },
    /// The newest audit events, oldest of them first.
    AuditTail { limit: u32 },
    /// Starts sending this connection events.
    Subscribe,
    /// Runs a task: one operation per device.
    Request(RequestSpec),
    /// Operations in some states (all unfinished ones when empty).
    Operations { states: Vec<OpState> },
    /// Operations newest first that pass the filter.
    History(HistoryFilter),
    /// One operation.
    Operation { id: Id },
    /// An operation's stored output from a sequence number on.
    /// With `debug`, the debug trace too (needs view-execution-debug).
    Output {
        id: Id,
        from: u64,
        limit: u32,
        debug: bool,
    },
    /// Stops a queued or running operation.
    Cancel { id: Id },
    /// Connects to a device and reports every host key it offers.
    ScanHostKeys { device: String },
    /// Pins a device's host keys, given exactly as they were shown,
    /// replacing those pinned before.
    PinHostKeys { device: String, keys: Vec<HostKey> },
    /// Approves the current level of a request, optionally narrowing its window.
    Approve {
        id: Id,
        comment: String,
        until: Option<crate::domain::Timestamp>,
        /// A current TOTP code, where the policy requires MFA.
        totp: Option<String>,
    },
    /// Makes a new TOTP secret and recovery codes for the caller and returns
    /// them, once. Replacing an enrolled factor needs a current code or a
    /// recovery code.
    TotpEnroll {
        login: String,
        /// A current TOTP code or an unused recovery code.
        code: Option<String>,
    },
    /// Removes another user's second factor (manage-users): audited, and the
    /// user is told at their next command.
    TotpReset { login: String },
    /// Rejects a request; the comment says why.
    Reject { id: Id, comment: String },
    /// Pending requests this user may decide now, and emergency notices.
    Queue,
    /// Requests, newest first; only the caller's with `mine`.
    Requests { mine: bool },
    /// One request, for the history's detail of an operation.
    RequestOf { id: Id },
    /// What a request will run: its pinned template revision (then the
    /// current one, when it has changed since). For its requester and its
    /// approvers, who may not otherwise see templates.
    PinnedTemplate { request: Id },
    /// Scheduled tasks the caller may see, with the requests they run under.
    Schedules,
    /// The Dashboard's numbers, over what the caller may see.
    Metrics,
    /// The role analysis of one role.
    RoleCheck { name: String },
    /// The role analysis of a user's roles together.
    UserCheck { login: String },
    /// JIT grants not yet revoked (all of them with `all`).
    Jit { all: bool },
    /// Revokes a JIT grant now instead of at its expiry.
    JitRevoke { id: Id },
    /// Stops the server (its owner or a Superuser only).
    Shutdown,
    /// Changes a credential's password on its devices (or these).
    ChangeCredential { name: String, devices: Vec<String> },
    /// Sets a new password through the credential's `reconcile_with`.
    ReconcileCredential { name: String, devices: Vec<String> },
    /// Shows a credential's password to someone allowed to see it.
    RevealCredential(RevealSpec),
    /// Where each credential's secret stands.
    CredentialStates,
    /// Opens a privileged session: the device's output comes as `Data`
    /// frames of this command's id until the reply says how it ended.
    Connect(ConnectSpec),
    /// Keystrokes or a resize for the session opened by command `session`
    /// on this connection. Never answered.
    SessionInput {
        session: u64,
        input: crate::domain::SessionInput,
    },
    /// Sessions this user may see, newest first (open ones only, or all;
    /// with `text`, those whose recorded output contains it).
    Sessions {
        open_only: bool,
        text: Option<String>,
    },
    /// A session's recording (asciicast v2): its output, or what was typed.
    SessionRecording { id: Id, input: bool },
    /// Watches an open session (monitor-sessions): its screen so far, then
    /// what the device sends, as `Data` frames until it ends.
    WatchSession { id: Id },
    /// Ends an open session (monitor-sessions); its user is told why.
    EndSession { id: Id, reason: String },
    /// The OS groups roles, policies and admission name, with their members.
    Groups,
    /// How every policy judges a request of a task by someone, at a time.
    ExplainPolicy(ExplainSpec),
    /// What a request will run, device by device, for those who decide it.
    RequestView { id: Id },
    /// Lines of stored output holding `text` (any case), over one page of
    /// the operations `filter` picks (newest first; `before` pages on).
    SearchOutput { text: String, filter: HistoryFilter },
    /// Reviews emergency runs after the fact (their policy's approvers):
    /// accepted, or flagged for follow-up, with why.
    ReviewEmergency {
        ids: Vec<Id>,
        accepted: bool,
        comment: String,
    },
    /// Approves (or rejects) several requests with one comment and, where
    /// a policy wants MFA, one TOTP code; each is decided on its own.
    DecideMany {
        ids: Vec<Id>,
        approve: bool,
        comment: String,
        until: Option<crate::domain::Timestamp>,
        totp: Option<String>,
    },
    /// The servers of a shared store, or this one alone.
    ClusterStatus,
    /// Runs a pending request's playbook as a dry run (`--check --diff`),
    /// for its requester and those who may decide it.
    DryRun { id: Id },
}

/// One server, as `cluster status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServerStatus {
    pub id: u64,
    pub host: String,
    pub pid: u32,
    pub started_at: crate::domain::Timestamp,
    pub renewed_at: crate::domain::Timestamp,
    /// Renewed within the lease.
    pub alive: bool,
    /// The one answering.
    pub this_server: bool,
    /// Its operations that have not ended.
    pub operations: u64,
    /// The environments it runs operations in (empty: all).
    pub environments: Vec<String>,
}

/// Where the store is and who serves it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClusterStatus {
    /// `sled`, or the shared database's URL without its password.
    pub store: String,
    pub shared: bool,
    pub lease_secs: u64,
    pub servers: Vec<ServerStatus>,
}

impl Explanation {
    /// The answer first, then one line per policy (`policy explain`'s
    /// table, and the TUI's).
    pub fn lines(&self) -> Vec<String> {
        let e = self;
        let covering = e.verdicts.iter().find(|v| v.covers());
        let verdict = match (&e.permission, e.superuser, covering, &e.freeze) {
            (_, true, _, _) => "yes: a Superuser needs no policy".to_string(),
            (Err(why), ..) => format!("no: {why}"),
            (Ok(()), false, Some(v), None) => format!("yes, under policy {}", v.policy),
            (Ok(()), false, Some(v), Some(freeze)) => format!(
                "only as an emergency request (policy {}): {freeze}",
                v.policy
            ),
            (Ok(()), false, None, _) => "no: no policy covers it".to_string(),
        };
        let mut lines = vec![
            format!(
                "may {} request {} on {} at {}? {}",
                crate::text::printable(&e.user),
                crate::text::printable(&e.task),
                if e.devices.is_empty() {
                    "its devices".to_string()
                } else {
                    crate::text::printable(&e.devices.join(", "))
                },
                e.at,
                crate::text::printable(&verdict)
            ),
            String::new(),
            format!("{:<20} {:<8} {:<12} WHY (MET)", "POLICY", "RESULT", "FAILS"),
        ];
        for v in &e.verdicts {
            let (result, fails, why) = match &v.failed {
                None => ("covers", "-".to_string(), String::new()),
                Some((condition, why)) => ("refuses", condition.clone(), why.clone()),
            };
            lines.push(format!(
                "{:<20} {:<8} {:<12} {}{}({})",
                crate::text::printable(&v.policy),
                result,
                fails,
                crate::text::printable(&why),
                if why.is_empty() { "" } else { " " },
                if v.passed.is_empty() {
                    "met nothing".to_string()
                } else {
                    format!("met: {}", v.passed.join(", "))
                }
            ));
        }
        if e.verdicts.is_empty() {
            lines.push("(no policies)".into());
        }
        lines
    }
}

/// What a request will run, as its approvers need to see it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestView {
    pub request: ExecutionRequest,
    /// The credential it logs in with, and as whom.
    pub credential: String,
    pub username: String,
    /// The pinned template: name, revision, executor; and the revision it
    /// is at now when it changed since (the request will be voided).
    pub template: String,
    pub template_revision: u32,
    pub executor: String,
    pub template_now: Option<u32>,
    /// Every declared variable: its value, and whether that is its default.
    pub variables: Vec<(String, String, bool)>,
    /// What runs, rendered: devices that get the same text share one entry.
    pub runs: Vec<DeviceRun>,
    /// The chained tasks that follow on success, with their templates.
    pub children: Vec<ChildRun>,
    /// An emergency run's review, once given.
    pub review: Option<crate::domain::EmergencyReview>,
    /// Its dry runs, newest first, each with the end of its output.
    pub dry_runs: Vec<DryRunView>,
}

impl DryRunView {
    /// Its heading: where, asked by whom, how it ended.
    pub fn title(&self) -> String {
        use crate::text::printable;
        format!(
            "dry run {} on {} (asked by {}): {}{}",
            self.operation,
            printable(&self.device),
            printable(&self.requested_by),
            self.state,
            self.error
                .as_ref()
                .map(|e| format!(" ({})", printable(e)))
                .unwrap_or_default()
        )
    }
}

/// A dry run of a pending request on one device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DryRunView {
    pub operation: Id,
    pub device: String,
    pub state: String,
    pub requested_by: String,
    pub error: Option<String>,
    /// Its last lines (Gatehouse's own lines and Ansible's).
    pub output: Vec<String>,
}

/// The rendered text some devices get (secrets as their masks' names).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeviceRun {
    pub devices: Vec<String>,
    pub text: String,
}

/// A chained task, with its pinned template's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChildRun {
    pub task: String,
    pub template: String,
    pub template_revision: u32,
    pub content: String,
}

/// One page of a search of stored output.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchPage {
    pub matches: Vec<OutputMatch>,
    /// Where the next page starts (as `HistoryFilter::before`); none: done.
    pub next: Option<Id>,
    /// Operations and bytes of output read for this page.
    pub operations: u32,
    pub bytes: u64,
    /// An operation whose further matching lines, if any, this page left
    /// out (it filled the page).
    pub cut: Option<Id>,
}

/// A line of an operation's output that holds what was searched for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputMatch {
    pub op: Id,
    pub task: String,
    pub device: String,
    pub user: String,
    pub stream: crate::domain::Stream,
    /// Its line number within its stream.
    pub number: u64,
    /// When the chunk holding it was stored.
    pub time: crate::domain::Timestamp,
    /// The line, terminal escapes stripped, made printable.
    pub line: String,
}

/// A JIT grant with the operations that ran with its credential on its
/// device during the lease (none: the privilege was not used).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JitLease {
    pub grant: crate::domain::JitGrant,
    pub uses: Vec<Id>,
}

/// What became of one request of a batch decision: its new state, or why
/// it was not decided.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Decided {
    pub id: Id,
    pub outcome: Result<String, String>,
}

/// What `policy explain` asks: may `user` run `task` (on `devices`) at `at`?
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct ExplainSpec {
    /// The person judged; the caller when absent.
    pub user: Option<String>,
    pub task: String,
    /// A subset of the task's devices; empty means all of them.
    pub devices: Vec<String>,
    /// The moment judged; now when absent.
    pub at: Option<crate::domain::Timestamp>,
}

/// How every policy judged a request, most promising first, and what else
/// stands in its way.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Explanation {
    pub user: String,
    pub task: String,
    pub devices: Vec<String>,
    pub at: crate::domain::Timestamp,
    /// Whether the person may ask for tasks at all (`request-tasks` in
    /// the task's environment), and if not, why.
    pub permission: Result<(), String>,
    pub verdicts: Vec<crate::access::policy::Verdict>,
    /// A change freeze that holds the run then.
    pub freeze: Option<String>,
    /// Whether they are a Superuser (who needs no policy).
    pub superuser: bool,
}

/// An OS group Gatehouse uses, what it gives, and who is in it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupInUse {
    pub name: String,
    /// The roles it gives; the policies (and levels) that name it; whether
    /// its members are admitted without an import.
    pub roles: Vec<String>,
    pub policies: Vec<String>,
    pub admits: bool,
    /// Its members as the name service lists them, or why they cannot be read.
    pub members: Result<Vec<String>, String>,
}

/// What a person asks for when they connect to a device.
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct ConnectSpec {
    pub device: String,
    /// The credential to log in with; the device's own one when absent.
    pub credential: Option<String>,
    pub reason: Option<String>,
    pub justification: Option<String>,
    pub governance_id: Option<String>,
    /// A current TOTP code, where the policy requires MFA.
    pub totp: Option<String>,
    /// The client's terminal: its type and size.
    pub term: String,
    pub cols: u16,
    pub rows: u16,
    /// The change it is for: its code, and the command lines it expects.
    pub change: Option<crate::domain::ChangePlan>,
    /// How long it may last (under approval: the requested window).
    pub duration_secs: Option<u64>,
    /// Open at once under the policy's emergency access, flagged for review.
    pub emergency: bool,
    /// The approved session request to use (default: the newest one that
    /// matches).
    pub request: Option<Id>,
}

/// What a person asks to run.
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct RequestSpec {
    pub task: String,
    /// A subset of the task's devices; empty means all of them.
    pub devices: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub reason: Option<String>,
    pub justification: Option<String>,
    pub governance_id: Option<String>,
    /// When to start; now when absent.
    pub at: Option<crate::domain::Timestamp>,
    /// When the requested window ends; a day after its start when absent.
    pub until: Option<crate::domain::Timestamp>,
    /// Run at once under the policy's emergency access, without approval.
    pub emergency: bool,
    /// A current TOTP code, for emergency access where the policy requires MFA.
    pub totp: Option<String>,
    /// Authorise the task's schedule instead of running it once: its runs
    /// then happen at the schedule's times, as this request, until `until`.
    pub schedule: bool,
    /// The change it is for: its code, and the command lines it expects.
    pub change: Option<crate::domain::ChangePlan>,
    /// Filed for approval with a dry run of its playbook to go with it
    /// (refused where it would run at once).
    pub check: bool,
}

/// Which operations history shows.
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct HistoryFilter {
    pub task: Option<String>,
    pub user: Option<String>,
    pub device: Option<String>,
    pub state: Option<OpState>,
    pub since: Option<crate::domain::Timestamp>,
    /// Only operations older than this one (paging back).
    pub before: Option<Id>,
    /// Text in the task, device, requester, template or error (any case).
    pub text: Option<String>,
    pub limit: u32,
    /// Only operations whose stored output holds this text (any case,
    /// terminal escapes stripped).
    pub output: Option<String>,
}

/// What the engine answers.
/// On the wire by variant index: a new variant goes last and bumps
/// PROTOCOL_VERSION (tests/golden.rs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    Done,
    Whoami {
        login: String,
        superuser: bool,
        server_owner: String,
        /// Each role held, and where from: "own" or "group NAME".
        roles: Vec<(String, String)>,
    },
    Records(Vec<Record>),
    Imported {
        created: Vec<String>,
        updated: Vec<String>,
        unchanged: usize,
    },
    AuditVerified(Result<u64, AuditBreak>),
    AuditEvents(Vec<AuditEvent>),
    Requested {
        request: Id,
        operations: Vec<Operation>,
    },
    Operations(Vec<Operation>),
    Output(Vec<OutputChunk>),
    HostKeys(Vec<HostKey>),
    /// A request now waits for approval.
    Filed(Box<ExecutionRequest>),
    Requests(Vec<ExecutionRequest>),
    RoleWarnings(Vec<crate::access::analysis::RoleWarning>),
    /// A new second factor: the otpauth:// URI and single-use recovery codes.
    TotpEnrolled {
        uri: String,
        recovery_codes: Vec<String>,
    },
    Jit(Vec<JitLease>),
    Backup(crate::store::BackupSummary),
    Terms(Box<RequestTerms>),
    Schedules(Vec<super::schedules::ScheduleStatus>),
    Metrics(Box<super::metrics::Metrics>),
    /// A credential's password, revealed.
    Revealed(Revealed),
    CredentialStates(Vec<super::rotation::CredentialState>),
    /// A session, as it ended (the answer to `Connect`).
    Session(Box<crate::domain::SessionRecord>),
    Sessions(Vec<crate::domain::SessionRecord>),
    /// A recording's asciicast text.
    Recording(String),
    Groups(Vec<GroupInUse>),
    Explanation(Box<Explanation>),
    Decided(Vec<Decided>),
    RequestView(Box<RequestView>),
    Found(Box<SearchPage>),
    Cluster(Box<ClusterStatus>),
}

/// What a reveal brings: why, and, under a policy that names the
/// credential, what the policy asks (a governance id, a second factor, or
/// the approved request to use).
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct RevealSpec {
    pub name: String,
    pub reason: String,
    pub justification: String,
    pub governance_id: Option<String>,
    pub totp: Option<String>,
    /// An approved reveal request of this user's, to use.
    pub request: Option<Id>,
    /// The end of the window an approval would give (default 4 hours).
    pub until: Option<crate::domain::Timestamp>,
}

/// A revealed secret on its way to the person who asked: never in a
/// `Debug` print (responses are traced).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Revealed(pub String);

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revealed(..)")
    }
}

/// What the request form of a task shows and checks before asking.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct RequestTerms {
    pub task: String,
    pub description: String,
    pub devices: Vec<String>,
    /// The template's variables, with the values the task gives them.
    pub variables: Vec<crate::domain::Variable>,
    pub task_values: BTreeMap<String, String>,
    /// Enabled access reasons to choose from.
    pub reasons: Vec<String>,
    /// A Superuser's run needs no policy.
    pub superuser: bool,
    /// The policy that covers this user, task and devices now.
    pub policy: Option<String>,
    /// Why no policy covers it, when none does.
    pub refusal: Option<String>,
    pub requires_approval: bool,
    pub approval_levels: u8,
    pub requires_justification: bool,
    pub requires_governance_id: bool,
    pub requires_reason: bool,
    pub requires_mfa: bool,
    pub emergency_access: bool,
    /// The policy's access windows, as sentences.
    pub windows: Vec<String>,
    /// Whether the request must name the change it is for.
    pub requires_change: bool,
}

/// Something that happened, sent to every subscribed client.
/// On the wire by variant index: a new variant goes last and bumps
/// PROTOCOL_VERSION (tests/golden.rs).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Event {
    /// Records of this kind changed: `name` is the record's, or empty when
    /// several changed at once (an import).
    RecordChanged {
        kind: Kind,
        name: String,
    },
    AuditAppended {
        seq: u64,
    },
    OperationChanged(Box<Operation>),
    RequestChanged(Box<ExecutionRequest>),
    JitChanged(Box<crate::domain::JitGrant>),
    Output {
        id: Id,
        chunk: OutputChunk,
    },
    ShuttingDown,
    /// A session opened, or ended.
    SessionChanged(Box<crate::domain::SessionRecord>),
}

/// Why the engine refused or failed a command. Every message says what to do.
/// On the wire by variant index: a new variant goes last and bumps
/// PROTOCOL_VERSION (tests/golden.rs).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("not permitted: {0}")]
    Denied(String),
    #[error("no {kind} named '{name}'")]
    NotFound { kind: Kind, name: String },
    /// A record (or a request of a task) that is not valid: the field and,
    /// within it, the line and column where the UI can put its cursor.
    #[error("{kind} '{name}'{}: {}{}{message}", line_suffix(*line), field_prefix(field), position_prefix(at))]
    Invalid {
        kind: Kind,
        name: String,
        /// The line of the import file the record starts on (0: none).
        line: usize,
        /// The field at fault (`content`, `devices`, `variables.WHAT`…).
        field: Option<String>,
        /// Line and column within the field's text.
        at: Option<(usize, usize)>,
        message: String,
    },
    #[error("{kind} '{name}' is in use by {}; disable it instead, or change those first", used_by.join(", "))]
    InUse {
        kind: Kind,
        name: String,
        used_by: Vec<String>,
    },
    #[error("{0}")]
    Store(String),
    #[error("protocol: {0}")]
    Protocol(String),
    /// Too many wrong second-factor codes in a row: no code is checked
    /// until the lockout ends.
    #[error("not permitted: too many wrong TOTP codes for '{login}'; try again in {seconds} s")]
    MfaLocked { login: String, seconds: u64 },
    /// Refused for want of a permission, which it names.
    #[error("not permitted: {message}")]
    NeedsPermission {
        message: String,
        permission: crate::domain::Permission,
    },
    /// A value for a template variable that the run cannot take (it does
    /// not match the variable's pattern, or the template has no such variable).
    #[error("task '{task}': {message}")]
    Variable {
        task: String,
        variable: String,
        message: String,
    },
    /// The policy requires a TOTP code and none was given.
    #[error("not permitted: the policy requires MFA: give a current TOTP code (--totp)")]
    MfaRequired { login: String },
    /// The policy requires a TOTP code and the user has no second factor.
    #[error("not permitted: the policy requires MFA and '{login}' has no TOTP secret: run `gatehouse user totp-enroll {login}`")]
    MfaNotEnrolled { login: String },
    /// Something that is not a record is not there: a session, a recording.
    #[error("there is no {0}")]
    Missing(String),
    /// What was asked could not be done, for a reason that is neither a
    /// refusal nor a missing thing (a device that does not answer).
    #[error("{0}")]
    Failed(String),
}

fn field_prefix(field: &Option<String>) -> String {
    match field {
        Some(f) => format!("field `{f}`: "),
        None => String::new(),
    }
}

fn position_prefix(at: &Option<(usize, usize)>) -> String {
    match at {
        Some((line, column)) => format!("line {line}, column {column}: "),
        None => String::new(),
    }
}

fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" (line {line})")
    }
}

impl From<crate::store::StoreError> for EngineError {
    fn from(e: crate::store::StoreError) -> Self {
        EngineError::Store(e.to_string())
    }
}
