//! Running operations: the queue with its bounds, SSH (russh) and local
//! executors, output capture and redaction, retries and cancellation.

pub mod admission;
pub mod algorithms;
pub mod ansible;
pub mod executor;
pub mod hostkey;
pub mod local;
pub mod output;
mod runner;
pub(crate) mod ssh;

pub use hostkey::{scan_address, scan_host_keys};
pub use runner::{check_login, login_target, scan_target, Gate, Hold, Limits, Runner};

use crate::domain::{Id, Operation, OutputChunk};
use std::sync::Arc;

/// The shell code a script runs under: it reads the whole script from stdin,
/// then runs it. So the script (and any secret in it) is in no process's
/// argv, and the commands in it read an empty stdin, not the rest of the script.
pub const SCRIPT_SHELL_CODE: &str = r#"eval "$(cat)""#;
/// Where the runner writes what must be durable and told: the engine's
/// journal ([`crate::engine::journal::Journal`]), so that every write of the
/// runner is published like every other.
pub trait Ledger: Send + Sync {
    /// Commits changes and audit events in one transaction, flushed, and
    /// publishes them.
    fn commit<'a>(
        &'a self,
        changes: Vec<crate::store::Change>,
        audit: Vec<crate::store::NewAuditEvent>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::store::StoreResult<()>> + Send + 'a>,
    >;
    /// Stores an operation's state while it runs, unflushed, and publishes it.
    fn note(&self, op: &Operation);
    /// Makes everything written so far durable.
    fn flush<'a>(
        &'a self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::store::StoreResult<()>> + Send + 'a>,
    >;
}

/// What the executors tell the engine.
#[derive(Clone, Debug)]
pub enum ExecEvent {
    /// An operation produced output (already stored and redacted).
    Output { op: Id, chunk: OutputChunk },
}

/// Where executors report; the engine turns these into client events.
pub type Notify = Arc<dyn Fn(ExecEvent) + Send + Sync>;

/// Why an attempt did not succeed. Messages are redacted before they leave.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// Could not reach or talk to the device: worth another attempt.
    #[error("{0}")]
    Connect(String),
    /// The server dropped the connection before it spoke: it is throttling
    /// new connections (OpenSSH's MaxStartups). Waited out, not an attempt.
    #[error("{0}")]
    Throttled(String),
    /// The connection broke after the run started: the command may have
    /// run, in part or whole, so it is run again only where the task says
    /// that is safe (`retry_on_failure` or `idempotent`).
    #[error("{0}")]
    Dropped(String),
    #[error("{0}")]
    HostKey(String),
    #[error("{0}")]
    Auth(String),
    /// The run itself failed (a timeout on an expect line, a signal).
    #[error("{0}")]
    Failed(String),
    /// Something the operation depends on is missing or refused.
    #[error("{0}")]
    Invalid(String),
    #[error("cancelled")]
    Cancelled,
    /// A password change ran (exit status 0) but the new password does
    /// not log in: what the device holds is not known for sure.
    #[error("{0}")]
    Unverified(String),
    /// It ran to its end and did nothing on the device (every task of a
    /// playbook was skipped there): not a failure, and nothing to retry.
    #[error("{0}")]
    Skipped(String),
}

impl RunError {
    /// Whether another attempt might succeed where this one failed.
    pub fn retryable(&self, rerun: crate::domain::Rerun) -> bool {
        use crate::domain::Rerun;
        match self {
            // Never reached the device: nothing ran, another try is safe.
            RunError::Connect(_) => true,
            // It may have run: only where running it twice is safe.
            RunError::Dropped(_) => matches!(rerun, Rerun::Failed | Rerun::Interrupted),
            RunError::Failed(_) => rerun == Rerun::Failed,
            _ => false,
        }
    }
}
