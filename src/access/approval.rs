//! Who may decide a request: separation of duties, level by level. Pure.

use crate::domain::{ExecutionRequest, Policy, RequestState};

/// Whether `approver` may approve or reject `request` now. Any one approver
/// of the current level decides that level; nobody decides their own request.
pub fn may_decide(
    policy: &Policy,
    request: &ExecutionRequest,
    approver: &str,
) -> Result<u8, String> {
    let RequestState::Pending { level } = request.state else {
        return Err(format!(
            "request {} is {}, not pending",
            request.id, request.state
        ));
    };
    if approver == request.requester {
        return Err(format!(
            "nobody approves their own request ({} made request {})",
            approver, request.id
        ));
    }
    if !policy.meta.enabled {
        return Err(format!("policy {} is disabled", policy.meta.name));
    }
    if !policy
        .approvers
        .iter()
        .any(|a| a.user == approver && a.level == level)
    {
        return Err(format!(
            "'{approver}' is not an approver at level {level} of policy {}",
            policy.meta.name
        ));
    }
    Ok(level)
}

/// The level after `level` in a policy, if it has one.
pub fn next_level(policy: &Policy, level: u8) -> Option<u8> {
    policy
        .approvers
        .iter()
        .any(|a| a.level == level + 1)
        .then_some(level + 1)
}
