//! Records, ids and validation. No I/O happens here.

mod freeze;
mod host_key;
mod jit;
mod operation;
mod records;
mod request;
mod rotation;
mod session;
mod ssh_options;
mod validate;
pub mod when;
pub mod zone;

pub use freeze::{parse_wall_clock, Freeze};
pub use host_key::{fingerprint_of_blob as host_key_fingerprint, HostKey};
pub use jit::{JitGrant, JitState};
pub use operation::{OpState, Operation, OutputChunk, Rerun, Stream, Trigger};
pub use records::*;

/// Masks every template may use without declaring them; no variable may
/// take one of these names.
pub const BUILTIN_MASKS: [&str; 12] = [
    "AUTH_USER",
    "AUTH_PASSWORD",
    "USERNAME",
    "PASSWORD",
    "NEW_PASSWORD",
    "OLD_PASSWORD",
    "NEW_PUBLIC_KEY",
    "OLD_PUBLIC_KEY",
    "DEVICE",
    "HOSTNAME",
    "ADDRESS",
    "PORT",
];
pub use request::{
    ChangePlan, ChildPin, Decision, EmergencyReview, ExecutionRequest, Pinned, RequestKind,
    RequestState, RevealRequest, SessionRequest,
};
pub use rotation::{
    ChangeReason, PasswordPolicy, PendingChange, PreviousSecret, SecretState, SecretStatus,
    PASSWORD_SYMBOLS, PREVIOUS_KEPT,
};
pub use session::{LineCatcher, SessionEnd, SessionInput, SessionRecord};
pub use ssh_options::{AlgorithmList, SshOptions};
pub use validate::{check_name, is_mask_name, parse_schedule, FieldError, Validate};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A record id. Ids are handed out in increasing order, so sorting by id is
/// sorting by creation time; the store keys them big-endian for that reason.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Id(pub u64);

impl Id {
    /// The big-endian key bytes under which the store keeps this id.
    pub fn key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Reads an id back from its key bytes.
    pub fn from_key(bytes: &[u8]) -> Option<Id> {
        Some(Id(u64::from_be_bytes(bytes.try_into().ok()?)))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default, Debug,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_millis())
    }

    /// This time plus some seconds.
    pub fn after_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000) as i64))
    }

    /// The time as a chrono value, for formatting.
    pub fn to_utc(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&zone::show(*self))
    }
}

/// What every record carries besides its own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Meta {
    pub id: Id,
    pub name: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_by: String,
    pub updated_at: Timestamp,
    /// Starts at 1 and grows by one with every saved change.
    pub revision: u32,
}

impl Meta {
    /// A fresh, enabled record header with the given name; the store fills in
    /// the id, the authors and the times when it saves it.
    pub fn named(name: impl Into<String>) -> Meta {
        Meta {
            name: name.into(),
            enabled: true,
            ..Meta::default()
        }
    }
}

/// The kinds of configuration record. Each has its own tree in the store.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Environment,
    System,
    Device,
    Credential,
    Reason,
    Template,
    Task,
    User,
    Role,
    Policy,
    Freeze,
}

impl Kind {
    /// Every kind, in the order in which records may depend on earlier ones.
    pub const ALL: [Kind; 11] = [
        Kind::Environment,
        Kind::System,
        Kind::Reason,
        Kind::Device,
        Kind::Credential,
        Kind::Template,
        Kind::Task,
        Kind::Role,
        Kind::User,
        Kind::Policy,
        Kind::Freeze,
    ];

    /// The singular lower-case name used in the import format, the CLI and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Environment => "environment",
            Kind::System => "system",
            Kind::Device => "device",
            Kind::Credential => "credential",
            Kind::Reason => "reason",
            Kind::Template => "template",
            Kind::Task => "task",
            Kind::User => "user",
            Kind::Role => "role",
            Kind::Policy => "policy",
            Kind::Freeze => "freeze",
        }
    }

    /// The plural, as shown in titles and accepted on the command line.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Environment => "environments",
            Kind::System => "systems",
            Kind::Device => "devices",
            Kind::Credential => "credentials",
            Kind::Reason => "reasons",
            Kind::Template => "templates",
            Kind::Task => "tasks",
            Kind::User => "users",
            Kind::Role => "roles",
            Kind::Policy => "policies",
            Kind::Freeze => "freezes",
        }
    }

    /// Parses a singular or plural kind name.
    pub fn parse(text: &str) -> Option<Kind> {
        let text = text.trim().to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == text || k.plural() == text)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
