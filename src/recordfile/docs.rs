//! One document struct per record kind, as the TOML file spells it, and the
//! conversions to and from records.

use super::{line_of, RecordsFileError};
use crate::domain::*;
use crate::engine::{ImportItem, PlainSecrets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn tasks_only() -> Vec<String> {
    vec!["tasks".to_string()]
}

fn is_tasks_only(v: &[String]) -> bool {
    v == ["tasks"]
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The whole file. Each list holds the records of one kind.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<Spanned<EnvironmentDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Spanned<NamedDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<Spanned<ReasonDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device: Vec<Spanned<DeviceDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential: Vec<Spanned<CredentialDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template: Vec<Spanned<TemplateDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task: Vec<Spanned<TaskDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role: Vec<Spanned<RoleDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<Spanned<UserDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<Spanned<PolicyDoc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<Spanned<FreezeDoc>>,
}

/// A change freeze: `from` and `to` are wall-clock times in `timezone`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub from: String,
    pub to: String,
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedDoc {
    pub name: String,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentDoc {
    pub name: String,
    /// What its devices' SSH connections offer, unless a device says otherwise.
    #[serde(default, skip_serializing_if = "SshOptionsDoc::is_empty")]
    pub ssh_options: SshOptionsDoc,
    /// Its credentials' password policy, unless a credential says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<PasswordPolicyDoc>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// Algorithm lists in OpenSSH's syntax (`+a,b`, `-a,b`, `^a,b` or a list).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshOptionsDoc {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kex: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ciphers: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub macs: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_key_algorithms: String,
}

impl SshOptionsDoc {
    fn is_empty(&self) -> bool {
        self.kex.is_empty()
            && self.ciphers.is_empty()
            && self.macs.is_empty()
            && self.host_key_algorithms.is_empty()
    }
}

impl From<SshOptionsDoc> for SshOptions {
    fn from(d: SshOptionsDoc) -> SshOptions {
        SshOptions {
            kex: d.kex,
            ciphers: d.ciphers,
            macs: d.macs,
            host_key_algorithms: d.host_key_algorithms,
        }
    }
}

impl From<&SshOptions> for SshOptionsDoc {
    fn from(o: &SshOptions) -> SshOptionsDoc {
        SshOptionsDoc {
            kex: o.kex.clone(),
            ciphers: o.ciphers.clone(),
            macs: o.macs.clone(),
            host_key_algorithms: o.host_key_algorithms.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonDoc {
    pub name: String,
    #[serde(rename = "type")]
    pub reason_type: ReasonType,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDoc {
    pub name: String,
    pub address: String,
    /// Read wide so that a number out of range is refused by name.
    #[serde(default = "default_port")]
    pub port: i64,
    #[serde(default)]
    pub product: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub environment: String,
    pub system: String,
    /// The pinned host keys, as `known_hosts` or `ssh-keyscan` gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_keys: Vec<String>,
    /// One pinned key (older files): the same as a one-key `host_keys`.
    #[serde(default, skip_serializing)]
    pub host_key: Option<String>,
    #[serde(default, skip_serializing_if = "SshOptionsDoc::is_empty")]
    pub ssh_options: SshOptionsDoc,
    /// The device to connect through (OpenSSH's ProxyJump).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

fn default_port() -> i64 {
    22
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDoc {
    pub name: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default, skip_serializing)]
    pub private_key_file: Option<String>,
    #[serde(default, skip_serializing)]
    pub passphrase: Option<String>,
    /// An OpenSSH user certificate for the private key (`id_*-cert.pub`).
    #[serde(default, skip_serializing)]
    pub certificate_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit_grant_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit_revoke_template: Option<String>,
    /// The password-change template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_template: Option<String>,
    /// The credential that logs in to run the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_with: Option<String>,
    /// The credential that sets a new password when the stored one fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_with: Option<String>,
    /// The template a reconcile runs (default: the change template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_template: Option<String>,
    /// Credentials changed after this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<PasswordPolicyDoc>,
    /// Maximum age: `30d`, `12h`, `90s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_every: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub rotate_after_view: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub rotate_after_use: bool,
    /// How often the stored password is checked by logging in: `1d`, `6h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_every: Option<String>,
    /// How long a revealed password stays before rotate_after_view changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<String>,
    /// When maximum-age changes may start: `{ from = "22:00", to = "06:00" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_window: Option<DailyWindowDoc>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// A password policy; what is left out keeps its default.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyDoc {
    #[serde(default = "default_password_length")]
    pub length: u32,
    #[serde(default = "yes")]
    pub lower: bool,
    #[serde(default = "yes")]
    pub upper: bool,
    #[serde(default = "yes")]
    pub digits: bool,
    #[serde(default = "yes")]
    pub symbols: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub avoid: String,
}

impl PasswordPolicyDoc {
    fn policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            length: self.length,
            lower: self.lower,
            upper: self.upper,
            digits: self.digits,
            symbols: self.symbols,
            avoid: self.avoid.clone(),
        }
    }

    fn of(p: &PasswordPolicy) -> PasswordPolicyDoc {
        PasswordPolicyDoc {
            length: p.length,
            lower: p.lower,
            upper: p.upper,
            digits: p.digits,
            symbols: p.symbols,
            avoid: p.avoid.clone(),
        }
    }
}

/// A daily window, `HH:MM` to `HH:MM`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyWindowDoc {
    pub from: String,
    pub to: String,
}

fn default_password_length() -> u32 {
    PasswordPolicy::default().length
}

impl std::fmt::Debug for CredentialDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialDoc")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pattern: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub executor: Executor,
    #[serde(default)]
    pub execution_type: ExecutionType,
    pub content: String,
    /// ssh-script: the program that reads the script (default `sh`, or
    /// the script's `#!` line).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interpreter: String,
    /// ssh-script: run on a PTY.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pty: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variable: Vec<VariableDoc>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub template: String,
    pub environment: String,
    pub system: String,
    pub devices: Vec<String>,
    /// None for a template that runs on the Gatehouse host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credential: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default)]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub retry_on_failure: bool,
    /// Running it again after an interrupted run is safe.
    #[serde(default, skip_serializing_if = "is_false")]
    pub idempotent: bool,
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

fn default_timeout() -> u64 {
    DEFAULT_TASK_TIMEOUT_SECS
}
fn default_parallelism() -> u32 {
    DEFAULT_TASK_PARALLELISM
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    pub login: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDoc {
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDoc {
    pub kind: String,
    pub name: String,
    pub levels: Vec<AccessLevel>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceDoc>,
    /// OS groups whose members hold the role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_groups: Vec<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverDoc {
    pub user: String,
    pub level: u8,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowDoc {
    /// Weekday names: mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<String>,
    /// "HH:MM".
    pub from: String,
    /// "HH:MM"; "24:00" is the end of the day.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_justification: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_governance_id: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_approval: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_mfa: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_reason: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub emergency_access: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub systems: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<ApproverDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window: Vec<WindowDoc>,
    /// "tasks", "sessions", "reveals"; default tasks.
    #[serde(default = "tasks_only", skip_serializing_if = "is_tasks_only")]
    pub covers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_change: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usernames: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_approval_comment: bool,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_minute(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

fn print_minute(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// The context of one record while it is converted: where it is, for errors.
struct At<'a> {
    kind: Kind,
    name: &'a str,
    line: usize,
}

impl At<'_> {
    fn error(&self, field: &str, message: impl std::fmt::Display) -> RecordsFileError {
        RecordsFileError {
            line: self.line,
            message: format!("{} '{}': field `{field}`: {message}", self.kind, self.name),
            field: Some((field.to_string(), message.to_string())),
        }
    }
}

fn meta(name: &str, enabled: bool) -> Meta {
    Meta {
        name: name.to_string(),
        enabled,
        ..Meta::default()
    }
}

impl RecordsFile {
    /// Converts the documents to import items, in dependency order.
    pub fn into_items(self, text: &str, base: &Path) -> Result<Vec<ImportItem>, RecordsFileError> {
        let mut items = Vec::new();
        let mut push = |record: Record, secrets: PlainSecrets, line: usize| {
            items.push(ImportItem {
                record,
                secrets,
                line,
            })
        };
        let line = |s: &std::ops::Range<usize>| line_of(text, s.start);
        for d in self.environment {
            let l = line(&d.span());
            let d = d.into_inner();
            push(
                Record::Environment(Environment {
                    meta: meta(&d.name, d.enabled),
                    ssh_options: d.ssh_options.into(),
                    password_policy: d.password_policy.as_ref().map(PasswordPolicyDoc::policy),
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.system {
            let l = line(&d.span());
            let d = d.into_inner();
            push(
                Record::System(System {
                    meta: meta(&d.name, d.enabled),
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.reason {
            let l = line(&d.span());
            let d = d.into_inner();
            push(
                Record::Reason(Reason {
                    meta: meta(&d.name, d.enabled),
                    reason_type: d.reason_type,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.device {
            let l = line(&d.span());
            let d = d.into_inner();
            let at = At {
                kind: Kind::Device,
                name: &d.name,
                line: l,
            };
            let mut host_keys = Vec::new();
            let listed = d.host_key.iter().map(|k| ("host_key", k));
            for (field, text) in listed.chain(d.host_keys.iter().map(|k| ("host_keys", k))) {
                let key = HostKey::parse(text).map_err(|e| at.error(field, e))?;
                if !host_keys.contains(&key) {
                    host_keys.push(key);
                }
            }
            push(
                Record::Device(Device {
                    meta: meta(&d.name, d.enabled),
                    address: d.address,
                    port: u16::try_from(d.port)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| {
                            at.error("port", format!("{} is not a port (1–65535)", d.port))
                        })?,
                    product: d.product,
                    tags: d.tags,
                    environment: d.environment,
                    system: d.system,
                    host_keys,
                    ssh_options: d.ssh_options.into(),
                    via: d.via,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.credential {
            let l = line(&d.span());
            let d = d.into_inner();
            let at = At {
                kind: Kind::Credential,
                name: &d.name,
                line: l,
            };
            let private_key = match &d.private_key_file {
                Some(path) => {
                    let full = base.join(path);
                    let text = std::fs::read_to_string(&full).map_err(|e| {
                        at.error(
                            "private_key_file",
                            format!("cannot read {}: {e}", full.display()),
                        )
                    })?;
                    if !text.contains("PRIVATE KEY") {
                        return Err(at.error(
                            "private_key_file",
                            format!("{} holds no private key", full.display()),
                        ));
                    }
                    Some(text)
                }
                None => None,
            };
            let certificate = match &d.certificate_file {
                Some(path) => {
                    let full = base.join(path);
                    let text = std::fs::read_to_string(&full).map_err(|e| {
                        at.error(
                            "certificate_file",
                            format!("cannot read {}: {e}", full.display()),
                        )
                    })?;
                    if !text.contains("-cert-v01@openssh.com") {
                        return Err(at.error(
                            "certificate_file",
                            format!(
                                "{} holds no OpenSSH certificate (an id_*-cert.pub file made by ssh-keygen -s)",
                                full.display()
                            ),
                        ));
                    }
                    Some(text.trim().to_string())
                }
                None => None,
            };
            let rotate_every_secs = d
                .rotate_every
                .as_deref()
                .map(crate::domain::when::parse_duration_ms)
                .transpose()
                .map_err(|e| at.error("rotate_every", e))?
                .map(|ms| (ms / 1000).max(1) as u64);
            let checkout_secs = d
                .checkout
                .as_deref()
                .map(crate::domain::when::parse_duration_ms)
                .transpose()
                .map_err(|e| at.error("checkout", e))?
                .map(|ms| (ms / 1000).max(1) as u64);
            let verify_every_secs = d
                .verify_every
                .as_deref()
                .map(crate::domain::when::parse_duration_ms)
                .transpose()
                .map_err(|e| at.error("verify_every", e))?
                .map(|ms| (ms / 1000).max(1) as u64);
            let secrets = PlainSecrets {
                password: d.password.clone(),
                private_key,
                passphrase: d.passphrase.clone(),
                totp_secret: None,
            };
            push(
                Record::Credential(Credential {
                    meta: meta(&d.name, d.enabled),
                    username: d.username.clone(),
                    device: d.device.clone(),
                    password: None,
                    private_key: None,
                    passphrase: None,
                    certificate,
                    jit_grant_template: d.jit_grant_template.clone(),
                    jit_revoke_template: d.jit_revoke_template.clone(),
                    change_template: d.change_template.clone(),
                    change_with: d.change_with.clone(),
                    reconcile_with: d.reconcile_with.clone(),
                    reconcile_template: d.reconcile_template.clone(),
                    children: d.children.clone(),
                    password_policy: d.password_policy.as_ref().map(PasswordPolicyDoc::policy),
                    rotate_every_secs,
                    rotate_after_view: d.rotate_after_view,
                    rotate_after_use: d.rotate_after_use,
                    verify_every_secs,
                    checkout_secs,
                    rotation_window: d.rotation_window.as_ref().map(|w| DailyWindow {
                        from: w.from.clone(),
                        to: w.to.clone(),
                    }),
                }),
                secrets,
                l,
            );
        }
        for d in self.template {
            let l = line(&d.span());
            let d = d.into_inner();
            push(
                Record::Template(Template {
                    meta: meta(&d.name, d.enabled),
                    description: d.description,
                    executor: d.executor,
                    execution_type: d.execution_type,
                    content: d.content,
                    interpreter: d.interpreter,
                    pty: d.pty,
                    variables: d
                        .variable
                        .into_iter()
                        .map(|v| Variable {
                            name: v.name,
                            description: v.description,
                            default: v.default,
                            pattern: v.pattern,
                        })
                        .collect(),
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.task {
            let l = line(&d.span());
            let d = d.into_inner();
            push(
                Record::Task(Task {
                    meta: meta(&d.name, d.enabled),
                    description: d.description,
                    template: d.template,
                    environment: d.environment,
                    system: d.system,
                    devices: d.devices,
                    credential: d.credential,
                    variables: d.variables,
                    schedule: d.schedule,
                    timeout_secs: d.timeout,
                    retries: d.retries,
                    retry_on_failure: d.retry_on_failure,
                    idempotent: d.idempotent,
                    parallelism: d.parallelism,
                    children: d.children,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.role {
            let l = line(&d.span());
            let d = d.into_inner();
            let at = At {
                kind: Kind::Role,
                name: &d.name,
                line: l,
            };
            let mut grants = Vec::new();
            for (i, g) in d.grants.into_iter().enumerate() {
                let action = Permission::parse(&g.action).ok_or_else(|| {
                    at.error(
                        &format!("grants[{i}].action"),
                        format!(
                            "unknown action '{}'; one of {}",
                            g.action,
                            Permission::ALL.map(|a| a.as_str()).join(", ")
                        ),
                    )
                })?;
                grants.push(Grant {
                    action,
                    environments: g.environments,
                });
            }
            let mut resources = Vec::new();
            for (i, r) in d.resources.into_iter().enumerate() {
                let kind = Kind::parse(&r.kind).ok_or_else(|| {
                    at.error(
                        &format!("resources[{i}].kind"),
                        "must be task, template or device",
                    )
                })?;
                resources.push(ResourceGrant {
                    kind,
                    name: r.name,
                    levels: r.levels,
                });
            }
            push(
                Record::Role(Role {
                    meta: meta(&d.name, d.enabled),
                    description: d.description,
                    builtin: false,
                    grants,
                    resources,
                    os_groups: d.os_groups,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.user {
            let l = line(&d.span());
            let d = d.into_inner();
            push(
                Record::User(User {
                    meta: meta(&d.login, d.enabled),
                    display_name: d.display_name,
                    roles: d.roles,
                    totp_secret: None,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.policy {
            let l = line(&d.span());
            let d = d.into_inner();
            let at = At {
                kind: Kind::Policy,
                name: &d.name,
                line: l,
            };
            let mut windows = Vec::new();
            for (i, w) in d.window.iter().enumerate() {
                let mut days = Vec::new();
                for day in &w.days {
                    let n = DAYS
                        .iter()
                        .position(|d| day.to_ascii_lowercase().starts_with(d))
                        .ok_or_else(|| {
                            at.error(
                                &format!("window[{i}].days"),
                                format!("'{day}' is not a weekday (mon … sun)"),
                            )
                        })?;
                    days.push(n as u8 + 1);
                }
                let from = parse_minute(&w.from).ok_or_else(|| {
                    at.error(
                        &format!("window[{i}].from"),
                        format!("'{}' is not a time HH:MM", w.from),
                    )
                })?;
                let to = parse_minute(&w.to).ok_or_else(|| {
                    at.error(
                        &format!("window[{i}].to"),
                        format!("'{}' is not a time HH:MM", w.to),
                    )
                })?;
                let date = |field: &str, v: &Option<String>| {
                    v.as_deref()
                        .map(|s| {
                            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                                at.error(
                                    &format!("window[{i}].{field}"),
                                    format!("'{s}' is not a date YYYY-MM-DD"),
                                )
                            })
                        })
                        .transpose()
                };
                windows.push(Window {
                    days,
                    from_minute: from,
                    to_minute: to,
                    start_date: date("start_date", &w.start_date)?,
                    end_date: date("end_date", &w.end_date)?,
                });
            }
            let mut covers = Covers {
                tasks: false,
                sessions: false,
                reveals: false,
            };
            for (i, word) in d.covers.iter().enumerate() {
                match word.as_str() {
                    "tasks" => covers.tasks = true,
                    "sessions" => covers.sessions = true,
                    "reveals" => covers.reveals = true,
                    other => {
                        return Err(at.error(
                            &format!("covers[{i}]"),
                            format!("'{other}' is not one of tasks, sessions, reveals"),
                        ))
                    }
                }
            }
            push(
                Record::Policy(Policy {
                    meta: meta(&d.name, d.enabled),
                    description: d.description,
                    requires_justification: d.requires_justification,
                    requires_governance_id: d.requires_governance_id,
                    requires_approval: d.requires_approval,
                    requires_mfa: d.requires_mfa,
                    requires_reason: d.requires_reason,
                    emergency_access: d.emergency_access,
                    devices: d.devices,
                    environments: d.environments,
                    systems: d.systems,
                    users: d.users,
                    approvers: d
                        .approvers
                        .into_iter()
                        .map(|a| Approver {
                            user: a.user,
                            level: a.level,
                        })
                        .collect(),
                    windows,
                    covers,
                    credentials: d.credentials,
                    requires_change: d.requires_change,
                    deny_commands: d.deny_commands,
                    products: d.products,
                    device_tags: d.device_tags,
                    usernames: d.usernames,
                    timezone: d.timezone,
                    requires_approval_comment: d.requires_approval_comment,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        for d in self.freeze {
            let l = line(&d.span());
            let d = d.into_inner();
            let at = At {
                kind: Kind::Freeze,
                name: &d.name,
                line: l,
            };
            let from = parse_wall_clock(&d.from).map_err(|e| at.error("from", e))?;
            let to = parse_wall_clock(&d.to).map_err(|e| at.error("to", e))?;
            push(
                Record::Freeze(Freeze {
                    meta: meta(&d.name, d.enabled),
                    reason: d.reason,
                    from,
                    to,
                    timezone: d.timezone,
                    environments: d.environments,
                }),
                PlainSecrets::default(),
                l,
            );
        }
        Ok(items)
    }

    /// The documents for records, for export.
    pub fn from_records(records: &[Record]) -> RecordsFile {
        let mut file = RecordsFile::default();
        fn span<T>(v: T) -> Spanned<T> {
            Spanned::new(0..0, v)
        }
        for record in records {
            let m = record.meta();
            match record {
                Record::Environment(e) => file.environment.push(span(EnvironmentDoc {
                    name: m.name.clone(),
                    ssh_options: (&e.ssh_options).into(),
                    password_policy: e.password_policy.as_ref().map(PasswordPolicyDoc::of),
                    enabled: m.enabled,
                })),
                Record::System(_) => file.system.push(span(NamedDoc {
                    name: m.name.clone(),
                    enabled: m.enabled,
                })),
                Record::Reason(r) => file.reason.push(span(ReasonDoc {
                    name: m.name.clone(),
                    reason_type: r.reason_type,
                    enabled: m.enabled,
                })),
                Record::Device(d) => file.device.push(span(DeviceDoc {
                    name: m.name.clone(),
                    address: d.address.clone(),
                    port: i64::from(d.port),
                    product: d.product.clone(),
                    tags: d.tags.clone(),
                    environment: d.environment.clone(),
                    system: d.system.clone(),
                    host_keys: d.host_keys.iter().map(|k| k.to_string()).collect(),
                    host_key: None,
                    ssh_options: (&d.ssh_options).into(),
                    via: d.via.clone(),
                    enabled: m.enabled,
                })),
                Record::Credential(c) => file.credential.push(span(CredentialDoc {
                    name: m.name.clone(),
                    username: c.username.clone(),
                    device: c.device.clone(),
                    password: None,
                    private_key_file: None,
                    passphrase: None,
                    certificate_file: None,
                    jit_grant_template: c.jit_grant_template.clone(),
                    jit_revoke_template: c.jit_revoke_template.clone(),
                    change_template: c.change_template.clone(),
                    change_with: c.change_with.clone(),
                    reconcile_with: c.reconcile_with.clone(),
                    reconcile_template: c.reconcile_template.clone(),
                    children: c.children.clone(),
                    password_policy: c.password_policy.as_ref().map(PasswordPolicyDoc::of),
                    checkout: c.checkout_secs.map(|s| format!("{s}s")),
                    rotation_window: c.rotation_window.as_ref().map(|w| DailyWindowDoc {
                        from: w.from.clone(),
                        to: w.to.clone(),
                    }),
                    rotate_every: c.rotate_every_secs.map(|s| format!("{s}s")),
                    rotate_after_view: c.rotate_after_view,
                    rotate_after_use: c.rotate_after_use,
                    verify_every: c.verify_every_secs.map(|s| format!("{s}s")),
                    enabled: m.enabled,
                })),
                Record::Template(t) => file.template.push(span(TemplateDoc {
                    name: m.name.clone(),
                    description: t.description.clone(),
                    executor: t.executor,
                    execution_type: t.execution_type,
                    content: t.content.clone(),
                    interpreter: t.interpreter.clone(),
                    pty: t.pty,
                    variable: t
                        .variables
                        .iter()
                        .map(|v| VariableDoc {
                            name: v.name.clone(),
                            description: v.description.clone(),
                            default: v.default.clone(),
                            pattern: v.pattern.clone(),
                        })
                        .collect(),
                    enabled: m.enabled,
                })),
                Record::Task(t) => file.task.push(span(TaskDoc {
                    name: m.name.clone(),
                    description: t.description.clone(),
                    template: t.template.clone(),
                    environment: t.environment.clone(),
                    system: t.system.clone(),
                    devices: t.devices.clone(),
                    credential: t.credential.clone(),
                    variables: t.variables.clone(),
                    schedule: t.schedule.clone(),
                    timeout: t.timeout_secs,
                    retries: t.retries,
                    retry_on_failure: t.retry_on_failure,
                    idempotent: t.idempotent,
                    parallelism: t.parallelism,
                    children: t.children.clone(),
                    enabled: m.enabled,
                })),
                Record::Role(r) => file.role.push(span(RoleDoc {
                    name: m.name.clone(),
                    description: r.description.clone(),
                    os_groups: r.os_groups.clone(),
                    grants: r
                        .grants
                        .iter()
                        .map(|g| GrantDoc {
                            action: g.action.as_str().to_string(),
                            environments: g.environments.clone(),
                        })
                        .collect(),
                    resources: r
                        .resources
                        .iter()
                        .map(|g| ResourceDoc {
                            kind: g.kind.as_str().to_string(),
                            name: g.name.clone(),
                            levels: g.levels.clone(),
                        })
                        .collect(),
                    enabled: m.enabled,
                })),
                Record::User(u) => file.user.push(span(UserDoc {
                    login: m.name.clone(),
                    display_name: u.display_name.clone(),
                    roles: u.roles.clone(),
                    enabled: m.enabled,
                })),
                Record::Policy(p) => file.policy.push(span(PolicyDoc {
                    name: m.name.clone(),
                    description: p.description.clone(),
                    requires_justification: p.requires_justification,
                    requires_governance_id: p.requires_governance_id,
                    requires_approval: p.requires_approval,
                    requires_mfa: p.requires_mfa,
                    requires_reason: p.requires_reason,
                    emergency_access: p.emergency_access,
                    devices: p.devices.clone(),
                    environments: p.environments.clone(),
                    systems: p.systems.clone(),
                    users: p.users.clone(),
                    approvers: p
                        .approvers
                        .iter()
                        .map(|a| ApproverDoc {
                            user: a.user.clone(),
                            level: a.level,
                        })
                        .collect(),
                    window: p
                        .windows
                        .iter()
                        .map(|w| WindowDoc {
                            days: w
                                .days
                                .iter()
                                .map(|d| DAYS[(*d as usize).saturating_sub(1) % 7].to_string())
                                .collect(),
                            from: print_minute(w.from_minute),
                            to: print_minute(w.to_minute),
                            start_date: w.start_date.map(|d| d.to_string()),
                            end_date: w.end_date.map(|d| d.to_string()),
                        })
                        .collect(),
                    covers: p.covers.names().into_iter().map(String::from).collect(),
                    credentials: p.credentials.clone(),
                    requires_change: p.requires_change,
                    deny_commands: p.deny_commands.clone(),
                    products: p.products.clone(),
                    device_tags: p.device_tags.clone(),
                    usernames: p.usernames.clone(),
                    timezone: p.timezone.clone(),
                    requires_approval_comment: p.requires_approval_comment,
                    enabled: m.enabled,
                })),
                Record::Freeze(f) => file.freeze.push(span(FreezeDoc {
                    name: m.name.clone(),
                    reason: f.reason.clone(),
                    from: f.from.format("%Y-%m-%d %H:%M").to_string(),
                    to: f.to.format("%Y-%m-%d %H:%M").to_string(),
                    timezone: f.timezone.clone(),
                    environments: f.environments.clone(),
                    enabled: m.enabled,
                })),
            }
        }
        file
    }
}
