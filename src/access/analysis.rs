//! Role analysis: grants that make no sense, grants that give more than they
//! say, and grants that reach further than their scope. Warnings, each with
//! one sentence of why; nothing here refuses anything.

use crate::domain::{AccessLevel, Kind, Permission, Role};
use std::fmt;

/// What kind of problem a warning describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WarningKind {
    /// A grant that can't be used as meant (manage without view).
    Nonsensical,
    /// A grant that gives another, unstated one.
    ByProxy,
    /// A grant that reaches past its own scope.
    Transitive,
}

/// One finding about a role.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleWarning {
    pub kind: WarningKind,
    pub message: String,
}

impl fmt::Display for RoleWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.kind {
            WarningKind::Nonsensical => "nonsensical",
            WarningKind::ByProxy => "by proxy",
            WarningKind::Transitive => "transitive",
        };
        write!(f, "{label}: {}", self.message)
    }
}

/// What the store holds that makes some grants reach further: which tasks
/// use which template, which are scheduled, which templates run locally.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Task name, its template, whether it has a schedule.
    pub tasks: Vec<(String, String, bool)>,
    /// Templates whose executor is `local`.
    pub local_templates: Vec<String>,
}

/// Analyses a role's grants on their own.
pub fn analyse(role: &Role) -> Vec<RoleWarning> {
    analyse_together(&[role], &Reach::default())
}

/// Analyses the grants of several roles held together (one user's), in
/// the light of what the store holds: what one role alone does not give,
/// two together may.
pub fn analyse_together(roles: &[&Role], reach: &Reach) -> Vec<RoleWarning> {
    let has = |a: Permission| roles.iter().any(|r| r.grants.iter().any(|g| g.action == a));
    let holds = |kind: Kind, name: &str, level: AccessLevel| {
        roles.iter().any(|r| {
            r.resources
                .iter()
                .any(|g| g.kind == kind && g.name == name && g.levels.contains(&level))
        })
    };
    let mut out = Vec::new();
    let mut warn = |kind, message: &str| {
        out.push(RoleWarning {
            kind,
            message: message.to_string(),
        })
    };
    use Permission::*;
    let needs_view = [
        (ManageEnvironments, ViewEnvironments, "manage-environments without view-environments: the environments it may change are not shown to it."),
        (ManageDevices, ViewDevices, "manage-devices without view-devices: it may change devices it cannot list."),
        (ManageTemplates, ViewTemplates, "manage-templates without view-templates: it may change templates it cannot read."),
        (ManageTasks, ViewTasks, "manage-tasks without view-tasks: it may change tasks it cannot list."),
        (RequestTasks, ViewTasks, "request-tasks without view-tasks: it may request tasks it cannot see."),
        (ViewExecutionDebug, ViewExecutions, "view-execution-debug without view-executions: there are no executions to see the debug output of."),
        (ExportAudit, ViewAudit, "export-audit without view-audit: it may export a log it may not read."),
    ];
    for (manage, view, why) in needs_view {
        if has(manage) && !has(view) {
            warn(WarningKind::Nonsensical, why);
        }
    }
    if has(ManageTemplates) && has(RequestTasks) {
        warn(
            WarningKind::ByProxy,
            "manage-templates with request-tasks is running arbitrary commands: it can edit a template a task uses and then run it.",
        );
    }
    if has(ManageTasks) && has(RequestTasks) {
        warn(
            WarningKind::ByProxy,
            "manage-tasks with request-tasks can point a task at any template, device or credential and then run it.",
        );
    }
    if has(ManageDevices) && has(RequestTasks) {
        warn(
            WarningKind::ByProxy,
            "manage-devices with request-tasks can point a device at a host it controls and request a task there, sending the task's credential to that host.",
        );
    }
    if has(RunLocal) {
        warn(
            WarningKind::Transitive,
            "run-local runs commands on the Gatehouse host itself, as the local account: whatever that account may read or reach from the jump host, it reaches.",
        );
    }
    if has(ManageTemplates) && reach.tasks.iter().any(|(_, _, scheduled)| *scheduled) {
        warn(
            WarningKind::Transitive,
            "manage-templates can change what a scheduled task runs; the schedule is then suspended until a new request is approved, so it can stop scheduled work.",
        );
    }
    if has(ManageTasks) && reach.tasks.iter().any(|(_, _, scheduled)| *scheduled) {
        warn(
            WarningKind::Transitive,
            "manage-tasks can change or disable a scheduled task; the schedule is then suspended until a new request is approved.",
        );
    }
    for (task, template, _) in &reach.tasks {
        let writes = has(ManageTemplates) || holds(Kind::Template, template, AccessLevel::Write);
        let runs = holds(Kind::Task, task, AccessLevel::Run);
        if writes && runs {
            warn(
                WarningKind::ByProxy,
                &format!(
                    "write on template '{template}' with run on task '{task}', which uses it, is running whatever it writes there."
                ),
            );
        }
        if reach.local_templates.contains(template) && runs && !has(RunLocal) {
            warn(
                WarningKind::Nonsensical,
                &format!(
                    "run on task '{task}' without run-local: its template '{template}' runs on the Gatehouse host, so the run is refused."
                ),
            );
        }
    }
    if has(ManageCredentials) {
        warn(
            WarningKind::ByProxy,
            "manage-credentials is seeing secrets: whoever sets a credential's password knows it, and can aim it at a device they control.",
        );
    }
    if has(ManageEnvironments) {
        warn(
            WarningKind::Transitive,
            "manage-environments can delete or disable the environments that other roles' grants and policies are scoped to.",
        );
    }
    if has(ManagePolicies) {
        warn(
            WarningKind::Transitive,
            "manage-policies can write a policy that lets anyone, itself included, request any task without approval.",
        );
    }
    if has(ManageUsers) {
        warn(
            WarningKind::Transitive,
            "manage-users can give any user, itself included, any role.",
        );
    }
    // Held through OS groups: who holds it is decided in the directory.
    let powerful = [
        ManageUsers,
        ManagePolicies,
        RunLocal,
        ManageCredentials,
        ManageTemplates,
    ]
    .into_iter()
    .filter(|a| has(*a))
    .map(|a| a.as_str())
    .collect::<Vec<_>>();
    for r in roles.iter().filter(|r| !r.os_groups.is_empty()) {
        if !powerful.is_empty() {
            warn(
                WarningKind::Transitive,
                &format!(
                    "role {} is held by every member of OS group(s) {} and gives {}: whoever may add people to those groups in the directory gives it.",
                    r.meta.name,
                    r.os_groups.join(", "),
                    powerful.join(", ")
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Grant, Meta};

    fn role(actions: &[Permission]) -> Role {
        Role {
            meta: Meta::named("r"),
            grants: actions
                .iter()
                .map(|a| Grant {
                    action: *a,
                    environments: vec![],
                })
                .collect(),
            ..Role::default()
        }
    }

    #[test]
    fn finds_each_kind_of_problem_and_says_why() {
        let w = analyse(&role(&[Permission::ManageDevices]));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].kind, WarningKind::Nonsensical);
        let w = analyse(&role(&[
            Permission::ViewTemplates,
            Permission::ManageTemplates,
            Permission::ViewTasks,
            Permission::RequestTasks,
        ]));
        assert!(w
            .iter()
            .any(|w| w.kind == WarningKind::ByProxy && w.message.contains("arbitrary commands")));
        let w = analyse(&role(&[
            Permission::ViewEnvironments,
            Permission::ManageEnvironments,
        ]));
        assert!(w.iter().any(|w| w.kind == WarningKind::Transitive));
        assert!(analyse(&role(&[
            Permission::ViewTasks,
            Permission::RequestTasks,
            Permission::ViewExecutions
        ]))
        .is_empty());
        assert!(w.iter().all(|w| w.message.ends_with('.')));
    }

    #[test]
    fn two_roles_together_warn_where_neither_does_alone() {
        use crate::domain::ResourceGrant;
        let writer = Role {
            meta: Meta::named("writer"),
            resources: vec![ResourceGrant {
                kind: Kind::Template,
                name: "restart".into(),
                levels: vec![AccessLevel::Read, AccessLevel::Write],
            }],
            ..Role::default()
        };
        let runner = Role {
            meta: Meta::named("runner"),
            resources: vec![ResourceGrant {
                kind: Kind::Task,
                name: "restart-web".into(),
                levels: vec![AccessLevel::Read, AccessLevel::Run],
            }],
            ..Role::default()
        };
        let reach = Reach {
            tasks: vec![("restart-web".into(), "restart".into(), false)],
            local_templates: vec![],
        };
        let combo = |w: &[RoleWarning]| {
            w.iter().any(|w| {
                w.message
                    .contains("write on template 'restart' with run on task 'restart-web'")
            })
        };
        assert!(!combo(&analyse_together(&[&writer], &reach)));
        assert!(!combo(&analyse_together(&[&runner], &reach)));
        assert!(combo(&analyse_together(&[&writer, &runner], &reach)));
    }

    /// A powerful role held through an OS group is said to be given by the
    /// directory; the same role given only to users is not.
    #[test]
    fn a_powerful_role_held_through_a_group_is_warned_of() {
        let mut r = role(&[Permission::ManageUsers]);
        assert!(!analyse(&r).iter().any(|w| w.message.contains("OS group")));
        r.os_groups = vec!["helpdesk".into()];
        let warnings = analyse(&r);
        assert!(
            warnings.iter().any(
                |w| w.message.contains("every member of OS group(s) helpdesk")
                    && w.message.contains("manage-users")
            ),
            "{warnings:?}"
        );
    }
}
