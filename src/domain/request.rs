//! Execution requests: what someone asked to run, under which policy, and
//! the decisions on it.

use super::{Id, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a request stands.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestState {
    /// Waiting for an approver of this level.
    Pending {
        level: u8,
    },
    Approved,
    Rejected,
    /// Its window ended before it was decided.
    Expired,
    /// Run at once under a policy's emergency access, without approval.
    Emergency,
    /// Approved, but what it depends on changed before it could run.
    Void,
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestState::Pending { level } => write!(f, "pending at level {level}"),
            RequestState::Approved => f.write_str("approved"),
            RequestState::Rejected => f.write_str("rejected"),
            RequestState::Expired => f.write_str("expired"),
            RequestState::Emergency => f.write_str("emergency"),
            RequestState::Void => f.write_str("void"),
        }
    }
}

/// One approver's word on a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub approver: String,
    pub level: u8,
    pub approved: bool,
    pub comment: String,
    pub time: Timestamp,
    /// The window's new end, when the approver narrowed it.
    pub narrowed_to: Option<Timestamp>,
}

/// What an approval binds: the exact records, by revision, that will run.
/// A reveal's request pins the credential's revision only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    pub task_revision: u32,
    pub template_id: Id,
    pub template_revision: u32,
    pub credential_revision: u32,
    /// Device name and revision.
    pub devices: Vec<(String, u32)>,
    /// The tasks chained after it, however deep, as they were.
    pub children: Vec<ChildPin>,
}

/// A chained task as a request pinned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildPin {
    pub task: String,
    pub task_revision: u32,
    pub template_id: Id,
    pub template_revision: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRequest {
    pub id: Id,
    pub task: String,
    pub devices: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub reason: Option<String>,
    pub justification: Option<String>,
    pub governance_id: Option<String>,
    pub requester: String,
    /// The policy that let it be made; none for a Superuser's request.
    pub policy: Option<String>,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub state: RequestState,
    pub decisions: Vec<Decision>,
    pub pinned: Pinned,
    pub created_at: Timestamp,
    /// The operations it became, once it ran.
    pub operations: Vec<Id>,
    /// Why it did not run although approved (state `Void`).
    pub void_reason: Option<String>,
    /// For a schedule's authority: the task's cron expression it
    /// authorises; its runs happen at those times until `window_end`.
    pub schedule: Option<String>,
    /// What it asks for: a task's run, or something else (`task` is then
    /// empty).
    pub kind: RequestKind,
    /// The change it is for, when one was declared: its code and the
    /// command lines it expects.
    pub change: Option<ChangePlan>,
}

/// What a request asks for.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum RequestKind {
    /// To run the task `task` (or authorise its schedule).
    #[default]
    Task,
    /// To see a credential's password.
    Reveal(RevealRequest),
    /// To open a privileged session.
    Session(SessionRequest),
}

/// A request to open a session on a device with a credential, once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRequest {
    pub device: String,
    pub credential: String,
    /// When the approved session was opened; an approval opens one.
    pub used_at: Option<Timestamp>,
}

/// A declared change: its code and the command lines it expects, as
/// `*`/`?` patterns; a session's commands outside them are deviations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangePlan {
    pub code: String,
    pub plan: Vec<String>,
}

impl ChangePlan {
    /// The lines of a task's template the plan does not expect (blank
    /// lines and `#` comments aside): what the run would do beyond the
    /// declared change. None when the plan lists nothing.
    pub fn unexpected_lines(&self, content: &str) -> Vec<String> {
        if self.plan.is_empty() {
            return Vec::new();
        }
        content
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|l| !self.expects(l))
            .map(str::to_string)
            .collect()
    }

    /// Whether a command line is one the plan expects (an empty plan
    /// expects nothing: every command deviates).
    pub fn expects(&self, line: &str) -> bool {
        self.plan
            .iter()
            .any(|p| crate::text::glob_matches(p, line.trim()))
    }
}

/// A request to reveal a credential's password, under a policy that
/// names the credential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RevealRequest {
    pub credential: String,
    /// When the approved password was shown; an approval shows it once.
    pub revealed_at: Option<Timestamp>,
}

impl ExecutionRequest {
    /// The reveal it asks for, if it is one.
    pub fn reveal(&self) -> Option<&RevealRequest> {
        match &self.kind {
            RequestKind::Reveal(r) => Some(r),
            _ => None,
        }
    }

    pub fn reveal_mut(&mut self) -> Option<&mut RevealRequest> {
        match &mut self.kind {
            RequestKind::Reveal(r) => Some(r),
            _ => None,
        }
    }

    /// The session it asks for, if it is one.
    pub fn session(&self) -> Option<&SessionRequest> {
        match &self.kind {
            RequestKind::Session(s) => Some(s),
            _ => None,
        }
    }

    /// Whether it runs a task (or authorises its schedule).
    pub fn is_task(&self) -> bool {
        self.kind == RequestKind::Task
    }

    /// What it asks for, as people read it: "task restart-web" or
    /// "reveal of credential db-root".
    pub fn subject(&self) -> String {
        match &self.kind {
            RequestKind::Reveal(r) => format!("reveal of credential {}", r.credential),
            RequestKind::Session(s) => {
                format!("session on device {} as {}", s.device, s.credential)
            }
            RequestKind::Task => format!("task {}", self.task),
        }
    }

    /// What it asks for, in a list's column: the task's name, or "reveal NAME".
    pub fn what(&self) -> String {
        match &self.kind {
            RequestKind::Reveal(r) => format!("reveal {}", r.credential),
            RequestKind::Session(s) => format!("session {}", s.device),
            RequestKind::Task => self.task.clone(),
        }
    }

    /// The audit target of an event about it.
    pub fn target(&self) -> String {
        format!("request {} ({})", self.id, self.subject())
    }
}

/// An approver's review of an emergency run after the fact: accepted, or
/// flagged for follow-up, with why. Kept apart from the request (its own
/// tree), one per request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergencyReview {
    pub request: Id,
    pub reviewer: String,
    pub time: Timestamp,
    /// Accepted; false: flagged for follow-up.
    pub accepted: bool,
    pub comment: String,
}
