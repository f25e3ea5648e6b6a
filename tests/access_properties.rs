//! Properties of the access rules over random roles, policies and users.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::access::approval::may_decide;
use gatehouse::access::policy::covering_policy;
use gatehouse::access::Principal;
use gatehouse::domain::*;
use proptest::prelude::*;

const ENVS: [&str; 3] = ["production", "staging", "lab"];
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

fn action() -> impl Strategy<Value = Permission> {
    (0..Permission::ALL.len()).prop_map(|i| Permission::ALL[i])
}

fn grant() -> impl Strategy<Value = Grant> {
    (
        action(),
        proptest::sample::subsequence(ENVS.to_vec(), 0..=2),
    )
        .prop_map(|(action, envs)| Grant {
            action,
            environments: envs.into_iter().map(String::from).collect(),
        })
}

fn role(i: usize) -> impl Strategy<Value = Role> {
    (proptest::collection::vec(grant(), 0..6), any::<bool>()).prop_map(move |(grants, enabled)| {
        Role {
            meta: Meta {
                enabled,
                ..Meta::named(format!("role-{i}"))
            },
            grants,
            ..Role::default()
        }
    })
}

fn roles() -> impl Strategy<Value = Vec<Role>> {
    (role(0), role(1), role(2), role(3)).prop_map(|(a, b, c, d)| vec![a, b, c, d])
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        proptest::sample::subsequence(USERS.to_vec(), 0..=4),
        proptest::sample::subsequence(ENVS.to_vec(), 0..=3),
        proptest::collection::vec((proptest::sample::select(USERS.to_vec()), 1u8..=3), 0..5),
        any::<bool>(),
    )
        .prop_map(|(users, envs, approvers, enabled)| Policy {
            meta: Meta {
                enabled,
                ..Meta::named("p")
            },
            users: users.into_iter().map(String::from).collect(),
            environments: envs.into_iter().map(String::from).collect(),
            approvers: approvers
                .into_iter()
                .map(|(u, level)| Approver {
                    user: u.to_string(),
                    level,
                })
                .collect(),
            requires_approval: true,
            ..Policy::default()
        })
}

proptest! {
    #[test]
    fn nobody_may_do_what_no_enabled_role_of_theirs_grants(
        roles in roles(),
        held in proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..=4),
        action in action(),
        env in proptest::sample::select(ENVS.to_vec()),
    ) {
        let user = User {
            meta: Meta::named("alice"),
            roles: held.iter().map(|i| format!("role-{i}")).collect(),
            ..User::default()
        };
        let principal = Principal { user: &user, roles: held.iter().map(|i| &roles[*i]).collect(), groups: &[] };
        if principal.may(action, Some(env)) {
            let granted = held.iter().map(|i| &roles[*i]).any(|r| {
                r.meta.enabled
                    && r.grants.iter().any(|g| g.action == action && (g.environments.is_empty() || g.environments.iter().any(|e| e == env)))
            });
            prop_assert!(granted, "{action:?} in {env} allowed without a grant");
        }
    }

    #[test]
    fn nobody_approves_their_own_request(policy in policy(), requester in proptest::sample::select(USERS.to_vec()), level in 1u8..=3) {
        let request = ExecutionRequest {
            id: Id(1),
            task: "t".into(),
            devices: vec![],
            variables: Default::default(),
            reason: None,
            justification: None,
            governance_id: None,
            requester: requester.to_string(),
            policy: Some("p".into()),
            window_start: Timestamp(0),
            window_end: Timestamp(i64::MAX),
            state: RequestState::Pending { level },
            decisions: vec![],
            pinned: Pinned { task_revision: 1, template_id: Id(1), template_revision: 1, credential_revision: 1, devices: vec![], children: vec![] },
            created_at: Timestamp(0),
            operations: vec![],
            void_reason: None,
            schedule: None,
            kind: gatehouse::domain::RequestKind::Task,
            change: None,
        };
        prop_assert!(may_decide(&policy, &request, requester).is_err());
        for approver in USERS {
            if may_decide(&policy, &request, approver).is_ok() {
                prop_assert!(policy.meta.enabled);
                prop_assert!(policy.approvers.iter().any(|a| a.user == approver && a.level == level));
            }
        }
    }

    #[test]
    fn a_covering_policy_lists_the_user_and_covers_the_environment(
        policies in proptest::collection::vec(policy(), 0..4),
        user in proptest::sample::select(USERS.to_vec()),
        env in proptest::sample::select(ENVS.to_vec()),
    ) {
        let task = Task { meta: Meta::named("t"), environment: env.to_string(), system: "web".into(), ..Task::default() };
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc();
        if let Ok(p) = covering_policy(&policies, user, &task, &[], now) {
            prop_assert!(p.meta.enabled);
            prop_assert!(p.users.iter().any(|u| u == user));
            prop_assert!(p.environments.is_empty() || p.environments.iter().any(|e| e == env));
        } else {
            prop_assert!(!policies.iter().any(|p| p.meta.enabled
                && p.users.iter().any(|u| u == user)
                && (p.environments.is_empty() || p.environments.iter().any(|e| e == env))));
        }
    }
}
