//! The one question every path asks before it reads or changes anything:
//! may this principal have this effect? Every engine path that lists,
//! reads, imports, clones, enables, deletes, requests, subscribes or runs
//! asks [`authorize`]; nothing else in the program says yes. Pure: what
//! the answer needs from the store comes in [`Facts`].

use super::visibility::{may_see_operation, may_see_request};
use super::{manage_action, view_action, Principal};
use crate::domain::{
    AccessLevel, ExecutionRequest, Executor, Kind, Permission, Policy, Record, Task, SUPERUSER_ROLE,
};

/// What someone wants to do.
#[derive(Clone, Copy)]
pub enum Effect<'a> {
    /// List records of a kind (the list itself is then filtered by `Read`).
    List(Kind),
    /// See one record.
    Read(&'a Record),
    /// Put `incoming` where `stored` is (`None`: create it). Judged on both.
    Change {
        stored: Option<&'a Record>,
        incoming: &'a Record,
    },
    /// Enable or disable a record.
    Toggle(&'a Record),
    /// Delete a record.
    Delete(&'a Record),
    /// Ask to run a task (a policy then decides whether and how).
    Request(&'a Task),
    /// See an operation, its output and its events.
    SeeOperation {
        requested_by: &'a str,
        /// The environment its task runs in; `None` when the task is gone.
        environment: Option<&'a str>,
        /// Whether the caller decided the request it runs.
        decided: bool,
    },
    /// See a request.
    SeeRequest {
        request: &'a ExecutionRequest,
        environment: Option<&'a str>,
        policy: Option<&'a Policy>,
    },
    /// Approve or reject a request at its current level.
    Decide {
        request: &'a ExecutionRequest,
        policy: &'a Policy,
    },
    /// Run a pending request's playbook as a dry run: its requester, or
    /// someone who may decide it now.
    DryRun {
        request: &'a ExecutionRequest,
        policy: Option<&'a Policy>,
    },
    /// Stop an operation that has not ended.
    Cancel { requested_by: &'a str },
    /// Enrol (or replace) a user's own second factor.
    EnrolSecondFactor { login: &'a str },
    /// Take a backup of the whole store.
    Backup,
    /// See the servers of the store and what each holds.
    ClusterStatus,
    /// Stop the server.
    Shutdown { owner: &'a str },
    /// An action that concerns no one record (the audit log, role
    /// analysis, second factors of others).
    Use(Permission),
    /// See an operation's debug trace (beside its output, which
    /// `SeeOperation` covers). `environment`: that of its task.
    SeeDebug { environment: Option<&'a str> },
    /// Be shown a credential's secret. `environment`: that of the device
    /// it belongs to (none: a grant for every environment is needed).
    Reveal {
        credential: &'a Record,
        environment: Option<&'a str>,
    },
    /// Open a privileged session on a device (a covering policy is judged
    /// apart, as for requests).
    OpenSession { device: &'a crate::domain::Device },
    /// See a session and its output: its own user, or a viewer of
    /// executions or a monitor of sessions in its device's environment.
    SeeSession {
        user: &'a str,
        environment: Option<&'a str>,
    },
    /// See what a session's user typed.
    SeeSessionInput { environment: Option<&'a str> },
    /// Watch a running session live, or end it.
    MonitorSession { environment: Option<&'a str> },
    /// Ask how the policies judge `login` (anyone of themselves).
    ExplainFor { login: &'a str },
}

/// What the answer needs to know of the store beyond the records at hand.
pub trait Facts {
    /// The executor of the template named `name`, if it exists.
    fn executor_of(&self, template: &str) -> Option<Executor>;
    /// The template and the chained children of the task named `name`, if it exists.
    fn task_parts(&self, task: &str) -> Option<(String, Vec<String>)>;
    /// The environment of the device named `name`, if it exists.
    fn device_environment(&self, _device: &str) -> Option<String> {
        None
    }
}

/// No facts: every template and task is unknown (for callers that judge
/// neither tasks nor templates).
pub struct NoFacts;

impl Facts for NoFacts {
    fn executor_of(&self, _: &str) -> Option<Executor> {
        None
    }
    fn task_parts(&self, _: &str) -> Option<(String, Vec<String>)> {
        None
    }
}

/// Whether a run of a task with this template and these children runs
/// commands on the Gatehouse host: its own template, or any task chained
/// after it, however deep.
fn chain_runs_locally(template: &str, children: &[String], facts: &dyn Facts) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = children.to_vec();
    if facts.executor_of(template) == Some(Executor::Local) {
        return true;
    }
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some((template, children)) = facts.task_parts(&name) {
            if facts.executor_of(&template) == Some(Executor::Local) {
                return true;
            }
            todo.extend(children);
        }
    }
    false
}

/// Why not, with the permission that would have allowed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub message: String,
    pub needs: Option<Permission>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn deny(who: &Principal<'_>, what: String, needs: Permission) -> Result<(), Denial> {
    Err(Denial {
        message: format!(
            "'{}' may not {what} (needs the {} permission)",
            who.user.meta.name,
            needs.as_str()
        ),
        needs: Some(needs),
    })
}

/// The environment a record lives in, where its kind lives in one.
pub fn environment_of(record: &Record) -> Option<&str> {
    match record {
        Record::Device(d) => Some(&d.environment),
        Record::Task(t) => Some(&t.environment),
        _ => None,
    }
}

/// Whether a record makes commands run on the Gatehouse host itself: a
/// local template, or a task that uses one.
pub fn runs_locally(record: &Record, facts: &dyn Facts) -> bool {
    match record {
        Record::Template(t) => t.executor == Executor::Local,
        Record::Task(t) => chain_runs_locally(&t.template, &t.children, facts),
        _ => false,
    }
}

/// May `who` have `effect`? Deny by default; a disabled user may nothing.
pub fn authorize(who: &Principal<'_>, effect: Effect<'_>, facts: &dyn Facts) -> Result<(), Denial> {
    if !who.user.meta.enabled {
        return Err(Denial {
            message: format!("Gatehouse user '{}' is disabled", who.user.meta.name),
            needs: None,
        });
    }
    match effect {
        Effect::List(kind) => {
            let action = view_action(kind);
            if who.may_somewhere(action) || who.holds_any(kind) {
                Ok(())
            } else {
                deny(who, format!("view {}", kind.plural()), action)
            }
        }
        Effect::Read(record) => {
            let kind = record.kind();
            let action = view_action(kind);
            if who.may(action, environment_of(record))
                || who.holds(kind, record.name(), AccessLevel::Read)
            {
                Ok(())
            } else {
                deny(who, format!("view {kind} '{}'", record.name()), action)
            }
        }
        Effect::Change { stored, incoming } => change(who, stored, incoming, facts),
        Effect::Toggle(record) | Effect::Delete(record) => {
            let kind = record.kind();
            let (level, verb) = match effect {
                Effect::Delete(_) => (AccessLevel::Delete, "delete"),
                _ => (AccessLevel::Write, "change"),
            };
            if kind == Kind::Role && record.name() == SUPERUSER_ROLE {
                return Err(Denial {
                    message: "the built-in Superuser role cannot be changed or deleted".into(),
                    needs: None,
                });
            }
            let action = manage_action(kind);
            if !who.may(action, environment_of(record)) && !who.holds(kind, record.name(), level) {
                return deny(who, format!("{verb} {}", kind.plural()), action);
            }
            // Deleting takes reach away; enabling may give it back.
            if matches!(effect, Effect::Toggle(_))
                && runs_locally(record, facts)
                && !who.may(Permission::RunLocal, None)
            {
                return deny(
                    who,
                    format!(
                        "{verb} {kind} '{}': it runs commands on the Gatehouse host",
                        record.name()
                    ),
                    Permission::RunLocal,
                );
            }
            Ok(())
        }
        Effect::Request(task) => {
            if !who.may(Permission::RequestTasks, Some(&task.environment))
                && !who.holds(Kind::Task, &task.meta.name, AccessLevel::Run)
            {
                return deny(
                    who,
                    format!("request tasks in {}", task.environment),
                    Permission::RequestTasks,
                );
            }
            if chain_runs_locally(&task.template, &task.children, facts)
                && !who.may(Permission::RunLocal, None)
            {
                return deny(
                    who,
                    format!(
                        "request task '{}': it (or a task chained after it) runs commands on the Gatehouse host",
                        task.meta.name
                    ),
                    Permission::RunLocal,
                );
            }
            Ok(())
        }
        Effect::SeeOperation {
            requested_by,
            environment,
            decided,
        } => {
            if may_see_operation(who, requested_by, environment, || decided) {
                Ok(())
            } else {
                deny(
                    who,
                    format!("see {requested_by}'s operations"),
                    Permission::ViewExecutions,
                )
            }
        }
        Effect::SeeRequest {
            request,
            environment,
            policy,
        } => {
            if may_see_request(who, request, environment, policy) {
                Ok(())
            } else {
                deny(
                    who,
                    format!("see request {}", request.id),
                    Permission::ViewExecutions,
                )
            }
        }
        Effect::Decide { request, policy } => {
            super::approval::may_decide(policy, request, who.member())
                .map(|_| ())
                .map_err(|message| Denial {
                    message,
                    needs: None,
                })
        }
        Effect::DryRun { request, policy } => {
            let login = who.user.meta.name.as_str();
            let decides = policy
                .is_some_and(|p| super::approval::may_decide(p, request, who.member()).is_ok());
            if request.requester == login || decides {
                Ok(())
            } else {
                Err(Denial {
                    message: format!(
                        "'{login}' may not ask for a dry run of request {}: only its requester and those who may decide it now",
                        request.id
                    ),
                    needs: None,
                })
            }
        }
        Effect::Cancel { requested_by } => {
            if requested_by == who.user.meta.name || who.is_superuser() {
                Ok(())
            } else {
                Err(Denial {
                    message: format!(
                        "'{}' may not cancel it: it was requested by {requested_by}",
                        who.user.meta.name
                    ),
                    needs: None,
                })
            }
        }
        Effect::EnrolSecondFactor { login } => {
            if login == who.user.meta.name {
                Ok(())
            } else {
                Err(Denial {
                    message: format!(
                        "'{}' may enrol only themselves; an administrator removes another user's second factor with `gatehouse user totp-reset {login}`",
                        who.user.meta.name
                    ),
                    needs: None,
                })
            }
        }
        Effect::Backup => {
            if who.is_superuser() {
                Ok(())
            } else {
                Err(Denial {
                    message: "only a Superuser may back up the store".into(),
                    needs: None,
                })
            }
        }
        Effect::ClusterStatus => {
            if who.is_superuser() {
                Ok(())
            } else {
                Err(Denial {
                    message: "only a Superuser may list the servers of the store".into(),
                    needs: None,
                })
            }
        }
        Effect::Shutdown { owner } => {
            if who.user.meta.name == owner || who.is_superuser() {
                Ok(())
            } else {
                Err(Denial {
                    message: "only the server's owner or a Superuser may stop it".into(),
                    needs: None,
                })
            }
        }
        Effect::ExplainFor { login } => {
            if login == who.user.meta.name
                || who.may(Permission::ViewPolicies, None)
                || who.may(Permission::ManagePolicies, None)
            {
                Ok(())
            } else {
                deny(
                    who,
                    format!("see how the policies judge '{login}'"),
                    Permission::ViewPolicies,
                )
            }
        }
        Effect::Use(action) => {
            if who.may(action, None) {
                Ok(())
            } else {
                deny(who, action_phrase(action).to_string(), action)
            }
        }
        Effect::SeeDebug { environment } => {
            if who.may(Permission::ViewExecutionDebug, environment) {
                Ok(())
            } else {
                deny(
                    who,
                    "see an operation's debug trace".to_string(),
                    Permission::ViewExecutionDebug,
                )
            }
        }
        // Managing a credential is not seeing its secret.
        Effect::Reveal {
            credential,
            environment,
        } => {
            if who.may(Permission::ViewCredentialSecrets, environment) {
                Ok(())
            } else {
                deny(
                    who,
                    format!("see the secret of credential '{}'", credential.name()),
                    Permission::ViewCredentialSecrets,
                )
            }
        }
        Effect::OpenSession { device } => {
            if who.may(Permission::OpenSessions, Some(&device.environment)) {
                Ok(())
            } else {
                deny(
                    who,
                    format!("open a session on device '{}'", device.meta.name),
                    Permission::OpenSessions,
                )
            }
        }
        Effect::SeeSession { user, environment } => {
            if user == who.user.meta.name
                || who.may(Permission::ViewExecutions, environment)
                || who.may(Permission::MonitorSessions, environment)
            {
                Ok(())
            } else {
                deny(
                    who,
                    format!("see a session of {user}"),
                    Permission::ViewExecutions,
                )
            }
        }
        Effect::SeeSessionInput { environment } => {
            if who.may(Permission::ViewSessionInput, environment) {
                Ok(())
            } else {
                deny(
                    who,
                    "see what a session's user typed".into(),
                    Permission::ViewSessionInput,
                )
            }
        }
        Effect::MonitorSession { environment } => {
            if who.may(Permission::MonitorSessions, environment) {
                Ok(())
            } else {
                deny(
                    who,
                    "watch or end sessions".into(),
                    Permission::MonitorSessions,
                )
            }
        }
    }
}

/// What an unscoped action does, for a refusal.
fn action_phrase(action: Permission) -> &'static str {
    match action {
        Permission::ViewAudit => "view the audit log",
        Permission::ExportAudit => "export the audit log",
        Permission::ManageUsers => "manage users and roles",
        Permission::RunLocal => "run commands on the Gatehouse host",
        _ => action.as_str(),
    }
}

/// Creating or changing a record, judged on the record as stored and as it
/// will be: the manage permission must hold in the stored record's
/// environment and in the incoming one's, so a grant scoped to staging can
/// neither take a production record over nor move one in. Write access to
/// the very record changes it in place, not into another environment. A
/// record that runs commands on the Gatehouse host, before or after, also
/// needs run-local.
fn change(
    who: &Principal<'_>,
    stored: Option<&Record>,
    incoming: &Record,
    facts: &dyn Facts,
) -> Result<(), Denial> {
    let kind = incoming.kind();
    let action = manage_action(kind);
    let manage_new = who.may(action, environment_of(incoming));
    let manage_old = stored.is_none_or(|s| who.may(action, environment_of(s)));
    let in_place = stored.is_some_and(|s| {
        who.holds(kind, s.name(), AccessLevel::Write)
            && environment_of(s) == environment_of(incoming)
    });
    let allowed = (manage_new && manage_old) || in_place;
    if !allowed {
        return Err(Denial {
            message: match (stored.and_then(environment_of), environment_of(incoming)) {
                (Some(old), Some(new)) if old != new => format!(
                    "'{}' may not change {kind} '{}' of {old} into {new} (needs the {} permission in both)",
                    who.user.meta.name,
                    incoming.name(),
                    action.as_str()
                ),
                _ => format!(
                    "'{}' may not change {} (needs the {} permission)",
                    who.user.meta.name,
                    kind.plural(),
                    action.as_str()
                ),
            },
            needs: Some(action),
        });
    }
    // A device reached through another uses that device and its
    // credential: the writer must be allowed to change that one too (in
    // its environment; an unknown one needs the permission everywhere).
    if let Record::Device(d) = incoming {
        if let Some(via) = &d.via {
            let environment = facts.device_environment(via);
            if !who.may(Permission::ManageDevices, environment.as_deref())
                && !who.holds(Kind::Device, via, AccessLevel::Write)
            {
                return deny(
                    who,
                    format!(
                        "reach device '{}' through device '{via}', which they may not change",
                        incoming.name()
                    ),
                    Permission::ManageDevices,
                );
            }
        }
    }
    let local = runs_locally(incoming, facts) || stored.is_some_and(|s| runs_locally(s, facts));
    if local && !who.may(Permission::RunLocal, None) {
        return deny(
            who,
            format!(
                "write {kind} '{}': it runs commands on the Gatehouse host",
                incoming.name()
            ),
            Permission::RunLocal,
        );
    }
    // A playbook's controller side (lookups, filters, local files) runs on
    // the Gatehouse host as the [local] user: whoever writes one writes
    // code for that host. Running it is bound to the approved text, so a
    // requester needs no more than for any task.
    let playbook =
        |r: &Record| matches!(r, Record::Template(t) if t.executor == Executor::AnsiblePlaybook);
    if (playbook(incoming) || stored.is_some_and(playbook)) && !who.may(Permission::RunLocal, None)
    {
        return deny(
            who,
            format!(
                "write template '{}': a playbook's lookups and local files run on the Gatehouse host",
                incoming.name()
            ),
            Permission::RunLocal,
        );
    }
    Ok(())
}
