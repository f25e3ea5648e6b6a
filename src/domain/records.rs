//! The configuration records Gatehouse keeps, one struct per kind.

use super::{HostKey, Kind, Meta, PasswordPolicy, SshOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A secret encrypted at rest: nonce followed by ciphertext. Only the store's
/// cipher can open it. An empty value stands for "set, not shown", which is
/// what clients receive instead of the ciphertext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Sealed(pub Vec<u8>);

impl Sealed {
    /// The marker sent to clients in place of a stored secret.
    pub fn withheld() -> Sealed {
        Sealed(Vec::new())
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Environment {
    pub meta: Meta,
    /// The SSH algorithms its devices' connections offer, unless a device
    /// says otherwise.
    pub ssh_options: SshOptions,
    /// What generated passwords of its credentials are made of, unless a
    /// credential says otherwise.
    pub password_policy: Option<PasswordPolicy>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct System {
    pub meta: Meta,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Device {
    pub meta: Meta,
    pub address: String,
    pub port: u16,
    /// What runs there: Linux, MySQL, a network OS…
    pub product: String,
    pub tags: Vec<String>,
    pub environment: String,
    pub system: String,
    /// The host keys the device may present (as `known_hosts` lists a
    /// host's keys); none means it was never trusted.
    pub host_keys: Vec<HostKey>,
    /// The SSH algorithms its connections offer, over its environment's.
    pub ssh_options: SshOptions,
    /// The device connections to this one go through (OpenSSH's
    /// `ProxyJump`), with that device's own host key and credential.
    pub via: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Credential {
    pub meta: Meta,
    pub username: String,
    /// The device this credential belongs to, when it belongs to one.
    pub device: Option<String>,
    pub password: Option<Sealed>,
    pub private_key: Option<Sealed>,
    pub passphrase: Option<Sealed>,
    /// An OpenSSH user certificate for the private key (the text of an
    /// `id_*-cert.pub` file); public, so not sealed.
    pub certificate: Option<String>,
    /// Just-in-time elevation: the template that grants the privilege and
    /// the one that takes it back at expiry.
    pub jit_grant_template: Option<String>,
    pub jit_revoke_template: Option<String>,
    /// The password-change template that sets a new password on its devices.
    pub change_template: Option<String>,
    /// The credential that logs in to run the change (root running
    /// `chpasswd`); none: the credential changes its own (`passwd`).
    pub change_with: Option<String>,
    /// The credential that sets a new password when the stored one no
    /// longer works (reconcile).
    pub reconcile_with: Option<String>,
    /// The template a reconcile runs as `reconcile_with` (default: the
    /// change template).
    pub reconcile_template: Option<String>,
    /// Credentials whose change follows a verified change of this one.
    pub children: Vec<String>,
    /// What its generated passwords are made of (none: its environment's,
    /// else the default).
    pub password_policy: Option<PasswordPolicy>,
    /// Its maximum age: a change starts when the password is this old.
    pub rotate_every_secs: Option<u64>,
    /// A change starts after someone was shown the password.
    pub rotate_after_view: bool,
    /// A change starts after a run that logged in with it ended (all of
    /// one request's operations; for a JIT grant, after its revoke).
    pub rotate_after_use: bool,
    /// How often Gatehouse logs in with the stored password to check it
    /// still works (marking the credential out of sync when not).
    pub verify_every_secs: Option<u64>,
    /// How long a revealed password stays valid before the change
    /// `rotate_after_view` asks for (none: at once).
    pub checkout_secs: Option<u64>,
    /// When maximum-age changes may start (the server's local time; a
    /// window that ends before it starts runs over midnight).
    pub rotation_window: Option<DailyWindow>,
}

/// A daily stretch of time, `from` to `to` as `HH:MM`; `to` before `from`
/// runs over midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DailyWindow {
    pub from: String,
    pub to: String,
}

impl DailyWindow {
    /// The window's ends as minutes of the day; an error names the field.
    pub fn minutes(&self) -> Result<(u32, u32), (&'static str, String)> {
        let parse = |field: &'static str, text: &str| -> Result<u32, (&'static str, String)> {
            let bad = || (field, format!("'{text}' is not a time like 22:00"));
            let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let from = parse("from", &self.from)?;
        let to = parse("to", &self.to)?;
        if from == to {
            return Err(("to", "the window is empty: `to` equals `from`".into()));
        }
        Ok((from, to))
    }

    /// Whether a minute of the day is inside the window.
    pub fn contains(&self, minute: u32) -> bool {
        match self.minutes() {
            Ok((from, to)) if from < to => (from..to).contains(&minute),
            Ok((from, to)) => minute >= from || minute < to,
            Err(_) => false,
        }
    }
}

/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonType {
    Incident,
    Change,
    #[default]
    Maintenance,
    Emergency,
    Other,
}

impl ReasonType {
    pub const ALL: [ReasonType; 5] = [
        ReasonType::Incident,
        ReasonType::Change,
        ReasonType::Maintenance,
        ReasonType::Emergency,
        ReasonType::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonType::Incident => "incident",
            ReasonType::Change => "change",
            ReasonType::Maintenance => "maintenance",
            ReasonType::Emergency => "emergency",
            ReasonType::Other => "other",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Reason {
    pub meta: Meta,
    pub reason_type: ReasonType,
}

/// How a template's content is run.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Executor {
    /// An interactive shell on a PTY, driven by expect/exec lines.
    #[default]
    SshExpect,
    /// A shell script on an exec channel; the exit status decides.
    SshScript,
    /// A shell script on the Gatehouse host itself.
    Local,
    /// An Ansible playbook, run by the jump host's ansible-playbook
    /// against the task's devices.
    AnsiblePlaybook,
}

impl Executor {
    /// In the order forms offer them (not the stored order).
    pub const ALL: [Executor; 4] = [
        Executor::SshScript,
        Executor::SshExpect,
        Executor::Local,
        Executor::AnsiblePlaybook,
    ];
    /// Their names, in the order of [`Executor::ALL`].
    pub const NAMES: [&'static str; 4] = ["ssh-script", "ssh-expect", "local", "ansible-playbook"];
    pub fn as_str(self) -> &'static str {
        match self {
            Executor::SshScript => Self::NAMES[0],
            Executor::SshExpect => Self::NAMES[1],
            Executor::Local => Self::NAMES[2],
            Executor::AnsiblePlaybook => Self::NAMES[3],
        }
    }
    /// The executor of a name, if there is one by that name.
    pub fn parse(name: &str) -> Option<Executor> {
        Executor::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// What a template is for.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionType {
    #[default]
    Task,
    PasswordChange,
    JitGrant,
    JitRevoke,
}

impl ExecutionType {
    pub const ALL: [ExecutionType; 4] = [
        ExecutionType::Task,
        ExecutionType::PasswordChange,
        ExecutionType::JitGrant,
        ExecutionType::JitRevoke,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionType::Task => "task",
            ExecutionType::PasswordChange => "password-change",
            ExecutionType::JitGrant => "jit-grant",
            ExecutionType::JitRevoke => "jit-revoke",
        }
    }
}

/// A value a template asks for, with a pattern every supplied value must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Variable {
    pub name: String,
    pub description: String,
    pub default: Option<String>,
    /// A regular expression the whole value must match; empty means the safe default.
    pub pattern: String,
}

/// The pattern a variable gets when it declares none: no shell syntax can pass it.
pub const DEFAULT_VARIABLE_PATTERN: &str = r"[A-Za-z0-9._:/@-]*";

impl Variable {
    /// The pattern in force for this variable.
    pub fn effective_pattern(&self) -> &str {
        if self.pattern.is_empty() {
            DEFAULT_VARIABLE_PATTERN
        } else {
            &self.pattern
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Template {
    pub meta: Meta,
    pub description: String,
    pub executor: Executor,
    pub execution_type: ExecutionType,
    pub content: String,
    pub variables: Vec<Variable>,
    /// ssh-script: the program that reads the script (`sh` when blank,
    /// unless the script starts with a `#!` line).
    pub interpreter: String,
    /// ssh-script: run on a PTY (for `sudo` with `requiretty`); output
    /// then comes as one stream.
    pub pty: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Task {
    pub meta: Meta,
    pub description: String,
    pub template: String,
    pub environment: String,
    pub system: String,
    pub devices: Vec<String>,
    pub credential: String,
    /// Values for the template's variables that this task fixes or defaults.
    pub variables: BTreeMap<String, String>,
    /// A cron expression (seconds field first) for scheduled runs.
    pub schedule: Option<String>,
    pub timeout_secs: u64,
    /// Up to `retries + 1` attempts are made. Failures to connect are
    /// always retried; a failed run only with `retry_on_failure`.
    pub retries: u32,
    pub retry_on_failure: bool,
    /// Whether running the task again after an interrupted run is safe:
    /// a run cut off after it started is then retried like a failure to connect.
    pub idempotent: bool,
    /// How many devices run at once.
    pub parallelism: u32,
    /// Tasks started on a device after this one succeeded there.
    pub children: Vec<String>,
}

pub const DEFAULT_TASK_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_TASK_PARALLELISM: u32 = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct User {
    /// `meta.name` is the login: the OS account on the jump host.
    pub meta: Meta,
    pub display_name: String,
    pub roles: Vec<String>,
    pub totp_secret: Option<Sealed>,
}

/// Something a role may permit.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    ViewEnvironments,
    ManageEnvironments,
    ViewDevices,
    ManageDevices,
    ManageCredentials,
    ViewCredentialSecrets,
    ViewTemplates,
    ManageTemplates,
    ViewTasks,
    ManageTasks,
    RequestTasks,
    ManagePolicies,
    ViewExecutions,
    ViewExecutionDebug,
    ViewAudit,
    ExportAudit,
    ManageUsers,
    /// Running commands on the Gatehouse host itself (`executor = "local"`):
    /// writing such a template, a task that uses one, or requesting it.
    /// Stored by index: new actions go last.
    RunLocal,
    /// Opening a privileged session on a device (under a policy that
    /// covers sessions, unless a Superuser).
    OpenSessions,
    /// Watching running sessions live and ending them.
    MonitorSessions,
    /// Seeing what a session's user typed (its output is seen with
    /// view-executions).
    ViewSessionInput,
    /// Asking how the policies judge someone else (`policy explain
    /// --user`); everyone may ask it of themselves.
    ViewPolicies,
}

impl Permission {
    /// Whether the action concerns records that live in an environment, so
    /// that a grant of it may be scoped to some environments.
    pub fn is_scoped_by_environment(self) -> bool {
        matches!(
            self,
            Permission::ViewDevices
                | Permission::ManageDevices
                | Permission::ViewTasks
                | Permission::ManageTasks
                | Permission::RequestTasks
                | Permission::ViewExecutions
                | Permission::ViewExecutionDebug
                | Permission::ViewCredentialSecrets
                | Permission::OpenSessions
                | Permission::MonitorSessions
                | Permission::ViewSessionInput
        )
    }

    pub const ALL: [Permission; 22] = [
        Permission::ViewEnvironments,
        Permission::ManageEnvironments,
        Permission::ViewDevices,
        Permission::ManageDevices,
        Permission::ManageCredentials,
        Permission::ViewCredentialSecrets,
        Permission::ViewTemplates,
        Permission::ManageTemplates,
        Permission::ViewTasks,
        Permission::ManageTasks,
        Permission::RequestTasks,
        Permission::ManagePolicies,
        Permission::ViewExecutions,
        Permission::ViewExecutionDebug,
        Permission::ViewAudit,
        Permission::ExportAudit,
        Permission::ManageUsers,
        Permission::RunLocal,
        Permission::OpenSessions,
        Permission::MonitorSessions,
        Permission::ViewSessionInput,
        Permission::ViewPolicies,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewEnvironments => "view-environments",
            Permission::ManageEnvironments => "manage-environments",
            Permission::ViewDevices => "view-devices",
            Permission::ManageDevices => "manage-devices",
            Permission::ManageCredentials => "manage-credentials",
            Permission::ViewCredentialSecrets => "view-credential-secrets",
            Permission::ViewTemplates => "view-templates",
            Permission::ManageTemplates => "manage-templates",
            Permission::ViewTasks => "view-tasks",
            Permission::ManageTasks => "manage-tasks",
            Permission::RequestTasks => "request-tasks",
            Permission::ManagePolicies => "manage-policies",
            Permission::ViewExecutions => "view-executions",
            Permission::ViewExecutionDebug => "view-execution-debug",
            Permission::ViewAudit => "view-audit",
            Permission::ExportAudit => "export-audit",
            Permission::ManageUsers => "manage-users",
            Permission::RunLocal => "run-local",
            Permission::OpenSessions => "open-sessions",
            Permission::MonitorSessions => "monitor-sessions",
            Permission::ViewSessionInput => "view-session-input",
            Permission::ViewPolicies => "view-policies",
        }
    }

    pub fn parse(text: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// An action a role permits, limited to some environments when the list is not empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub action: Permission,
    pub environments: Vec<String>,
}

/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessLevel {
    Read,
    Run,
    Write,
    Delete,
}

/// Access to one named task, template or device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceGrant {
    pub kind: Kind,
    pub name: String,
    pub levels: Vec<AccessLevel>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Role {
    pub meta: Meta,
    pub description: String,
    /// Built-in roles come with every store; Superuser among them cannot change.
    pub builtin: bool,
    pub grants: Vec<Grant>,
    pub resources: Vec<ResourceGrant>,
    /// OS groups (through the system's name service) whose members hold
    /// this role, as well as the users who list it.
    pub os_groups: Vec<String>,
}

pub const SUPERUSER_ROLE: &str = "Superuser";

/// Who approves at which level; level 1 decides first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approver {
    pub user: String,
    pub level: u8,
}

/// When a policy lets its users request: weekdays (1 = Monday … 7 = Sunday),
/// hours as minutes since midnight, and an optional range of dates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub days: Vec<u8>,
    pub from_minute: u16,
    pub to_minute: u16,
    pub start_date: Option<chrono::NaiveDate>,
    pub end_date: Option<chrono::NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Policy {
    pub meta: Meta,
    pub description: String,
    pub requires_justification: bool,
    pub requires_governance_id: bool,
    pub requires_approval: bool,
    pub requires_mfa: bool,
    pub requires_reason: bool,
    pub emergency_access: bool,
    pub devices: Vec<String>,
    pub environments: Vec<String>,
    pub systems: Vec<String>,
    pub users: Vec<String>,
    pub approvers: Vec<Approver>,
    pub windows: Vec<Window>,
    /// What it covers: tasks, sessions, reveals of passwords.
    pub covers: Covers,
    /// The credentials it covers (a task's, a session's, the one revealed);
    /// none: any.
    pub credentials: Vec<String>,
    /// A session or request must name the change it is for (a change code).
    pub requires_change: bool,
    /// Command lines a session may not send (`*`/`?` patterns): a guard
    /// rail, not a control (a shell has many ways around it).
    pub deny_commands: Vec<String>,
    /// Sessions only on devices of these products (`*`/`?` patterns).
    pub products: Vec<String>,
    /// Sessions only on devices carrying one of these tags.
    pub device_tags: Vec<String>,
    /// Sessions only as credentials whose username matches one of these
    /// (`*`/`?` patterns: `"svc-*"`).
    pub usernames: Vec<String>,
    /// The IANA time zone its windows are read in (`Europe/Berlin`); the
    /// server's own when absent.
    pub timezone: Option<String>,
    /// Every approval under it must say why (rejections always must).
    pub requires_approval_comment: bool,
}

/// What a policy covers. A credential's reveals, once any enabled policy
/// that covers reveals matches it, happen only under such a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covers {
    pub tasks: bool,
    pub sessions: bool,
    pub reveals: bool,
}

impl Default for Covers {
    /// Tasks, as every policy did before sessions and reveals.
    fn default() -> Covers {
        Covers {
            tasks: true,
            sessions: false,
            reveals: false,
        }
    }
}

impl Covers {
    /// Its names, as the record file writes them.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.tasks, "tasks"),
            (self.sessions, "sessions"),
            (self.reveals, "reveals"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Any configuration record.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Environment(Environment),
    System(System),
    Device(Device),
    Credential(Credential),
    Reason(Reason),
    Template(Template),
    Task(Task),
    User(User),
    Role(Role),
    Policy(Policy),
    Freeze(super::Freeze),
}

macro_rules! each_record {
    ($value:expr, $r:ident => $body:expr) => {
        match $value {
            Record::Environment($r) => $body,
            Record::System($r) => $body,
            Record::Device($r) => $body,
            Record::Credential($r) => $body,
            Record::Reason($r) => $body,
            Record::Template($r) => $body,
            Record::Task($r) => $body,
            Record::User($r) => $body,
            Record::Role($r) => $body,
            Record::Policy($r) => $body,
            Record::Freeze($r) => $body,
        }
    };
}

/// A reference from one record to another, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub field: &'static str,
    pub kind: Kind,
    pub name: String,
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self {
            Record::Environment(_) => Kind::Environment,
            Record::System(_) => Kind::System,
            Record::Device(_) => Kind::Device,
            Record::Credential(_) => Kind::Credential,
            Record::Reason(_) => Kind::Reason,
            Record::Template(_) => Kind::Template,
            Record::Task(_) => Kind::Task,
            Record::User(_) => Kind::User,
            Record::Role(_) => Kind::Role,
            Record::Policy(_) => Kind::Policy,
            Record::Freeze(_) => Kind::Freeze,
        }
    }

    pub fn meta(&self) -> &Meta {
        each_record!(self, r => &r.meta)
    }

    pub fn meta_mut(&mut self) -> &mut Meta {
        each_record!(self, r => &mut r.meta)
    }

    pub fn name(&self) -> &str {
        &self.meta().name
    }

    /// Every other record this one names, with the field that names it.
    pub fn references(&self) -> Vec<Reference> {
        fn one(field: &'static str, kind: Kind, name: &str) -> Reference {
            Reference {
                field,
                kind,
                name: name.to_string(),
            }
        }
        fn many<'a>(
            field: &'static str,
            kind: Kind,
            names: impl IntoIterator<Item = &'a String>,
        ) -> Vec<Reference> {
            names.into_iter().map(|n| one(field, kind, n)).collect()
        }
        match self {
            Record::Environment(_)
            | Record::System(_)
            | Record::Reason(_)
            | Record::Template(_) => Vec::new(),
            Record::Device(d) => {
                let mut refs = vec![
                    one("environment", Kind::Environment, &d.environment),
                    one("system", Kind::System, &d.system),
                ];
                refs.extend(many("via", Kind::Device, d.via.iter()));
                refs
            }
            Record::Credential(c) => {
                let mut refs = many("device", Kind::Device, c.device.iter());
                refs.extend(many(
                    "jit_grant_template",
                    Kind::Template,
                    c.jit_grant_template.iter(),
                ));
                refs.extend(many(
                    "jit_revoke_template",
                    Kind::Template,
                    c.jit_revoke_template.iter(),
                ));
                refs.extend(many(
                    "change_template",
                    Kind::Template,
                    c.change_template.iter(),
                ));
                refs.extend(many("change_with", Kind::Credential, c.change_with.iter()));
                refs.extend(many(
                    "reconcile_with",
                    Kind::Credential,
                    c.reconcile_with.iter(),
                ));
                refs.extend(many(
                    "reconcile_template",
                    Kind::Template,
                    c.reconcile_template.iter(),
                ));
                refs.extend(many("children", Kind::Credential, &c.children));
                refs
            }
            Record::Task(t) => {
                let mut refs = vec![
                    one("template", Kind::Template, &t.template),
                    one("environment", Kind::Environment, &t.environment),
                    one("system", Kind::System, &t.system),
                ];
                if !t.credential.is_empty() {
                    refs.push(one("credential", Kind::Credential, &t.credential));
                }
                refs.extend(many("devices", Kind::Device, &t.devices));
                refs.extend(many("children", Kind::Task, &t.children));
                refs
            }
            Record::User(u) => many("roles", Kind::Role, &u.roles),
            Record::Freeze(f) => many("environments", Kind::Environment, &f.environments),
            Record::Role(r) => {
                let mut refs: Vec<Reference> = r
                    .grants
                    .iter()
                    .flat_map(|g| many("grants.environments", Kind::Environment, &g.environments))
                    .collect();
                refs.extend(
                    r.resources
                        .iter()
                        .map(|g| one("resources.name", g.kind, &g.name)),
                );
                refs
            }
            Record::Policy(p) => {
                let mut refs = many("devices", Kind::Device, &p.devices);
                refs.extend(many("environments", Kind::Environment, &p.environments));
                refs.extend(many("systems", Kind::System, &p.systems));
                // `@group` names an OS group, not a record.
                refs.extend(many(
                    "users",
                    Kind::User,
                    p.users.iter().filter(|u| !u.starts_with('@')),
                ));
                refs.extend(many("credentials", Kind::Credential, &p.credentials));
                refs.extend(
                    p.approvers
                        .iter()
                        .filter(|a| !a.user.starts_with('@'))
                        .map(|a| one("approvers.user", Kind::User, &a.user)),
                );
                refs
            }
        }
    }

    /// The same record with every secret replaced by the "set, not shown" marker.
    pub fn withhold_secrets(mut self) -> Record {
        fn withhold(slot: &mut Option<Sealed>) {
            if slot.is_some() {
                *slot = Some(Sealed::withheld());
            }
        }
        match &mut self {
            Record::Credential(c) => {
                withhold(&mut c.password);
                withhold(&mut c.private_key);
                withhold(&mut c.passphrase);
            }
            Record::User(u) => withhold(&mut u.totp_secret),
            _ => {}
        }
        self
    }

    /// One line that sums the record up in lists.
    pub fn summary(&self) -> String {
        match self {
            Record::Environment(_) | Record::System(_) => String::new(),
            Record::Device(d) => format!(
                "{}:{}  {}{}  {}/{}  {}",
                d.address,
                d.port,
                d.product,
                if d.tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", d.tags.join(", "))
                },
                d.environment,
                d.system,
                match d.host_keys.as_slice() {
                    [] => "host key not pinned".to_string(),
                    [one] => one.fingerprint(),
                    [first, more @ ..] =>
                        format!("{} and {} more", first.fingerprint(), more.len()),
                }
            ),
            Record::Credential(c) => format!(
                "{}{}  {}",
                c.username,
                c.device
                    .as_ref()
                    .map(|d| format!("@{d}"))
                    .unwrap_or_default(),
                match (&c.password, &c.private_key) {
                    (Some(_), Some(_)) => "password set, private key set",
                    (Some(_), None) => "password set",
                    (None, Some(_)) => "private key set",
                    (None, None) => "no secret",
                }
            ),
            Record::Reason(r) => r.reason_type.as_str().to_string(),
            Record::Template(t) => format!(
                "{}  {}  rev {}  {} variable(s)",
                t.executor.as_str(),
                t.execution_type.as_str(),
                t.meta.revision,
                t.variables.len()
            ),
            Record::Task(t) => format!(
                "{} on {} device(s)  {}/{}{}",
                t.template,
                t.devices.len(),
                t.environment,
                t.system,
                t.schedule
                    .as_ref()
                    .map(|s| format!("  schedule {s}"))
                    .unwrap_or_default()
            ),
            Record::User(u) => format!("{}  [{}]", u.display_name, u.roles.join(", ")),
            Record::Role(r) => format!(
                "{}{} grant(s), {} resource grant(s)",
                if r.builtin { "built-in, " } else { "" },
                r.grants.len(),
                r.resources.len()
            ),
            Record::Policy(p) => format!(
                "{}{} user(s), {} approver(s){}{}",
                if p.covers == Covers::default() {
                    String::new()
                } else {
                    format!("{}; ", p.covers.names().join(", "))
                },
                p.users.len(),
                p.approvers.len(),
                if p.requires_approval {
                    ", approval"
                } else {
                    ""
                },
                if p.emergency_access {
                    ", emergency"
                } else {
                    ""
                }
            ),
            Record::Freeze(f) => format!(
                "{} → {} {}  {}",
                f.from.format("%Y-%m-%d %H:%M"),
                f.to.format("%Y-%m-%d %H:%M"),
                f.timezone,
                if f.environments.is_empty() {
                    "every environment".to_string()
                } else {
                    f.environments.join(", ")
                }
            ),
        }
    }
}
