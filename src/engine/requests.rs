//! Requests under access policies: filing, approving level by level,
//! rejecting, expiring, emergency access, and running exactly what was approved.

use super::api::RequestSpec;
use super::{Engine, EngineError, Response};
use crate::access::approval::{may_decide, next_level};
use crate::access::policy::{check_fields, covering_policy, RequestFields};
use crate::access::Principal;
use crate::domain::{
    ChildPin, Decision, ExecutionRequest, Id, Kind, Pinned, Policy, Record, RequestState, Task,
    Timestamp, Trigger,
};
use crate::store::{Change, NewAuditEvent};

/// A window without an end given lasts a day.
const DEFAULT_WINDOW_MS: i64 = 24 * 3_600_000;

/// An approver's second factor for one approval.
enum Mfa {
    /// Checked already, for a whole batch.
    Checked,
    /// The code given with this approval (if any).
    Code(Option<String>),
}

fn denied(message: impl Into<String>) -> EngineError {
    EngineError::Denied(message.into())
}

impl Engine {
    pub(super) fn policies(&self) -> Result<Vec<Policy>, EngineError> {
        Ok(self
            .store
            .list(Kind::Policy)?
            .into_iter()
            .filter_map(|r| match r {
                Record::Policy(p) => Some(p),
                _ => None,
            })
            .collect())
    }

    pub(super) fn policy(&self, name: &str) -> Result<Policy, EngineError> {
        match self.store.find(Kind::Policy, name)? {
            Some(Record::Policy(p)) => Ok(p),
            _ => Err(denied(format!("policy {name} no longer exists"))),
        }
    }

    fn revision_of(&self, kind: Kind, name: &str) -> Result<Option<(u32, bool)>, EngineError> {
        Ok(self
            .store
            .find(kind, name)?
            .map(|r| (r.meta().revision, r.meta().enabled)))
    }

    /// The revisions an approval binds.
    pub(super) fn pin(&self, task: &Task, devices: &[String]) -> Result<Pinned, EngineError> {
        let template = self
            .store
            .find(Kind::Template, &task.template)?
            .ok_or_else(|| denied(format!("template '{}' does not exist", task.template)))?;
        let credential = self
            .revision_of(Kind::Credential, &task.credential)?
            .map(|r| r.0)
            .unwrap_or(0);
        let mut pinned_devices = Vec::new();
        for d in devices {
            pinned_devices.push((
                d.clone(),
                self.revision_of(Kind::Device, d)?.map(|r| r.0).unwrap_or(0),
            ));
        }
        Ok(Pinned {
            task_revision: task.meta.revision,
            template_id: template.meta().id,
            template_revision: template.meta().revision,
            credential_revision: credential,
            devices: pinned_devices,
            children: self.pin_children(task)?,
        })
    }

    /// The tasks chained after `task`, however deep, each once, as they are now.
    fn pin_children(&self, task: &Task) -> Result<Vec<ChildPin>, EngineError> {
        let mut pins: Vec<ChildPin> = Vec::new();
        let mut todo: Vec<String> = task.children.clone();
        while let Some(name) = todo.pop() {
            if name == task.meta.name || pins.iter().any(|p| p.task == name) {
                continue;
            }
            let Some(Record::Task(child)) = self.store.find(Kind::Task, &name)? else {
                return Err(denied(format!("chained task '{name}' does not exist")));
            };
            let (template_id, template_revision) =
                match self.store.find(Kind::Template, &child.template)? {
                    Some(t) => (t.meta().id, t.meta().revision),
                    None => (crate::domain::Id(0), 0),
                };
            todo.extend(child.children.iter().cloned());
            pins.push(ChildPin {
                task: name,
                task_revision: child.meta.revision,
                template_id,
                template_revision,
            });
        }
        Ok(pins)
    }

    /// Why the chained tasks are not as pinned, if they are not.
    fn children_drifted(
        &self,
        task: &Task,
        pinned: &[ChildPin],
    ) -> Result<Option<String>, EngineError> {
        if pinned.is_empty() && !task.children.is_empty() {
            return Ok(Some(format!(
                "it was made before chained tasks were pinned, and task '{}' chains {}: request it again",
                task.meta.name,
                task.children.join(", ")
            )));
        }
        for pin in pinned {
            let Some(Record::Task(child)) = self.store.find(Kind::Task, &pin.task)? else {
                return Ok(Some(format!(
                    "chained task '{}' no longer exists",
                    pin.task
                )));
            };
            if !child.meta.enabled {
                return Ok(Some(format!("chained task '{}' was disabled", pin.task)));
            }
            if child.meta.revision != pin.task_revision {
                return Ok(Some(format!(
                    "chained task '{}' changed since it was approved (revision {} → {})",
                    pin.task, pin.task_revision, child.meta.revision
                )));
            }
            match self.store.get(Kind::Template, pin.template_id)? {
                Some(t) if t.meta().revision != pin.template_revision => {
                    return Ok(Some(format!(
                        "template '{}' of chained task '{}' changed since it was approved (revision {} → {})",
                        t.name(),
                        pin.task,
                        pin.template_revision,
                        t.meta().revision
                    )))
                }
                Some(t) if t.name() != child.template => {
                    return Ok(Some(format!(
                        "chained task '{}' now uses template '{}'",
                        pin.task, child.template
                    )))
                }
                None => {
                    return Ok(Some(format!(
                        "the template of chained task '{}' no longer exists",
                        pin.task
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }

    /// Why an approved request can no longer run as approved, if it can't.
    pub(super) fn drifted(&self, req: &ExecutionRequest) -> Result<Option<String>, EngineError> {
        let bound: Vec<(Kind, &str)> = match &req.kind {
            // A reveal binds the credential, not its password (which
            // rotation changes); a session its device and credential.
            crate::domain::RequestKind::Reveal(r) => vec![(Kind::Credential, &r.credential)],
            crate::domain::RequestKind::Session(s) => {
                vec![(Kind::Device, &s.device), (Kind::Credential, &s.credential)]
            }
            crate::domain::RequestKind::Task => Vec::new(),
        };
        if !req.is_task() {
            for (kind, name) in bound {
                match self.store.find(kind, name)? {
                    Some(r) if r.meta().enabled => {}
                    Some(_) => return Ok(Some(format!("{kind} '{name}' was disabled"))),
                    None => return Ok(Some(format!("{kind} '{name}' no longer exists"))),
                }
            }
            return Ok(None);
        }
        let task = match self.store.find(Kind::Task, &req.task)? {
            Some(Record::Task(t)) => t,
            _ => return Ok(Some(format!("task '{}' no longer exists", req.task))),
        };
        if !task.meta.enabled {
            return Ok(Some(format!("task '{}' was disabled", req.task)));
        }
        if task.meta.revision != req.pinned.task_revision {
            return Ok(Some(format!(
                "task '{}' changed since it was approved (revision {} → {})",
                req.task, req.pinned.task_revision, task.meta.revision
            )));
        }
        match self.store.get(Kind::Template, req.pinned.template_id)? {
            Some(t) if !t.meta().enabled => {
                return Ok(Some(format!("template '{}' was disabled", t.name())))
            }
            Some(t) if t.meta().revision != req.pinned.template_revision => {
                return Ok(Some(format!(
                    "template '{}' changed since it was approved (revision {} → {})",
                    t.name(),
                    req.pinned.template_revision,
                    t.meta().revision
                )))
            }
            None => return Ok(Some("the approved template no longer exists".into())),
            Some(_) => {}
        }
        match self.revision_of(Kind::Credential, &task.credential)? {
            // No credential: a template that runs on the Gatehouse host.
            None if task.credential.is_empty() => {}
            Some((_, false)) => {
                return Ok(Some(format!(
                    "credential '{}' was disabled",
                    task.credential
                )))
            }
            Some((r, true)) if r != req.pinned.credential_revision => {
                return Ok(Some(format!(
                    "credential '{}' changed since it was approved",
                    task.credential
                )))
            }
            None => {
                return Ok(Some(format!(
                    "credential '{}' no longer exists",
                    task.credential
                )))
            }
            Some(_) => {}
        }
        if let Some(why) = self.children_drifted(&task, &req.pinned.children)? {
            return Ok(Some(why));
        }
        for (device, revision) in &req.pinned.devices {
            match self.revision_of(Kind::Device, device)? {
                Some((_, false)) => return Ok(Some(format!("device '{device}' was disabled"))),
                Some((r, true)) if r != *revision => {
                    return Ok(Some(format!(
                        "device '{device}' changed since it was approved"
                    )))
                }
                None => return Ok(Some(format!("device '{device}' no longer exists"))),
                Some(_) => {}
            }
        }
        Ok(None)
    }

    pub(super) async fn save_request(
        &self,
        req: &ExecutionRequest,
        events: Vec<NewAuditEvent>,
    ) -> Result<(), EngineError> {
        self.journal
            .commit(vec![Change::PutRequest(Box::new(req.clone()))], events)
            .await?;
        Ok(())
    }

    /// Voids a request, saying why, audited as `actor`'s.
    pub(super) async fn void_request(
        &self,
        req: &mut ExecutionRequest,
        actor: &str,
        why: String,
    ) -> Result<(), EngineError> {
        req.state = RequestState::Void;
        req.void_reason = Some(why.clone());
        let target = req.target();
        self.save_request(
            req,
            vec![NewAuditEvent::new(actor, "request.void", target, why)],
        )
        .await
    }

    /// Voids a request whose pinned records changed, saying what changed;
    /// `Some(why)` when it did.
    pub(super) async fn void_if_drifted(
        &self,
        req: &mut ExecutionRequest,
        actor: &str,
    ) -> Result<Option<String>, EngineError> {
        let Some(why) = self.drifted(req)? else {
            return Ok(None);
        };
        self.void_request(req, actor, why.clone()).await?;
        Ok(Some(why))
    }

    /// Runs an approved (or emergency) request exactly as approved, or
    /// voids it saying what changed.
    async fn run_request(
        &self,
        req: &mut ExecutionRequest,
        actor: &str,
    ) -> Result<(), EngineError> {
        if let Some(why) = self.void_if_drifted(req, actor).await? {
            return Err(denied(format!("request {} does not run: {why}", req.id)));
        }
        let task = self.task(&req.task)?;
        let mut ops = self.plan(
            &task,
            &req.devices,
            &req.variables,
            Trigger::User,
            &req.requester,
            req.window_start,
            Some(req.window_end),
        )?;
        for op in &mut ops {
            op.request = req.id;
        }
        req.operations = ops.iter().map(|o| o.id).collect();
        self.save_request(req, vec![]).await?;
        let details = format!(
            "request {} ({}): devices {}",
            req.id,
            req.state,
            req.devices.join(", ")
        );
        self.launch(&task, ops, actor, "request.run", details).await
    }

    /// What the request form of `task` needs to show this user.
    pub(super) fn request_terms(
        &self,
        who: &Principal<'_>,
        task: &str,
    ) -> Result<Response, EngineError> {
        let task = self.task(task)?;
        self.authorize(who, crate::access::Effect::Request(&task))?;
        let variables = match self.store.find(Kind::Template, &task.template)? {
            Some(Record::Template(t)) => t.variables,
            _ => Vec::new(),
        };
        let reasons = self
            .store
            .list(Kind::Reason)?
            .into_iter()
            .filter(|r| r.meta().enabled)
            .map(|r| r.name().to_string())
            .collect();
        let mut terms = crate::engine::api::RequestTerms {
            task: task.meta.name.clone(),
            description: task.description.clone(),
            devices: task.devices.clone(),
            variables,
            task_values: task.variables.clone(),
            reasons,
            superuser: who.is_superuser(),
            ..Default::default()
        };
        if !terms.superuser {
            let policies = self.policies()?;
            let now_utc = chrono::Utc::now();
            match covering_policy(&policies, who.member(), &task, &task.devices, now_utc) {
                Ok(p) => {
                    terms.policy = Some(p.meta.name.clone());
                    terms.requires_approval = p.requires_approval;
                    terms.approval_levels = p.approvers.iter().map(|a| a.level).max().unwrap_or(0);
                    terms.requires_justification = p.requires_justification;
                    terms.requires_governance_id = p.requires_governance_id;
                    terms.requires_reason = p.requires_reason;
                    terms.requires_mfa = p.requires_mfa;
                    terms.emergency_access = p.emergency_access;
                    terms.requires_change = p.requires_change;
                    terms.windows = p
                        .windows
                        .iter()
                        .map(|w| {
                            format!(
                                "{} ({})",
                                crate::access::policy::describe_window(w),
                                crate::access::policy::zone_of(p)
                            )
                        })
                        .collect();
                }
                Err(why) => terms.refusal = Some(why),
            }
        }
        Ok(Response::Terms(Box::new(terms)))
    }

    /// A request by someone who is not a Superuser: a policy must cover it.
    pub(super) async fn request_under_policy(
        &self,
        who: &Principal<'_>,
        spec: RequestSpec,
    ) -> Result<Response, EngineError> {
        let login = who.user.meta.name.clone();
        let task = self.task(&spec.task)?;
        let target = format!("task {}", spec.task);
        let refuse = |why: String| async move {
            self.audit(vec![NewAuditEvent::new(
                &login,
                "request.refused",
                target,
                why.clone(),
            )])
            .await?;
            Err::<Response, EngineError>(denied(why))
        };
        if let Err(denial) = crate::access::authorize(
            who,
            crate::access::Effect::Request(&task),
            &super::StoreFacts(&self.store),
        ) {
            return refuse(denial.message).await;
        }
        let devices = if spec.devices.is_empty() {
            task.devices.clone()
        } else {
            spec.devices.clone()
        };
        let policies = self.policies()?;
        let now_utc = chrono::Utc::now();
        // A request is judged for when it would run: now, or the start a
        // deferred one (--at) asks for. Filing tonight's run this
        // afternoon is allowed; the run still starts only inside the
        // window (the gate asks again then).
        let deferred = spec.at.filter(|at| at.to_utc() > now_utc);
        let starts_at = deferred.map(|t| t.to_utc()).unwrap_or(now_utc);
        let policy = match covering_policy(&policies, who.member(), &task, &devices, starts_at) {
            Ok(p) => p.clone(),
            Err(why) => {
                return refuse(match deferred {
                    Some(at) => format!("--at {}: {why}", at.to_utc().to_rfc3339()),
                    None => why,
                })
                .await
            }
        };
        let reason_enabled = match &spec.reason {
            Some(r) => matches!(self.store.find(Kind::Reason, r)?, Some(rec) if rec.meta().enabled),
            None => false,
        };
        let fields = RequestFields {
            reason: spec.reason.as_deref(),
            reason_enabled,
            justification: spec.justification.as_deref(),
            governance_id: spec.governance_id.as_deref(),
            change: spec.change.as_ref().map(|c| c.code.as_str()),
            emergency: spec.emergency,
        };
        if let Err(why) = check_fields(&policy, &fields) {
            return refuse(why).await;
        }
        // A freeze over its environments when it would start: nothing but
        // an emergency request runs (and that one says so in the audit).
        let freeze = self.freeze_on(&task, &devices, starts_at)?;
        if let (Some((_, why)), false) = (&freeze, spec.emergency) {
            return refuse(why.clone()).await;
        }
        // MFA binds every request of the policy: the approvers give codes
        // where it needs approval; where nobody approves (no approval
        // required, or emergency access), the requester gives one.
        if policy.requires_mfa && (spec.emergency || !policy.requires_approval) {
            match self
                .check_totp(&who.user.meta.name, spec.totp.as_deref())
                .await
            {
                Ok(()) => {}
                // A lockout is audited once, not at every refused attempt.
                Err(e @ EngineError::MfaLocked { .. }) => return Err(e),
                // Audited like any refusal, and told as what it is (the
                // form asks for a code on MfaRequired).
                Err(e) => {
                    self.audit(vec![NewAuditEvent::new(
                        &who.user.meta.name,
                        "request.refused",
                        format!("task {}", spec.task),
                        e.to_string(),
                    )])
                    .await?;
                    return Err(e);
                }
            }
        }
        let now = Timestamp::now();
        let schedule = match self.schedule_of(&task, &spec) {
            Ok(s) => s,
            Err(why) => return refuse(why).await,
        };
        let window_start = spec.at.unwrap_or(now).max(now);
        let window_end = spec.until.unwrap_or(Timestamp(
            window_start.0
                + if schedule.is_some() {
                    super::schedules::DEFAULT_SCHEDULE_WINDOW_MS
                } else {
                    DEFAULT_WINDOW_MS
                },
        ));
        if window_end <= window_start {
            return Err(denied("the requested window ends before it starts"));
        }
        // Variables and devices are checked now, not only when it runs.
        self.plan(
            &task,
            &devices,
            &spec.variables,
            Trigger::User,
            &who.user.meta.name,
            now,
            spec.until,
        )?;
        // A dry run goes with a request that waits for approval; one that
        // would run at once is refused, not run for real.
        if spec.check && (spec.emergency || !policy.requires_approval || schedule.is_some()) {
            return refuse(format!(
                "--check files a request for approval with a dry run beside it; under policy {} this one {}",
                policy.meta.name,
                if schedule.is_some() {
                    "authorises a schedule"
                } else {
                    "needs no approval and would run at once (run it without --check, or ask a dry run of a pending request: request check ID)"
                }
            ))
            .await;
        }
        let state = if spec.emergency {
            RequestState::Emergency
        } else if policy.requires_approval {
            RequestState::Pending { level: 1 }
        } else {
            RequestState::Approved
        };
        let mut req = ExecutionRequest {
            id: self.store.next_id()?,
            task: task.meta.name.clone(),
            devices: devices.clone(),
            variables: spec.variables.clone(),
            reason: spec.reason.clone(),
            justification: spec.justification.clone(),
            governance_id: spec.governance_id.clone(),
            requester: who.user.meta.name.clone(),
            policy: Some(policy.meta.name.clone()),
            window_start,
            window_end,
            state,
            decisions: Vec::new(),
            pinned: self.pin(&task, &devices)?,
            created_at: now,
            operations: Vec::new(),
            void_reason: None,
            schedule,
            kind: crate::domain::RequestKind::Task,
            change: spec.change.clone(),
        };
        let action = if spec.emergency {
            "request.emergency"
        } else {
            "request.create"
        };
        let details = format!(
            "policy {}; {}{}; devices {}; justification: {}; governance id: {}; reason: {}",
            policy.meta.name,
            match &freeze {
                Some((f, _)) =>
                    format!(" during freeze '{}' (until {})", f.meta.name, f.end_text()),
                None => String::new(),
            },
            req.state,
            devices.join(", "),
            req.justification.as_deref().unwrap_or("-"),
            req.governance_id.as_deref().unwrap_or("-"),
            req.reason.as_deref().unwrap_or("-")
        );
        let mut events = vec![NewAuditEvent::new(
            &req.requester,
            action,
            req.target(),
            details,
        )];
        // A declared plan: the template's lines beyond it are reported now,
        // before anyone approves.
        if let (Some(change), Some(Record::Template(t))) = (
            &req.change,
            self.store.find(Kind::Template, &task.template)?,
        ) {
            let beyond = change.unexpected_lines(&t.content);
            if !beyond.is_empty() {
                events.push(NewAuditEvent::new(
                    &req.requester,
                    "change.deviation",
                    req.target(),
                    format!(
                        "template {} has {} line(s) outside the plan of change {}: {}",
                        t.meta.name,
                        beyond.len(),
                        crate::text::printable(&change.code),
                        crate::text::printable(&beyond.join(" | "))
                    ),
                ));
            }
        }
        self.save_request(&req, events).await?;
        match req.state {
            RequestState::Pending { .. } => {
                if req.schedule.is_some() {
                    self.file_schedule(&req).await?;
                }
                Ok(Response::Filed(Box::new(req)))
            }
            _ if req.schedule.is_some() => {
                let requester = req.requester.clone();
                self.authorise_schedule(&mut req, &requester).await?;
                Ok(Response::Filed(Box::new(req)))
            }
            _ => {
                let requester = req.requester.clone();
                self.run_request(&mut req, &requester).await?;
                let ops = req
                    .operations
                    .iter()
                    .filter_map(|id| self.store.operation(*id).ok().flatten())
                    .collect();
                Ok(Response::Requested {
                    request: req.id,
                    operations: ops,
                })
            }
        }
    }

    pub(super) fn load_request(&self, id: Id) -> Result<ExecutionRequest, EngineError> {
        self.store
            .request(id)?
            .ok_or_else(|| EngineError::Missing(format!("request {id}")))
    }

    /// The request, its policy, the level `login` may decide now and the
    /// audit target; a refusal is audited under `refused_action`.
    async fn decidable(
        &self,
        login: &str,
        id: Id,
        refused_action: &str,
    ) -> Result<(ExecutionRequest, Policy, u8, String), EngineError> {
        let req = self.load_request(id)?;
        let policy = self.policy(req.policy.as_deref().unwrap_or_default())?;
        let target = req.target();
        let person = self.principal_records(login)?;
        let who = person.principal();
        let judged = crate::access::authorize(
            &who,
            crate::access::Effect::Decide {
                request: &req,
                policy: &policy,
            },
            &super::StoreFacts(&self.store),
        )
        .map_err(|d| d.message)
        .and_then(|()| may_decide(&policy, &req, who.member()));
        match judged {
            Ok(level) => Ok((req, policy, level, target)),
            Err(why) => {
                self.audit(vec![NewAuditEvent::new(
                    login,
                    refused_action,
                    target,
                    why.clone(),
                )])
                .await?;
                Err(denied(why))
            }
        }
    }

    /// Approves the current level; the last level's approval runs it.
    pub(super) async fn approve(
        &self,
        who: &Principal<'_>,
        id: Id,
        comment: String,
        until: Option<Timestamp>,
        totp: Option<String>,
    ) -> Result<Response, EngineError> {
        self.approve_one(who, id, comment, until, Mfa::Code(totp))
            .await
    }

    /// Decides several requests with one comment and one code: the code
    /// is checked once, before any is decided (a code works once), then
    /// each request is decided on its own and its outcome reported.
    pub(super) async fn decide_many(
        &self,
        who: &Principal<'_>,
        ids: Vec<Id>,
        approve: bool,
        comment: String,
        until: Option<Timestamp>,
        totp: Option<String>,
    ) -> Result<Response, EngineError> {
        if ids.is_empty() {
            return Err(denied("name at least one request"));
        }
        if !approve && comment.trim().is_empty() {
            return Err(denied("a rejection needs a comment saying why (--comment)"));
        }
        let login = who.user.meta.name.clone();
        let needs_code = approve
            && ids.iter().any(|id| {
                self.store
                    .request(*id)
                    .ok()
                    .flatten()
                    .and_then(|r| r.policy)
                    .and_then(|p| self.policy(&p).ok())
                    .is_some_and(|p| p.requires_mfa)
            });
        if needs_code {
            let target = match ids.as_slice() {
                [one] => self
                    .store
                    .request(*one)?
                    .map(|r| r.target())
                    .unwrap_or_else(|| format!("request {one}")),
                many => format!(
                    "requests {}",
                    many.iter()
                        .map(Id::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.approver_code(&login, totp.as_deref(), target).await?;
        }
        let mut outcomes = Vec::new();
        for id in ids {
            // Checked above only where a policy wanted it then; a request
            // whose policy wants it now is checked with the code given.
            let mfa = if needs_code {
                Mfa::Checked
            } else {
                Mfa::Code(totp.clone())
            };
            let result = if approve {
                self.approve_one(who, id, comment.clone(), until, mfa).await
            } else {
                self.reject(who, id, comment.clone()).await
            };
            let outcome = match result {
                Ok(Response::Requests(r)) => Ok(r
                    .first()
                    .map(|r| r.state.to_string())
                    .unwrap_or_else(|| "decided".into())),
                Ok(_) => Ok(if approve { "approved" } else { "rejected" }.into()),
                Err(e) => Err(e.to_string()),
            };
            outcomes.push(super::api::Decided { id, outcome });
        }
        Ok(Response::Decided(outcomes))
    }

    /// Checks an approver's TOTP code; each wrong one is audited under
    /// `target` (a lockout once, by the check itself).
    async fn approver_code(
        &self,
        login: &str,
        totp: Option<&str>,
        target: String,
    ) -> Result<(), EngineError> {
        match self.check_totp(login, totp).await {
            Ok(()) => Ok(()),
            Err(e @ EngineError::MfaLocked { .. }) => Err(e),
            Err(e) => {
                self.audit(vec![NewAuditEvent::new(
                    login,
                    "request.approve.refused",
                    target,
                    e.to_string(),
                )])
                .await?;
                Err(e)
            }
        }
    }

    /// Approves one request's current level; `mfa` says whether the
    /// approver's code was checked already (a batch) or is given here.
    async fn approve_one(
        &self,
        who: &Principal<'_>,
        id: Id,
        comment: String,
        until: Option<Timestamp>,
        mfa: Mfa,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let login = who.user.meta.name.clone();
        let (mut req, policy, level, target) = self
            .decidable(&login, id, "request.approve.refused")
            .await?;
        if policy.requires_approval_comment && comment.trim().is_empty() {
            return Err(denied(format!(
                "policy {} requires a comment with every approval (--comment)",
                policy.meta.name
            )));
        }
        if let (true, Mfa::Code(totp)) = (policy.requires_mfa, mfa) {
            self.approver_code(&login, totp.as_deref(), target.clone())
                .await?;
        }
        let now = Timestamp::now();
        if now > req.window_end {
            req.state = RequestState::Expired;
            self.save_request(
                &req,
                vec![NewAuditEvent::new(
                    "gatehouse",
                    "request.expire",
                    target,
                    "its window ended undecided",
                )],
            )
            .await?;
            return Err(denied(format!("request {id} expired: its window ended")));
        }
        // Every level approves what was requested, not what it became: a
        // stale request is voided at the first approval that sees it.
        if let Some(why) = self.void_if_drifted(&mut req, &login).await? {
            return Err(denied(format!("request {id} is void: {why}")));
        }
        let narrowed_to = match until {
            Some(t) if t > req.window_end => {
                return Err(denied(
                    "--until may narrow the requested window, not widen it",
                ))
            }
            Some(t) if t <= now.max(req.window_start) => {
                return Err(denied("--until lies before the window starts"))
            }
            Some(t) => {
                req.window_end = t;
                Some(t)
            }
            None => None,
        };
        req.decisions.push(Decision {
            approver: login.clone(),
            level,
            approved: true,
            comment: comment.clone(),
            time: now,
            narrowed_to,
        });
        req.state = match next_level(&policy, level) {
            Some(next) => RequestState::Pending { level: next },
            None => RequestState::Approved,
        };
        let details = format!(
            "level {level} approved{}; now {}{}",
            if comment.is_empty() {
                String::new()
            } else {
                format!(": {comment}")
            },
            req.state,
            narrowed_to
                .map(|t| format!("; window narrowed to end {t}"))
                .unwrap_or_default()
        );
        self.save_request(
            &req,
            vec![NewAuditEvent::new(
                &login,
                "request.approve",
                target,
                details,
            )],
        )
        .await?;
        if req.state == RequestState::Approved && req.is_task() {
            if req.schedule.is_some() {
                self.authorise_schedule(&mut req, &login).await?;
            } else {
                self.run_request(&mut req, &login).await?;
            }
        }
        Ok(Response::Requests(vec![req]))
    }

    /// Rejects a request at its current level; that ends it.
    pub(super) async fn reject(
        &self,
        who: &Principal<'_>,
        id: Id,
        comment: String,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let login = who.user.meta.name.clone();
        if comment.trim().is_empty() {
            return Err(denied("a rejection needs a comment saying why (--comment)"));
        }
        let (mut req, _, level, target) =
            self.decidable(&login, id, "request.reject.refused").await?;
        req.decisions.push(Decision {
            approver: login.clone(),
            level,
            approved: false,
            comment: comment.clone(),
            time: Timestamp::now(),
            narrowed_to: None,
        });
        req.state = RequestState::Rejected;
        self.save_request(
            &req,
            vec![NewAuditEvent::new(
                &login,
                "request.reject",
                target,
                format!("level {level}: {comment}"),
            )],
        )
        .await?;
        Ok(Response::Requests(vec![req]))
    }

    /// What this user may decide now, oldest first, and emergency notices for them.
    pub(super) fn queue(&self, who: &Principal<'_>) -> Result<Response, EngineError> {
        let login = who.user.meta.name.as_str();
        let policies = self.policies()?;
        let mut out = self.store.requests_newest_first(usize::MAX, |r| {
            let Some(p) = r
                .policy
                .as_ref()
                .and_then(|n| policies.iter().find(|p| &p.meta.name == n))
            else {
                return false;
            };
            match r.state {
                RequestState::Pending { .. } => may_decide(p, r, who.member()).is_ok(),
                // An emergency waits for its review, then leaves the queue.
                RequestState::Emergency => {
                    r.requester != login
                        && p.approvers.iter().any(|a| who.member().is(&a.user))
                        && matches!(self.store.review(r.id), Ok(None))
                }
                _ => false,
            }
        })?;
        out.reverse();
        Ok(Response::Requests(out))
    }

    pub(super) fn requests(
        &self,
        who: &Principal<'_>,
        mine: bool,
    ) -> Result<Response, EngineError> {
        let login = who.user.meta.name.as_str();
        let facts = self.visibility_facts()?;
        Ok(Response::Requests(self.store.requests_newest_first(
            10_000,
            |r| {
                if mine {
                    r.requester == login
                } else {
                    facts.request(who, r)
                }
            },
        )?))
    }

    /// One request: for whoever may see executions, its requester and its deciders.
    pub(super) fn request_of(&self, who: &Principal<'_>, id: Id) -> Result<Response, EngineError> {
        let login = who.user.meta.name.as_str();
        let request = self
            .store
            .request(id)?
            .ok_or_else(|| EngineError::Missing(format!("request {id}")))?;
        if !self.visibility_facts()?.request(who, &request) {
            return Err(denied(format!(
                "'{login}' may not see request {id} (needs view-executions)"
            )));
        }
        Ok(Response::Requests(vec![request]))
    }

    /// The template revision a request pinned, and the current one when newer.
    /// Whether `who` may see what a request runs: its requester, one of
    /// its policy's approvers, or someone who may read the template.
    pub(super) fn may_see_what_runs(
        &self,
        who: &Principal<'_>,
        request: &ExecutionRequest,
    ) -> Result<(), EngineError> {
        let login = who.user.meta.name.as_str();
        let approver = match &request.policy {
            Some(name) => self.policies()?.iter().any(|p| {
                &p.meta.name == name && p.approvers.iter().any(|a| who.member().is(&a.user))
            }),
            None => false,
        };
        let template = self.store.get(Kind::Template, request.pinned.template_id)?;
        let reads_template = template
            .as_ref()
            .is_some_and(|t| self.authorize(who, crate::access::Effect::Read(t)).is_ok());
        if approver || request.requester == login || reads_template {
            Ok(())
        } else {
            Err(denied(format!(
                "'{login}' may not see what request {} runs: neither its requester nor one of its approvers",
                request.id
            )))
        }
    }

    pub(super) fn pinned_template(
        &self,
        who: &Principal<'_>,
        id: Id,
    ) -> Result<Response, EngineError> {
        let request = self.load_request(id)?;
        if !request.is_task() {
            return Err(EngineError::NotFound {
                kind: Kind::Template,
                name: format!(
                    "a template of request {id}: it asks for a {}, which runs none",
                    request.subject()
                ),
            });
        }
        self.may_see_what_runs(who, &request)?;
        let template_id = request.pinned.template_id;
        let pinned = self
            .store
            .template_revision(template_id, request.pinned.template_revision)?
            .ok_or_else(|| EngineError::NotFound {
                kind: Kind::Template,
                name: format!(
                    "revision {} of template {template_id}",
                    request.pinned.template_revision
                ),
            })?;
        let mut out = vec![Record::Template(pinned)];
        if let Some(Record::Template(current)) = self.store.get(Kind::Template, template_id)? {
            if current.meta.revision != request.pinned.template_revision {
                out.push(Record::Template(current));
            }
        }
        Ok(Response::Records(out))
    }

    /// Pending requests whose window ended expire.
    pub(super) async fn expire_requests(&self) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let due = self.store.requests_newest_first(usize::MAX, |r| {
            matches!(r.state, RequestState::Pending { .. }) && r.window_end < now
        })?;
        for mut req in due {
            req.state = RequestState::Expired;
            let target = req.target();
            self.save_request(
                &req,
                vec![NewAuditEvent::new(
                    "gatehouse",
                    "request.expire",
                    target,
                    "its window ended undecided",
                )],
            )
            .await?;
        }
        Ok(())
    }
}
