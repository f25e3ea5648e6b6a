//! Dry runs: a pending request's playbook run with `--check --diff` on its
//! devices, before anyone decides it, so that approvers see what it would
//! change. Asked by its requester or by someone who may decide it now;
//! refused for a playbook that forces tasks out of check mode (they would
//! change things without the approval). Its operations are shown with the
//! request (`request show`, the Approvals tab).

use super::api::DryRunView;
use super::{Engine, EngineError, Response};
use crate::access::{Effect, Principal};
use crate::domain::{ExecutionRequest, Executor, Id, RequestState, Stream, Trigger};

/// How much of a dry run's output the request's view carries.
const SHOWN_LINES: usize = 60;

impl Engine {
    pub(super) async fn dry_run(
        &self,
        who: &Principal<'_>,
        id: Id,
    ) -> Result<Response, EngineError> {
        let request = self.load_request(id)?;
        let policy = match &request.policy {
            Some(name) => Some(self.policy(name)?),
            None => None,
        };
        self.authorize(
            who,
            Effect::DryRun {
                request: &request,
                policy: policy.as_ref(),
            },
        )?;
        let refuse = |why: String| EngineError::Denied(why);
        if !request.is_task() || !matches!(request.state, RequestState::Pending { .. }) {
            return Err(refuse(format!(
                "request {id} is {}: a dry run is for a task's request that waits for approval",
                request.state
            )));
        }
        if let Some(why) = self.drifted(&request)? {
            return Err(refuse(format!(
                "request {id} changed since it was made: {why}"
            )));
        }
        let task = self.task(&request.task)?;
        let pinned = &request.pinned;
        let template = self
            .store
            .template_revision(pinned.template_id, pinned.template_revision)?
            .ok_or_else(|| refuse(format!("request {id}'s template revision is missing")))?;
        if template.executor != Executor::AnsiblePlaybook {
            return Err(refuse(format!(
                "a dry run is for playbooks: template '{}' runs {}",
                template.meta.name,
                template.executor.as_str()
            )));
        }
        if let Some(line) = crate::exec::ansible::playbook::forces_real_runs(&template.content) {
            return Err(refuse(format!(
                "line {line} of template '{}' sets check_mode to false: that task would change things even in a dry run, so this playbook has no dry run without approval",
                template.meta.name
            )));
        }
        let login = who.user.meta.name.clone();
        let ops = self.plan(
            &task,
            &request.devices,
            &request.variables,
            Trigger::DryRun { request: id },
            &login,
            crate::domain::Timestamp::now(),
            None,
        )?;
        let details = format!(
            "dry run (--check --diff) of request {id}, still pending; devices: {}",
            request.devices.join(", ")
        );
        self.launch(&task, ops.clone(), &login, "request.dry-run", details)
            .await?;
        Ok(Response::Requested {
            request: ops.first().map(|o| o.request).unwrap_or_default(),
            operations: ops,
        })
    }

    /// The dry runs of a request, newest first, each with the end of its
    /// output (stored redacted, made printable).
    pub(super) fn dry_runs_of(
        &self,
        request: &ExecutionRequest,
    ) -> Result<Vec<DryRunView>, EngineError> {
        let mut found = Vec::new();
        // Dry runs come after their request: ids only grow.
        self.store.visit_newest_first(|op| {
            if op.id < request.id {
                return false;
            }
            if op.trigger
                == (Trigger::DryRun {
                    request: request.id,
                })
            {
                found.push(op.clone());
            }
            found.len() < 50
        })?;
        let mut views = Vec::new();
        for op in found {
            let mut text = String::new();
            for chunk in self.store.output(op.id, 0, 100_000)? {
                if chunk.stream != Stream::Debug {
                    text.push_str(&String::from_utf8_lossy(&chunk.bytes));
                }
            }
            let lines: Vec<String> = text.lines().map(crate::text::printable).collect();
            let from = lines.len().saturating_sub(SHOWN_LINES);
            views.push(DryRunView {
                operation: op.id,
                device: op.device.clone(),
                state: op.state.as_str().to_string(),
                requested_by: op.requested_by.clone(),
                error: op.error.clone(),
                output: lines[from..].to_vec(),
            });
        }
        Ok(views)
    }
}
