//! Who may do what: built-in roles and permission checks. Pure functions;
//! the engine calls them and nothing else decides.

pub mod analysis;
pub mod approval;
pub mod authorize;
pub mod freeze;
pub mod mfa;
pub mod policy;
pub mod visibility;

use crate::domain::{AccessLevel, Grant, Kind, Meta, Permission, Role, User, SUPERUSER_ROLE};

pub use authorize::{authorize, environment_of, Denial, Effect, Facts, NoFacts};

/// The roles every store starts with.
pub fn builtin_roles() -> Vec<Role> {
    fn role(name: &str, description: &str, actions: &[Permission]) -> Role {
        Role {
            meta: Meta::named(name),
            description: description.into(),
            builtin: true,
            grants: actions
                .iter()
                .map(|a| Grant {
                    action: *a,
                    environments: Vec::new(),
                })
                .collect(),
            resources: Vec::new(),
            os_groups: Vec::new(),
        }
    }
    use Permission::*;
    vec![
        role(
            "User",
            "Views and requests tasks, and sees their own executions.",
            &[ViewTasks, RequestTasks],
        ),
        role(
            "Auditor",
            "Reads execution history and the audit log; changes nothing.",
            &[
                ViewEnvironments,
                ViewDevices,
                ViewTemplates,
                ViewTasks,
                ViewExecutions,
                ViewAudit,
                ExportAudit,
                ViewPolicies,
            ],
        ),
        role(
            "Administrator",
            "Manages environments, devices, credentials, templates, tasks and policies.",
            &[
                ViewEnvironments,
                ManageEnvironments,
                ViewDevices,
                ManageDevices,
                ManageCredentials,
                ViewTemplates,
                ManageTemplates,
                ViewTasks,
                ManageTasks,
                ManagePolicies,
                ViewExecutions,
                ViewAudit,
            ],
        ),
        role(
            SUPERUSER_ROLE,
            "Everything, without restriction. Cannot be changed.",
            &Permission::ALL,
        ),
    ]
}

/// What a caller holds: their user record and the roles it names.
pub struct Principal<'a> {
    pub user: &'a User,
    /// Its own roles and those of its OS groups.
    pub roles: Vec<&'a Role>,
    /// The OS groups it belongs to, as the name service said at this
    /// command (policies and approver lists may name them as `@group`).
    pub groups: &'a [String],
}

/// Someone as a policy's `users` or an approver list names them: by login,
/// or as a member of an `@group`.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    pub login: &'a str,
    pub groups: &'a [String],
}

impl<'a> From<&'a str> for Member<'a> {
    /// A login alone, in no group.
    fn from(login: &'a str) -> Member<'a> {
        Member { login, groups: &[] }
    }
}

impl<'a> From<&'a String> for Member<'a> {
    fn from(login: &'a String) -> Member<'a> {
        Member { login, groups: &[] }
    }
}

impl Member<'_> {
    /// Whether one of `names` is this login or `@` one of its groups.
    pub fn in_list(&self, names: &[String]) -> bool {
        names.iter().any(|n| self.is(n))
    }

    /// Whether `name` is this login or `@` one of its groups.
    pub fn is(&self, name: &str) -> bool {
        match name.strip_prefix('@') {
            Some(group) => self.groups.iter().any(|g| g == group),
            None => name == self.login,
        }
    }
}

impl<'a> Principal<'a> {
    /// Each role held and where it comes from: "own" (the user lists it),
    /// or "group NAME" (an OS group of theirs that the role names).
    pub fn role_sources(&self) -> Vec<(String, String)> {
        self.roles
            .iter()
            .map(|r| {
                let source = if self.user.roles.contains(&r.meta.name) {
                    "own".to_string()
                } else {
                    r.os_groups
                        .iter()
                        .find(|g| self.groups.contains(g))
                        .map(|g| format!("group {g}"))
                        .unwrap_or_else(|| "?".into())
                };
                (r.meta.name.clone(), source)
            })
            .collect()
    }

    /// The user as lists name them.
    pub fn member(&self) -> Member<'_> {
        Member {
            login: &self.user.meta.name,
            groups: self.groups,
        }
    }
}

impl Principal<'_> {
    /// Whether the user holds the Superuser role.
    pub fn is_superuser(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r.meta.name == SUPERUSER_ROLE && r.meta.enabled)
    }

    /// Whether an enabled role grants `action`, in `environment` when the
    /// action concerns a record that lives in one. Deny by default.
    pub fn may(&self, action: Permission, environment: Option<&str>) -> bool {
        if !self.user.meta.enabled {
            return false;
        }
        if self.is_superuser() {
            return true;
        }
        self.roles.iter().filter(|r| r.meta.enabled).any(|r| {
            r.grants.iter().any(|g| {
                g.action == action
                    && (g.environments.is_empty()
                        || environment.is_some_and(|env| g.environments.iter().any(|e| e == env)))
            })
        })
    }
}

impl Principal<'_> {
    /// Whether an enabled role gives this level of access to the named task,
    /// template or device (Superusers hold every level).
    pub fn holds(&self, kind: Kind, name: &str, level: AccessLevel) -> bool {
        self.user.meta.enabled
            && (self.is_superuser()
                || self.roles.iter().filter(|r| r.meta.enabled).any(|r| {
                    r.resources
                        .iter()
                        .any(|g| g.kind == kind && g.name == name && g.levels.contains(&level))
                }))
    }

    /// Whether an enabled role gives any access to some record of this kind.
    pub fn holds_any(&self, kind: Kind) -> bool {
        self.user.meta.enabled
            && self
                .roles
                .iter()
                .filter(|r| r.meta.enabled)
                .any(|r| r.resources.iter().any(|g| g.kind == kind))
    }

    /// Whether some enabled role grants `action` in at least one environment.
    pub fn may_somewhere(&self, action: Permission) -> bool {
        self.user.meta.enabled
            && (self.is_superuser()
                || self
                    .roles
                    .iter()
                    .filter(|r| r.meta.enabled)
                    .any(|r| r.grants.iter().any(|g| g.action == action)))
    }
}

/// The action that lets a user list records of a kind.
pub fn view_action(kind: Kind) -> Permission {
    match kind {
        Kind::Environment | Kind::System | Kind::Reason => Permission::ViewEnvironments,
        Kind::Device => Permission::ViewDevices,
        Kind::Credential => Permission::ManageCredentials,
        Kind::Template => Permission::ViewTemplates,
        Kind::Task => Permission::ViewTasks,
        Kind::User | Kind::Role => Permission::ManageUsers,
        Kind::Policy => Permission::ManagePolicies,
        // Whoever may see tasks may see when they cannot run.
        Kind::Freeze => Permission::ViewTasks,
    }
}

/// The action that lets a user create, change or delete records of a kind.
pub fn manage_action(kind: Kind) -> Permission {
    match kind {
        Kind::Environment | Kind::System | Kind::Reason => Permission::ManageEnvironments,
        Kind::Device => Permission::ManageDevices,
        Kind::Credential => Permission::ManageCredentials,
        Kind::Template => Permission::ManageTemplates,
        Kind::Task => Permission::ManageTasks,
        Kind::User | Kind::Role => Permission::ManageUsers,
        Kind::Policy | Kind::Freeze => Permission::ManagePolicies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str]) -> User {
        User {
            meta: Meta::named("alice"),
            display_name: "Alice".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            totp_secret: None,
        }
    }

    #[test]
    fn deny_by_default_and_scoped_grants_hold_only_in_their_environments() {
        let u = user(&["ops"]);
        let ops = Role {
            meta: Meta::named("ops"),
            grants: vec![Grant {
                action: Permission::ManageDevices,
                environments: vec!["staging".into()],
            }],
            ..Role::default()
        };
        let p = Principal {
            user: &u,
            roles: vec![&ops],
            groups: &[],
        };
        assert!(p.may(Permission::ManageDevices, Some("staging")));
        assert!(!p.may(Permission::ManageDevices, Some("production")));
        assert!(!p.may(Permission::ManageDevices, None));
        assert!(!p.may(Permission::ManageUsers, None));
    }

    #[test]
    fn a_scoped_manager_neither_takes_a_record_over_nor_moves_one_in() {
        use crate::domain::{Device, Record};
        let u = user(&["ops"]);
        let ops = Role {
            meta: Meta::named("ops"),
            grants: vec![Grant {
                action: Permission::ManageDevices,
                environments: vec!["staging".into()],
            }],
            ..Role::default()
        };
        let p = Principal {
            user: &u,
            roles: vec![&ops],
            groups: &[],
        };
        let device = |env: &str| {
            Record::Device(Device {
                meta: Meta::named("db-1"),
                environment: env.into(),
                ..Device::default()
            })
        };
        let may_change = |stored: Option<&Record>, incoming: &Record| {
            authorize(&p, Effect::Change { stored, incoming }, &NoFacts).is_ok()
        };
        // The production device re-imported as staging: refused.
        assert!(!may_change(Some(&device("production")), &device("staging")));
        // A staging device moved to production: refused.
        assert!(!may_change(Some(&device("staging")), &device("production")));
        // Positive controls: in staging, new or changed.
        assert!(may_change(None, &device("staging")));
        assert!(may_change(Some(&device("staging")), &device("staging")));
    }

    #[test]
    fn superuser_may_everything_but_a_disabled_user_nothing() {
        let roles = builtin_roles();
        let su = roles
            .iter()
            .find(|r| r.meta.name == SUPERUSER_ROLE)
            .unwrap();
        let mut u = user(&[SUPERUSER_ROLE]);
        assert!(Principal {
            user: &u,
            roles: vec![su],
            groups: &[],
        }
        .may(Permission::ManageUsers, None));
        u.meta.enabled = false;
        assert!(!Principal {
            user: &u,
            roles: vec![su],
            groups: &[],
        }
        .may(Permission::ViewTasks, None));
    }
}
