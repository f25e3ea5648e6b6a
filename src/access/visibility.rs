//! Who may see an execution: its operations, their output and events, and
//! the requests behind them. Everyone sees their own; others' need the
//! view-executions permission in the environment the task runs in (a
//! scoped grant shows that environment's only). Approvers also see the
//! requests they are asked to decide, and the runs of those they decided.
//! Pure.

use super::Principal;
use crate::domain::{ExecutionRequest, Permission, Policy};

/// Whether `who` may see an operation requested by `requested_by` of a
/// task in `environment` (`None` when the task no longer exists);
/// `decided_its_request` says whether `who` decided the request it runs.
pub fn may_see_operation(
    who: &Principal<'_>,
    requested_by: &str,
    environment: Option<&str>,
    decided_its_request: impl FnOnce() -> bool,
) -> bool {
    if !who.user.meta.enabled {
        return false;
    }
    who.user.meta.name == requested_by
        || who.may(Permission::ViewExecutions, environment)
        || decided_its_request()
}

/// Whether `who` may see a request: their own, one they decided or are an
/// approver of under its policy, or by view-executions in its environment.
pub fn may_see_request(
    who: &Principal<'_>,
    request: &ExecutionRequest,
    environment: Option<&str>,
    policy: Option<&Policy>,
) -> bool {
    if !who.user.meta.enabled {
        return false;
    }
    let login = who.user.meta.name.as_str();
    request.requester == login
        || request.decisions.iter().any(|d| d.approver == login)
        || policy.is_some_and(|p| p.approvers.iter().any(|a| who.member().is(&a.user)))
        || who.may(Permission::ViewExecutions, environment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Grant, Meta, Role, User};

    fn user(name: &str) -> User {
        User {
            meta: Meta::named(name),
            display_name: name.into(),
            roles: vec!["r".into()],
            totp_secret: None,
        }
    }

    fn role(grants: Vec<Grant>) -> Role {
        Role {
            meta: Meta::named("r"),
            grants,
            ..Role::default()
        }
    }

    #[test]
    fn everyone_sees_their_own_and_a_scoped_grant_shows_its_environment_only() {
        let alice = user("alice");
        let nothing = role(vec![]);
        let p = Principal {
            user: &alice,
            roles: vec![&nothing],
            groups: &[],
        };
        assert!(may_see_operation(&p, "alice", Some("prod"), || false));
        assert!(!may_see_operation(&p, "bob", Some("prod"), || false));
        // The approver of its request sees the run.
        assert!(may_see_operation(&p, "bob", Some("prod"), || true));
        let staging = role(vec![Grant {
            action: Permission::ViewExecutions,
            environments: vec!["staging".into()],
        }]);
        let p = Principal {
            user: &alice,
            roles: vec![&staging],
            groups: &[],
        };
        assert!(may_see_operation(&p, "bob", Some("staging"), || false));
        assert!(!may_see_operation(&p, "bob", Some("prod"), || false));
        assert!(!may_see_operation(&p, "bob", None, || false));
        let mut disabled = user("alice");
        disabled.meta.enabled = false;
        let p = Principal {
            user: &disabled,
            roles: vec![&staging],
            groups: &[],
        };
        assert!(!may_see_operation(&p, "alice", Some("staging"), || true));
    }
}
