//! Requests become operations; schedules and chains make more; a restart
//! finds what was cut off.

use super::api::{HistoryFilter, RequestSpec};
use super::{Engine, EngineError, Response};
use crate::access::Principal;
use crate::domain::{Id, Kind, OpState, Operation, Record, Task, Timestamp, Trigger};
use crate::store::{Change, NewAuditEvent, OpField};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most operations one history call returns.
/// The most operations one history page holds.
pub const HISTORY_MAX: u32 = 10_000;

impl Engine {
    pub(super) fn task(&self, name: &str) -> Result<Task, EngineError> {
        match self.store.find(Kind::Task, name)? {
            Some(Record::Task(t)) => Ok(t),
            _ => Err(EngineError::NotFound {
                kind: Kind::Task,
                name: name.to_string(),
            }),
        }
    }

    /// Builds the operations of one run of a task, pinned to the current
    /// template revision, checking every variable against its pattern.
    /// An enabled record, or why there is none ("device 'x' is disabled").
    fn enabled(&self, kind: Kind, name: &str) -> Result<Result<Record, String>, EngineError> {
        Ok(match self.store.find(kind, name)? {
            Some(r) if r.meta().enabled => Ok(r),
            Some(_) => Err(format!("{kind} '{name}' is disabled")),
            None => Err(format!("{kind} '{name}' does not exist")),
        })
    }

    // Each argument is one fact about the run; a struct for them would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan(
        &self,
        task: &Task,
        devices: &[String],
        variables: &BTreeMap<String, String>,
        trigger: Trigger,
        requested_by: &str,
        not_before: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<Vec<Operation>, EngineError> {
        let refuse = |message: String| EngineError::Invalid {
            kind: Kind::Task,
            name: task.meta.name.clone(),
            line: 0,
            field: None,
            at: None,
            message,
        };
        let refuse_variable = |variable: &str, message: String| EngineError::Variable {
            task: task.meta.name.clone(),
            variable: variable.to_string(),
            message,
        };
        if !task.meta.enabled {
            return Err(refuse("is disabled".into()));
        }
        // A disabled environment or system is not used, like any disabled record.
        self.enabled(Kind::Environment, &task.environment)?
            .map_err(|e| refuse(format!("its {e}")))?;
        self.enabled(Kind::System, &task.system)?
            .map_err(|e| refuse(format!("its {e}")))?;
        let template = match self
            .enabled(Kind::Template, &task.template)?
            .map_err(|e| refuse(format!("its {e}")))?
        {
            Record::Template(t) => t,
            _ => {
                return Err(refuse(format!(
                    "its template '{}' is not a template",
                    task.template
                )))
            }
        };
        // A task without a credential runs on the Gatehouse host (import
        // checked that its executor needs none).
        let jit = !task.credential.is_empty()
            && match self
                .enabled(Kind::Credential, &task.credential)?
                .map_err(|e| refuse(format!("its {e}")))?
            {
                Record::Credential(c) => {
                    c.jit_grant_template.as_deref() == Some(task.template.as_str())
                }
                _ => false,
            };
        // A JIT grant must end: its revoke is scheduled at the window's end.
        let jit_until = match (jit, until) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => return Err(refuse(
                "grants a just-in-time privilege: request it with --duration so that it is revoked"
                    .into(),
            )),
        };
        let chosen: Vec<String> = if devices.is_empty() {
            task.devices.clone()
        } else {
            devices.to_vec()
        };
        for d in &chosen {
            // A chained child runs on its parent's device, listed or not.
            if !matches!(trigger, Trigger::Chain { .. }) && !task.devices.contains(d) {
                return Err(refuse(format!(
                    "device '{d}' is not one of this task's devices"
                )));
            }
            self.enabled(Kind::Device, d)?.map_err(refuse)?;
        }
        if let Some(unknown) = variables
            .keys()
            .find(|k| !template.variables.iter().any(|v| &v.name == *k))
        {
            return Err(refuse_variable(
                unknown,
                format!(
                    "variable {unknown}: template '{}' declares no such variable",
                    template.meta.name
                ),
            ));
        }
        let mut values = BTreeMap::new();
        for v in &template.variables {
            let value = variables
                .get(&v.name)
                .or_else(|| task.variables.get(&v.name))
                .cloned()
                .or_else(|| v.default.clone())
                .unwrap_or_default();
            crate::template::check_value(v, &value).map_err(|m| refuse_variable(&v.name, m))?;
            // Expect lines are typed into a shell: one plain line each.
            if template.executor == crate::domain::Executor::SshExpect
                && value.chars().any(char::is_control)
            {
                return Err(refuse_variable(
                    &v.name,
                    format!(
                        "variable {}: the value holds a line break or another control character, which an ssh-expect template cannot type as one line",
                        v.name
                    ),
                ));
            }
            values.insert(v.name.clone(), value);
        }
        let request = self.store.next_id()?;
        let now = Timestamp::now();
        chosen
            .into_iter()
            .map(|device| {
                Ok(Operation {
                    id: self.store.next_id()?,
                    request,
                    task: task.meta.name.clone(),
                    template: template.meta.name.clone(),
                    template_id: template.meta.id,
                    template_revision: template.meta.revision,
                    executor: template.executor,
                    device,
                    credential: task.credential.clone(),
                    variables: values.clone(),
                    trigger: trigger.clone(),
                    requested_by: requested_by.to_string(),
                    superuser_bypass: false,
                    state: OpState::Queued,
                    attempts: 0,
                    max_attempts: task.retries + 1,
                    rerun: crate::domain::Rerun::of(task.retry_on_failure, task.idempotent),
                    timeout_secs: task.timeout_secs,
                    exit_status: None,
                    created_at: now,
                    not_before: not_before.max(now),
                    started_at: None,
                    finished_at: None,
                    error: None,
                    jit_until,
                    output_bytes: 0,
                    output_truncated: false,
                })
            })
            .collect()
    }

    /// Stores the operations with their audit event, flushed, then starts them.
    pub(super) async fn launch(
        &self,
        task: &Task,
        ops: Vec<Operation>,
        actor: &str,
        action: &str,
        details: String,
    ) -> Result<(), EngineError> {
        let Some(first) = ops.first() else {
            return Ok(());
        };
        let target = format!("task {} (request {})", task.meta.name, first.request);
        let mut changes: Vec<Change> = ops
            .iter()
            .map(|o| Change::PutOperation(Box::new(o.clone())))
            .collect();
        changes.shrink_to_fit();
        self.journal
            .commit(
                changes,
                vec![NewAuditEvent::new(actor, action, target, details)],
            )
            .await?;
        self.hand_over(ops, task.parallelism as usize);
        Ok(())
    }

    /// A person's request to run a task now (or at a given time).
    pub(super) async fn request(
        &self,
        who: &Principal<'_>,
        spec: RequestSpec,
    ) -> Result<Response, EngineError> {
        let login = who.user.meta.name.clone();
        // Superusers run without a policy (marked so in the audit); everyone
        // else goes through the access policies.
        if !who.is_superuser() {
            return self.request_under_policy(who, spec).await;
        }
        let task = self.task(&spec.task)?;
        self.authorize(who, crate::access::Effect::Request(&task))?;
        if spec.check {
            return Err(EngineError::Denied(
                "--check files a request for approval with a dry run beside it; a Superuser's run has no policy and no approval, so it would run at once".into(),
            ));
        }
        if spec.schedule {
            return self.superuser_schedule(who, &task, &spec).await;
        }
        let mut ops = self.plan(
            &task,
            &spec.devices,
            &spec.variables,
            Trigger::User,
            &login,
            spec.at.unwrap_or_else(Timestamp::now),
            spec.until,
        )?;
        for op in &mut ops {
            op.superuser_bypass = true;
        }
        let mut details = format!(
            "devices: {}; variables: {}",
            ops.iter()
                .map(|o| o.device.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            ops.first()
                .map(|o| o
                    .variables
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
        if who.is_superuser() {
            details.push_str("; as Superuser, without a policy");
        }
        for (label, value) in [
            ("reason", &spec.reason),
            ("justification", &spec.justification),
            ("governance id", &spec.governance_id),
        ] {
            if let Some(v) = value {
                details.push_str(&format!("; {label}: {v}"));
            }
        }
        self.launch(&task, ops.clone(), &login, "task.request", details)
            .await?;
        Ok(Response::Requested {
            request: ops.first().map(|o| o.request).unwrap_or_default(),
            operations: ops,
        })
    }

    /// An operation the caller may see, or why not.
    pub(super) fn visible_operation(
        &self,
        who: &Principal<'_>,
        id: Id,
    ) -> Result<Operation, EngineError> {
        let op = self.operation(id)?;
        if !self.visibility_facts()?.operation(&self.store, who, &op) {
            return Err(EngineError::Denied(format!(
                "'{}' may not see operation {id} (another user's: needs view-executions in its environment)",
                who.user.meta.name
            )));
        }
        Ok(op)
    }

    /// An operation's stored output from `from` on; its debug trace only
    /// when asked for, to holders of view-execution-debug in its environment.
    pub(super) async fn output(
        &self,
        who: &Principal<'_>,
        id: Id,
        mut from: u64,
        limit: u32,
        debug: bool,
    ) -> Result<Response, EngineError> {
        let op = self.visible_operation(who, id)?;
        // Reading someone else's output is audited: once per reader and
        // operation while this server runs (not for every page or look,
        // nor for one's own).
        if from == 0 && op.requested_by != who.user.meta.name && self.first_read(who, op.id) {
            self.audit(vec![NewAuditEvent::new(
                &who.user.meta.name,
                "output.read",
                op.audit_target(),
                format!(
                    "output of {}'s operation{}",
                    op.requested_by,
                    if debug { ", with its debug trace" } else { "" }
                ),
            )])
            .await?;
        }
        let limit = limit.min(100_000) as usize;
        if debug {
            let environment = self.task(&op.task).ok().map(|t| t.environment);
            self.authorize(
                who,
                crate::access::Effect::SeeDebug {
                    environment: environment.as_deref(),
                },
            )?;
            return Ok(Response::Output(self.store.output(id, from, limit)?));
        }
        // Without the trace: read on past pages that held only trace, so
        // that an empty answer still means the end.
        loop {
            let page = self.store.output(id, from, limit)?;
            let Some(last) = page.last() else {
                return Ok(Response::Output(page));
            };
            from = last.seq + 1;
            let shown: Vec<_> = page
                .into_iter()
                .filter(|c| c.stream != crate::domain::Stream::Debug)
                .collect();
            if !shown.is_empty() {
                return Ok(Response::Output(shown));
            }
        }
    }

    pub(super) fn operations(
        &self,
        who: &Principal<'_>,
        states: &[OpState],
    ) -> Result<Response, EngineError> {
        let facts = self.visibility_facts()?;
        // What has not ended is read from its own index, newest first.
        if states.iter().all(|s| !s.is_final()) {
            let mut ops = self.store.unfinished_operations()?;
            ops.retain(|o| {
                (states.is_empty() || states.contains(&o.state))
                    && facts.operation(&self.store, who, o)
            });
            ops.reverse();
            ops.truncate(HISTORY_MAX as usize);
            return Ok(Response::Operations(ops));
        }
        let ops = self
            .store
            .operations_newest_first(None, HISTORY_MAX as usize, None, |o| {
                states.contains(&o.state) && facts.operation(&self.store, who, o)
            })?;
        Ok(Response::Operations(ops))
    }

    pub(super) fn history(
        &self,
        who: &Principal<'_>,
        filter: &HistoryFilter,
    ) -> Result<Response, EngineError> {
        let facts = self.visibility_facts()?;
        let limit = if filter.limit == 0 {
            HISTORY_MAX
        } else {
            filter.limit.min(HISTORY_MAX)
        };
        let needle = filter
            .text
            .as_ref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty());
        let output = filter
            .output
            .as_ref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty());
        let ops = self.store.operations_newest_first(
            filter.before,
            limit as usize,
            narrowed(filter),
            |o| {
                facts.operation(&self.store, who, o)
                    && filtered(filter, o)
                    && needle.as_ref().is_none_or(|n| {
                        [&o.task, &o.device, &o.requested_by, &o.template]
                            .iter()
                            .any(|f| f.to_lowercase().contains(n.as_str()))
                            || o.error
                                .as_ref()
                                .is_some_and(|e| e.to_lowercase().contains(n.as_str()))
                    })
                    && output.as_ref().is_none_or(|t| self.output_holds(o, t))
            },
        )?;
        Ok(Response::Operations(ops))
    }

    pub(super) fn operation(&self, id: Id) -> Result<Operation, EngineError> {
        self.store
            .operation(id)?
            .ok_or_else(|| EngineError::Missing(format!("operation {id}")))
    }

    pub(super) async fn cancel(
        &self,
        who: &Principal<'_>,
        id: Id,
    ) -> Result<Response, EngineError> {
        // Someone who may not see it learns nothing of it, not even whose it is.
        let op = self.visible_operation(who, id)?;
        self.authorize(
            who,
            crate::access::Effect::Cancel {
                requested_by: &op.requested_by,
            },
        )
        .map_err(|e| match e {
            EngineError::Denied(m) => EngineError::Denied(format!("operation {id}: {m}")),
            other => other,
        })?;
        if op.state.is_final() {
            return Err(EngineError::Denied(format!(
                "operation {id} has already ended ({})",
                op.state
            )));
        }
        if !self.runner.cancel(id) {
            return Err(EngineError::Denied(format!(
                "operation {id} is not running on this server"
            )));
        }
        self.audit(vec![NewAuditEvent::new(
            &who.user.meta.name,
            "operation.cancel",
            op.audit_target(),
            "",
        )])
        .await?;
        Ok(Response::Done)
    }

    /// Operations a stopped server left unfinished: those that were running
    /// are marked interrupted, and run again where attempts remain.
    pub(super) async fn recover(&self) -> Result<(), EngineError> {
        let mut mine = Vec::new();
        for op in self.store.unfinished_operations()? {
            // On a shared store, another live server's operations are its own.
            if self.runs_elsewhere(op.id)? {
                continue;
            }
            mine.push(op);
        }
        self.resume(mine, "the server stopped while it ran").await
    }

    /// Takes over the unfinished operations of a server that died: those
    /// it ran are interrupted (or retried where attempts are left), those
    /// it had queued run here.
    pub(super) async fn take_over(&self, dead: u64) -> Result<(), EngineError> {
        self.end_sessions_of(dead).await?;
        let theirs: Vec<Operation> = self
            .store
            .unfinished_with_claims()?
            .into_iter()
            .filter(|(_, claim)| *claim == Some(dead))
            .map(|(op, _)| op)
            .collect();
        if theirs.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            server = dead,
            operations = theirs.len(),
            "taking over the work of a server that stopped"
        );
        self.resume(
            theirs,
            "the jump host running it stopped; the remote command may have run",
        )
        .await
    }

    /// Hands operations to this server's runner, claiming them first on a
    /// shared store (so that a survivor knows whose they were).
    pub(super) fn hand_over(&self, ops: Vec<Operation>, parallelism: usize) {
        // What this server cannot reach stays queued and unclaimed, for a
        // server that can ([cluster] environments).
        let (ops, elsewhere): (Vec<Operation>, Vec<Operation>) =
            ops.into_iter().partition(|o| self.reaches(&o.device));
        for o in &elsewhere {
            tracing::info!(op = %o.id, device = %o.device, "left for a server that reaches its environment");
        }
        if !elsewhere.is_empty() {
            let ids: Vec<Id> = elsewhere.iter().map(|o| o.id).collect();
            if let Err(e) = self.store.release_claims(&ids) {
                tracing::error!(error = %e, "cannot release operations");
            }
        }
        if let Some(me) = self.server_id() {
            let ids: Vec<Id> = ops.iter().map(|o| o.id).collect();
            if let Err(e) = self.store.claim_operations(me, &ids) {
                tracing::error!(error = %e, "cannot claim operations");
            }
        }
        if !ops.is_empty() {
            self.runner.submit(ops, parallelism);
        }
    }

    /// Unfinished operations this server now runs: a cut-off attempt with
    /// none left is interrupted (saying `stopped`), one with attempts left
    /// is queued again; every other is queued here.
    async fn resume(&self, ops: Vec<Operation>, stopped: &str) -> Result<(), EngineError> {
        let mut resume: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
        for mut op in ops {
            let was_running = matches!(op.state, OpState::Running | OpState::Retrying);
            let target = op.audit_target();
            if was_running && op.attempts >= op.max_attempts {
                op.state = OpState::Interrupted;
                op.finished_at = Some(Timestamp::now());
                op.error = Some(stopped.to_string());
                // What it printed before the stop is stored: say how much.
                op.output_bytes = self.stored_output_bytes(op.id)?;
                self.journal
                    .commit(
                        vec![Change::PutOperation(Box::new(op.clone()))],
                        vec![NewAuditEvent::new(
                            "gatehouse",
                            "operation.interrupted",
                            target,
                            format!("{stopped}; no attempts left"),
                        )],
                    )
                    .await?;
                continue;
            }
            if was_running {
                op.state = OpState::Queued;
                op.error = Some(format!(
                    "interrupted during attempt {}; resumed",
                    op.attempts
                ));
                self.journal
                    .commit(
                        vec![Change::PutOperation(Box::new(op.clone()))],
                        vec![NewAuditEvent::new(
                            "gatehouse",
                            "operation.interrupted",
                            target,
                            format!("{stopped}; retried"),
                        )],
                    )
                    .await?;
            }
            resume.entry(op.task.clone()).or_default().push(op);
        }
        for (task, ops) in resume {
            let parallelism = self
                .task(&task)
                .map(|t| t.parallelism as usize)
                .unwrap_or(10);
            self.hand_over(ops, parallelism);
        }
        Ok(())
    }

    /// Child tasks run on the device where their parent succeeded.
    pub(super) async fn chain(&self, parent: &Operation) -> Result<(), EngineError> {
        if parent.state != OpState::Succeeded {
            return Ok(());
        }
        let Ok(task) = self.task(&parent.task) else {
            return Ok(());
        };
        for child_name in &task.children {
            let result = async {
                let child = self.task(child_name)?;
                // The child runs for the parent's requester: they must
                // still be allowed to ask for it.
                let person = self.principal_records(&parent.requested_by)?;
                let requester = person.principal();
                self.authorize(&requester, crate::access::Effect::Request(&child))?;
                let ops = self.plan(
                    &child,
                    std::slice::from_ref(&parent.device),
                    &BTreeMap::new(),
                    Trigger::Chain { parent: parent.id },
                    &parent.requested_by,
                    Timestamp::now(),
                    None,
                )?;
                // Part of the parent's request: the start of each is checked
                // against what that request pinned, chained tasks included.
                let mut ops = ops;
                for op in &mut ops {
                    op.request = parent.request;
                    op.superuser_bypass = parent.superuser_bypass;
                }
                self.launch(
                    &child,
                    ops,
                    &parent.requested_by,
                    "task.chain",
                    format!(
                        "after operation {} succeeded on {}",
                        parent.id, parent.device
                    ),
                )
                .await
            }
            .await;
            if let Err(e) = result {
                self.audit(vec![NewAuditEvent::new(
                    "gatehouse",
                    "task.chain.refused",
                    format!("task {child_name}"),
                    e.to_string(),
                )])
                .await?;
            }
        }
        Ok(())
    }

    /// Whether the server has work that should keep it alive.
    pub fn busy(&self) -> bool {
        self.runner.active() > 0
            || self.has_open_grants()
            || self
                .store
                .list(Kind::Task)
                .map(|tasks| {
                    tasks.iter().any(
                        |t| matches!(t, Record::Task(t) if t.meta.enabled && t.schedule.is_some()),
                    )
                })
                .unwrap_or(false)
    }

    /// Starts the engine's own work: recovery, chains and schedules.
    pub async fn start(
        self: &Arc<Self>,
        mut finished: tokio::sync::mpsc::UnboundedReceiver<Operation>,
    ) -> Result<(), EngineError> {
        // On a shared store: say who is up before deciding whose work is whose.
        self.join_cluster().await?;
        self.recover().await?;
        self.conclude_stranded_changes().await?;
        self.end_interrupted_sessions().await?;
        let engine = self.clone();
        tokio::spawn(async move {
            while let Some(op) = finished.recv().await {
                if let Err(e) = engine.record_grant(&op).await {
                    tracing::error!(op = %op.id, error = %e, "cannot record a JIT grant");
                }
                if let Err(e) = engine.chain(&op).await {
                    tracing::error!(op = %op.id, error = %e, "cannot start child tasks");
                }
                if let Err(e) = engine.conclude_change(&op).await {
                    tracing::error!(op = %op.id, error = %e, "cannot conclude a password change");
                }
                if let Err(e) = engine.rotate_after_use(&op).await {
                    tracing::error!(op = %op.id, error = %e, "cannot change a used password");
                }
            }
        });
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = engine.fire_schedules().await {
                    tracing::error!(error = %e, "schedules");
                }
                // Housekeeping is the leader's (on a store of one's own,
                // this server's): two servers would do it twice.
                if !engine.leads() {
                    continue;
                }
                if let Err(e) = engine.expire_requests().await {
                    tracing::error!(error = %e, "request expiry");
                }
                if let Err(e) = engine.tick_jit().await {
                    tracing::error!(error = %e, "JIT revokes");
                }
                if let Err(e) = engine.rotate_due().await {
                    tracing::error!(error = %e, "credential rotation");
                }
                if let Err(e) = engine.verify_due().await {
                    tracing::error!(error = %e, "password checks");
                }
            }
        });
        Ok(())
    }
}

impl Engine {
    /// Whether this is `who`'s first read of operation `id` during this
    /// server's run (the set is emptied when it grows past 100,000, so a
    /// read is audited again rather than memory growing without end).
    fn first_read(&self, who: &Principal<'_>, id: Id) -> bool {
        let mut seen = self.reads_audited.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert((who.user.meta.name.clone(), id))
    }
}

/// The index to read when a filter names a task, device or user: only
/// their operations are read.
pub(super) fn narrowed(filter: &HistoryFilter) -> Option<(OpField, &str)> {
    None.or(filter.task.as_deref().map(|t| (OpField::Task, t)))
        .or(filter.device.as_deref().map(|d| (OpField::Device, d)))
        .or(filter.user.as_deref().map(|u| (OpField::User, u)))
}

/// Whether an operation passes a filter's task, user, device, state and
/// time (visibility and text are asked apart).
pub(super) fn filtered(filter: &HistoryFilter, o: &Operation) -> bool {
    filter.task.as_ref().is_none_or(|t| &o.task == t)
        && filter.user.as_ref().is_none_or(|u| &o.requested_by == u)
        && filter.device.as_ref().is_none_or(|d| &o.device == d)
        && filter.state.is_none_or(|s| o.state == s)
        && filter.since.is_none_or(|since| o.created_at >= since)
}
