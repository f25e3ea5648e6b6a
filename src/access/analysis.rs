//! Role analysis: grants that make no sense, grants that give more than they
//! say, and grants that reach further than their scope. Warnings, each with
//! one sentence of why; nothing here refuses anything.

use crate::domain::{Action, Role};
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

/// Analyses a role's grants.
pub fn analyse(role: &Role) -> Vec<RoleWarning> {
    let has = |a: Action| role.grants.iter().any(|g| g.action == a);
    let mut out = Vec::new();
    let mut warn = |kind, message: &str| {
        out.push(RoleWarning {
            kind,
            message: message.to_string(),
        })
    };
    use Action::*;
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Grant, Meta};

    fn role(actions: &[Action]) -> Role {
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
        let w = analyse(&role(&[Action::ManageDevices]));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].kind, WarningKind::Nonsensical);
        let w = analyse(&role(&[
            Action::ViewTemplates,
            Action::ManageTemplates,
            Action::ViewTasks,
            Action::RequestTasks,
        ]));
        assert!(w
            .iter()
            .any(|w| w.kind == WarningKind::ByProxy && w.message.contains("arbitrary commands")));
        let w = analyse(&role(&[
            Action::ViewEnvironments,
            Action::ManageEnvironments,
        ]));
        assert!(w.iter().any(|w| w.kind == WarningKind::Transitive));
        assert!(analyse(&role(&[
            Action::ViewTasks,
            Action::RequestTasks,
            Action::ViewExecutions
        ]))
        .is_empty());
        assert!(w.iter().all(|w| w.message.ends_with('.')));
    }
}
