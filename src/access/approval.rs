//! Who may decide a request: separation of duties, level by level. Pure.

use crate::domain::{ExecutionRequest, Policy, RequestState};

/// Whether `approver` may approve or reject `request` now. Any one approver
/// of the current level decides that level; nobody decides their own request.
pub fn may_decide<'m>(
    policy: &Policy,
    request: &ExecutionRequest,
    approver: impl Into<super::Member<'m>>,
) -> Result<u8, String> {
    let member = approver.into();
    let approver = member.login;
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
    // One person approves at one level of a request, whatever the policy says.
    if let Some(earlier) = request
        .decisions
        .iter()
        .find(|d| d.approver == approver && d.approved)
    {
        return Err(format!(
            "'{approver}' already approved level {} of request {}; each level needs a different person",
            earlier.level, request.id
        ));
    }
    // A level names people or `@groups`: any one member decides it (each
    // person still once, and never their own request).
    if !policy
        .approvers
        .iter()
        .any(|a| member.is(&a.user) && a.level == level)
    {
        return Err(format!(
            "'{approver}' is not an approver at level {level} of policy {} (nor in a group it names there)",
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

/// Whether `reviewer` may review emergency request `request` after the
/// fact: one of its policy's approvers (any level), not its requester,
/// saying why; and not reviewed before.
pub fn may_review<'m>(
    policy: &Policy,
    request: &ExecutionRequest,
    reviewer: impl Into<super::Member<'m>>,
    reviewed_by: Option<&str>,
    comment: &str,
) -> Result<(), String> {
    let member = reviewer.into();
    if request.state != RequestState::Emergency {
        return Err(format!(
            "request {} is {}: only emergency runs are reviewed",
            request.id, request.state
        ));
    }
    if let Some(by) = reviewed_by {
        return Err(format!(
            "request {} was reviewed already, by {by}",
            request.id
        ));
    }
    if member.login == request.requester {
        return Err(format!(
            "nobody reviews their own emergency ({} made request {})",
            member.login, request.id
        ));
    }
    if !policy.approvers.iter().any(|a| member.is(&a.user)) {
        return Err(format!(
            "'{}' is not an approver of policy {}, under which request {} ran",
            member.login, policy.meta.name, request.id
        ));
    }
    if comment.trim().is_empty() {
        return Err("a review needs a comment (--comment)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Approver, Decision, Id, Meta, Pinned, Timestamp};

    /// A policy stored before the rule against one person at two levels.
    fn policy() -> Policy {
        Policy {
            meta: Meta::named("prod"),
            requires_approval: true,
            approvers: vec![
                Approver {
                    user: "bob".into(),
                    level: 1,
                },
                Approver {
                    user: "bob".into(),
                    level: 2,
                },
                Approver {
                    user: "carol".into(),
                    level: 2,
                },
            ],
            ..Policy::default()
        }
    }

    fn approved_at_level_1_by(approver: &str) -> ExecutionRequest {
        ExecutionRequest {
            id: Id(7),
            task: "restart".into(),
            devices: vec![],
            variables: Default::default(),
            reason: None,
            justification: None,
            governance_id: None,
            requester: "alice".into(),
            policy: Some("prod".into()),
            window_start: Timestamp(0),
            window_end: Timestamp(1),
            state: RequestState::Pending { level: 2 },
            decisions: vec![Decision {
                approver: approver.into(),
                level: 1,
                approved: true,
                comment: String::new(),
                time: Timestamp(0),
                narrowed_to: None,
            }],
            pinned: Pinned {
                task_revision: 1,
                template_id: Id(1),
                template_revision: 1,
                credential_revision: 1,
                devices: vec![],
                children: vec![],
            },
            created_at: Timestamp(0),
            operations: vec![],
            void_reason: None,
            schedule: None,
            kind: crate::domain::RequestKind::Task,
            change: None,
        }
    }

    #[test]
    fn one_person_never_approves_two_levels_of_a_request() {
        let request = approved_at_level_1_by("bob");
        let err = may_decide(&policy(), &request, "bob").unwrap_err();
        assert!(err.contains("already approved level 1"), "{err}");
        // Positive control: someone else at level 2 may.
        assert_eq!(may_decide(&policy(), &request, "carol"), Ok(2));
    }
}
