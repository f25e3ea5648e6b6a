//! Operations: one run of a task's pinned template on one device, and the
//! output it produced.

use super::{Executor, Id, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where an operation is in its life.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpState {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Waiting for its next attempt after a failed one.
    Retrying,
    Cancelled,
    /// The server stopped while it ran.
    Interrupted,
    /// It ran to its end and did nothing on the device: every task of its
    /// playbook was skipped there (their conditions were false).
    Skipped,
}

impl OpState {
    pub const ALL: [OpState; 8] = [
        OpState::Queued,
        OpState::Running,
        OpState::Succeeded,
        OpState::Failed,
        OpState::Retrying,
        OpState::Cancelled,
        OpState::Interrupted,
        OpState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpState::Queued => "queued",
            OpState::Running => "running",
            OpState::Succeeded => "succeeded",
            OpState::Failed => "failed",
            OpState::Retrying => "retrying",
            OpState::Cancelled => "cancelled",
            OpState::Interrupted => "interrupted",
            OpState::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<OpState> {
        OpState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the operation has ended for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OpState::Succeeded
                | OpState::Failed
                | OpState::Cancelled
                | OpState::Interrupted
                | OpState::Skipped
        )
    }

    /// Whether it ended without failing: it succeeded, or there was
    /// nothing for it to do on the device. Only a success starts the
    /// task's chained tasks.
    pub fn is_success(self) -> bool {
        matches!(self, OpState::Succeeded | OpState::Skipped)
    }
}

impl fmt::Display for OpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started an operation.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// A person's request.
    User,
    /// The task's schedule; `late` when it fired at start for a run missed while down.
    Schedule { late: bool },
    /// A parent operation that succeeded on the same device.
    Chain { parent: Id },
    /// A just-in-time grant reached its expiry: this operation revokes it.
    JitExpiry { grant: Id },
    /// A change of a credential's password, for this reason.
    CredentialChange {
        credential: String,
        reason: super::ChangeReason,
    },
    /// The just-in-time grant before a privileged session.
    Session { session: Id },
    /// A dry run (`--check --diff`) of a pending request's playbook, asked
    /// for before it is decided.
    DryRun { request: Id },
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::User => f.write_str("user"),
            Trigger::Schedule { late: false } => f.write_str("schedule"),
            Trigger::Schedule { late: true } => f.write_str("schedule (late)"),
            Trigger::Chain { parent } => write!(f, "chain from {parent}"),
            Trigger::JitExpiry { grant } => write!(f, "expiry of JIT grant {grant}"),
            Trigger::CredentialChange { credential, reason } => {
                write!(f, "password change of {credential} ({reason})")
            }
            Trigger::Session { session } => write!(f, "grant before session {session}"),
            Trigger::DryRun { request } => write!(f, "dry run of request {request}"),
        }
    }
}

/// One run of a pinned template revision on one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: Id,
    /// The request this operation belongs to; all operations of one request share it.
    pub request: Id,
    pub task: String,
    pub template: String,
    pub template_id: Id,
    /// The exact revision that runs, whatever the template becomes later.
    pub template_revision: u32,
    pub executor: Executor,
    pub device: String,
    pub credential: String,
    /// Values of the template's declared variables, checked against their patterns.
    pub variables: BTreeMap<String, String>,
    pub trigger: Trigger,
    pub requested_by: String,
    /// Requested by a Superuser without an access policy.
    pub superuser_bypass: bool,
    pub state: OpState,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Which unsuccessful attempts are made again (a failure to connect
    /// always is).
    pub rerun: Rerun,
    pub timeout_secs: u64,
    pub exit_status: Option<i32>,
    pub created_at: Timestamp,
    /// When it may start (a request with `--at`).
    pub not_before: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Why it failed, redacted.
    pub error: Option<String>,
    /// For a JIT grant operation: when the privilege it grants expires.
    pub jit_until: Option<Timestamp>,
    /// Output bytes stored so far.
    pub output_bytes: u64,
    pub output_truncated: bool,
}

/// Which unsuccessful attempts an operation makes again, within its
/// attempts. A failure to connect always is: nothing ran.
///
/// Stored where a `retry_on_failure` bool was before: bincode writes a bool
/// as one byte 0 or 1 and a variant index below 251 as one byte, so
/// `false` reads as `Unreached` and `true` as `Failed`. New variants go last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Rerun {
    /// Only attempts that never reached the device.
    #[default]
    Unreached,
    /// Also runs that failed or were cut off (`retry_on_failure`).
    Failed,
    /// Also runs cut off after they started, not those that failed
    /// (`idempotent`: running it again is safe, but a failure is an answer).
    Interrupted,
}

impl Operation {
    /// How the audit names it: `operation 412 (restart on web-1, request
    /// 41)`, so that the events of a request and of its operations are
    /// found by the request's id.
    pub fn audit_target(&self) -> String {
        if self.request.0 == 0 {
            format!("operation {} ({} on {})", self.id, self.task, self.device)
        } else {
            format!(
                "operation {} ({} on {}, request {})",
                self.id, self.task, self.device, self.request
            )
        }
    }
}

impl Rerun {
    /// What a task's settings ask for.
    pub fn of(retry_on_failure: bool, idempotent: bool) -> Rerun {
        match (retry_on_failure, idempotent) {
            (true, _) => Rerun::Failed,
            (false, true) => Rerun::Interrupted,
            (false, false) => Rerun::Unreached,
        }
    }
}

/// Which stream a chunk of output came from.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Gatehouse's own lines: connecting, attempts, errors.
    System,
    /// The debug trace: SSH negotiation, authentication, each expect step,
    /// retries and timings. Shown only to holders of view-execution-debug
    /// who ask for it, never sent live.
    Debug,
}

/// A piece of an operation's output, already redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputChunk {
    pub seq: u64,
    pub stream: Stream,
    pub time: Timestamp,
    /// Written as one run of bytes, not byte by byte: bincode lays both out
    /// the same (a length, then the bytes), so stored chunks read as before.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}
