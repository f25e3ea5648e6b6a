//! Just-in-time grants: a privilege given on a device until a time, and
//! taken back by a revoke operation that is retried until it succeeds.

use super::{Id, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JitState {
    /// Granted; the revoke runs at `expires_at`.
    Active,
    /// The revoke operation is running.
    Revoking {
        op: Id,
    },
    Revoked {
        at: Timestamp,
    },
    /// The revoke failed; it runs again at `retry_at`.
    Failing {
        attempts: u32,
        retry_at: Timestamp,
        error: String,
    },
}

impl fmt::Display for JitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitState::Active => f.write_str("active"),
            JitState::Revoking { op } => write!(f, "revoking (operation {op})"),
            JitState::Revoked { at } => write!(f, "revoked at {at}"),
            JitState::Failing {
                attempts, error, ..
            } => {
                write!(f, "REVOKE FAILING after {attempts} attempt(s): {error}")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JitGrant {
    pub id: Id,
    /// The operation that granted it.
    pub grant_op: Id,
    pub task: String,
    pub credential: String,
    pub device: String,
    pub requested_by: String,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub state: JitState,
}
