//! Schedules run under someone's authority. A task's cron expression says
//! when; a request says who and what: made with `--schedule` through the
//! same path as any request (policy, justification, approval, MFA), it
//! pins the task, its template, devices, credential and chained tasks.
//! Each firing runs as that request, under its requester's name (a
//! Superuser's marked as such), and is checked as any run is. A change to
//! anything pinned, or a requester who is gone, suspends the schedule
//! (the request is void, saying why) until a new request is approved; a
//! firing outside the policy's window, or after the request's window, is
//! refused and audited.

use super::{Engine, EngineError};
use crate::access::{Effect, Principal};
use crate::domain::{
    parse_schedule, ExecutionRequest, Kind, Record, RequestState, Task, Timestamp, Trigger,
};
use crate::store::NewAuditEvent;

/// Where a task's schedule stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScheduleState {
    /// Nobody asked: it does not run.
    Unauthorised,
    /// A request for it waits for approval.
    Pending,
    /// It runs under an approved request.
    Authorised,
    /// Something it pinned changed: it does not run until a new request is approved.
    Suspended,
}

impl std::fmt::Display for ScheduleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScheduleState::Unauthorised => "not authorised",
            ScheduleState::Pending => "pending approval",
            ScheduleState::Authorised => "authorised",
            ScheduleState::Suspended => "suspended",
        })
    }
}

/// A scheduled task and the request it runs under.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleStatus {
    pub task: String,
    pub expr: String,
    pub enabled: bool,
    pub state: ScheduleState,
    /// The request that authorises it (or did, or waits to).
    pub authority: Option<Box<ExecutionRequest>>,
}

/// How long a schedule's authority lasts when the request names no end.
pub const DEFAULT_SCHEDULE_WINDOW_MS: i64 = 90 * 24 * 3_600_000;

impl Engine {
    /// The schedule a request authorises, if it asks to: the task's own,
    /// for all its devices, now; or why such a request is malformed.
    pub(super) fn schedule_of(
        &self,
        task: &Task,
        spec: &super::api::RequestSpec,
    ) -> Result<Option<String>, String> {
        if !spec.schedule {
            return Ok(None);
        }
        let Some(expr) = task.schedule.clone() else {
            return Err(format!(
                "task '{}' has no schedule to authorise",
                task.meta.name
            ));
        };
        if spec.emergency || spec.at.is_some() || !spec.devices.is_empty() {
            return Err(
                "a schedule is authorised for all the task's devices, from now, and never as an emergency"
                    .into(),
            );
        }
        Ok(Some(expr))
    }

    /// A Superuser's schedule: no policy, approved at once, marked as such.
    pub(super) async fn superuser_schedule(
        &self,
        who: &Principal<'_>,
        task: &Task,
        spec: &super::api::RequestSpec,
    ) -> Result<super::Response, EngineError> {
        let schedule = self.schedule_of(task, spec).map_err(EngineError::Denied)?;
        let now = Timestamp::now();
        // Variables are checked now, not first at the first firing.
        self.plan(
            task,
            &[],
            &spec.variables,
            Trigger::User,
            &who.user.meta.name,
            now,
            None,
        )?;
        let mut req = ExecutionRequest {
            id: self.store.next_id()?,
            task: task.meta.name.clone(),
            devices: task.devices.clone(),
            variables: spec.variables.clone(),
            reason: spec.reason.clone(),
            justification: spec.justification.clone(),
            governance_id: spec.governance_id.clone(),
            requester: who.user.meta.name.clone(),
            policy: None,
            window_start: now,
            window_end: spec
                .until
                .unwrap_or(Timestamp(now.0 + DEFAULT_SCHEDULE_WINDOW_MS)),
            state: RequestState::Approved,
            decisions: Vec::new(),
            pinned: self.pin(task, &task.devices)?,
            created_at: now,
            operations: Vec::new(),
            void_reason: None,
            schedule,
            kind: crate::domain::RequestKind::Task,
            change: None,
        };
        let login = who.user.meta.name.clone();
        self.authorise_schedule(&mut req, &login).await?;
        Ok(super::Response::Filed(Box::new(req)))
    }

    /// Shows a schedule request waiting for approval as its task's, unless
    /// an approved one still holds (which runs on until this one is decided).
    pub(super) async fn file_schedule(&self, req: &ExecutionRequest) -> Result<(), EngineError> {
        let current = match self.store.schedule_authority(&req.task)? {
            Some(id) => self.store.request(id)?,
            None => None,
        };
        if !current.is_some_and(|c| c.state == RequestState::Approved) {
            self.store
                .set_schedule_authority(&req.task, Some(req.id))
                .await?;
        }
        Ok(())
    }

    /// Makes an approved schedule request its task's authority, unless
    /// what it pinned has changed (then it is void, saying what).
    pub(super) async fn authorise_schedule(
        &self,
        req: &mut ExecutionRequest,
        actor: &str,
    ) -> Result<(), EngineError> {
        let target = req.target();
        if let Some(why) = self.void_if_drifted(req, actor).await? {
            return Err(EngineError::Denied(format!(
                "request {} does not authorise the schedule: {why}",
                req.id
            )));
        }
        self.store
            .set_schedule_authority(&req.task, Some(req.id))
            .await?;
        self.save_request(
            req,
            vec![NewAuditEvent::new(
                actor,
                "schedule.authorise",
                target,
                format!(
                    "schedule '{}' runs as {}'s request{} until {}",
                    req.schedule.as_deref().unwrap_or_default(),
                    req.requester,
                    if req.policy.is_none() {
                        ", as Superuser, without a policy"
                    } else {
                        ""
                    },
                    req.window_end.to_utc().to_rfc3339()
                ),
            )],
        )
        .await?;
        Ok(())
    }

    /// The schedule's authority of a task, and why it does not hold now,
    /// if it does not: `Err` when there is none at all.
    pub(super) fn schedule_authority(
        &self,
        task: &Task,
    ) -> Result<Option<ExecutionRequest>, EngineError> {
        let Some(id) = self.store.schedule_authority(&task.meta.name)? else {
            return Ok(None);
        };
        let req = self.store.request(id)?;
        Ok(req.filter(|r| r.schedule.is_some() && r.task == task.meta.name))
    }

    /// Why the schedule's authority is gone for good (so the schedule is
    /// suspended), if it is.
    fn authority_lost(&self, req: &ExecutionRequest) -> Result<Option<String>, EngineError> {
        if req.state != RequestState::Approved {
            return Ok(Some(format!("request {} is {}", req.id, req.state)));
        }
        if let Some(why) = self.drifted(req)? {
            return Ok(Some(why));
        }
        if req.schedule.as_deref()
            != self
                .task(&req.task)
                .ok()
                .and_then(|t| t.schedule)
                .as_deref()
        {
            return Ok(Some("the task's schedule changed".into()));
        }
        match self.principal_records(&req.requester) {
            Ok(person) => {
                let who = person.principal();
                if req.policy.is_none() && !who.is_superuser() {
                    return Ok(Some(format!(
                        "'{}' authorised it as a Superuser and no longer is one",
                        req.requester
                    )));
                }
                let task = self.task(&req.task)?;
                if let Err(e) = self.authorize(&who, Effect::Request(&task)) {
                    return Ok(Some(e.to_string()));
                }
            }
            Err(e) => return Ok(Some(e.to_string())),
        }
        Ok(None)
    }

    /// Each scheduled task the caller may see, with who authorises it.
    pub(super) fn schedules(&self, who: &Principal<'_>) -> Result<super::Response, EngineError> {
        let mut out = Vec::new();
        for record in self.store.list(Kind::Task)? {
            let Record::Task(task) = &record else {
                continue;
            };
            let Some(expr) = task.schedule.clone() else {
                continue;
            };
            if self.authorize(who, Effect::Read(&record)).is_err() {
                continue;
            }
            let authority = self.schedule_authority(task)?;
            let state = match &authority {
                None => ScheduleState::Unauthorised,
                Some(r) if r.state == RequestState::Approved => ScheduleState::Authorised,
                Some(r) if matches!(r.state, RequestState::Pending { .. }) => {
                    ScheduleState::Pending
                }
                Some(r) if r.state == RequestState::Void => ScheduleState::Suspended,
                Some(_) => ScheduleState::Unauthorised,
            };
            out.push(ScheduleStatus {
                task: task.meta.name.clone(),
                expr,
                enabled: task.meta.enabled,
                state,
                authority: authority.map(Box::new),
            });
        }
        Ok(super::Response::Schedules(out))
    }

    /// Suspends a schedule: its request is void, saying why.
    async fn suspend_schedule(
        &self,
        mut req: ExecutionRequest,
        why: String,
    ) -> Result<(), EngineError> {
        // The void request stays the task's authority, so that the task
        // shows why its schedule is suspended until a new one is approved.
        req.state = RequestState::Void;
        req.void_reason = Some(format!(
            "{why}; the schedule is suspended until a new request authorises it"
        ));
        let target = format!("task {} (request {})", req.task, req.id);
        self.save_request(
            &req,
            vec![NewAuditEvent::new(
                "gatehouse",
                "task.schedule.suspended",
                target,
                why,
            )],
        )
        .await
    }

    /// Fires the schedules that are due; a run missed while the server was
    /// down fires once, marked late.
    pub(super) async fn fire_schedules(&self) -> Result<(), EngineError> {
        let now = Timestamp::now();
        for record in self.store.list(Kind::Task)? {
            let Record::Task(task) = record else { continue };
            let Some(expr) = task.schedule.clone().filter(|_| task.meta.enabled) else {
                continue;
            };
            let Ok(schedule) = parse_schedule(&expr) else {
                continue;
            };
            let Some(mark) = self.store.schedule_mark(&task.meta.name)? else {
                self.store.take_schedule_run(&task.meta.name, None, now)?;
                continue;
            };
            let Some(due) = schedule.after(&mark.to_utc()).next() else {
                continue;
            };
            if due.timestamp_millis() > now.0 {
                continue;
            }
            // Exactly once across servers: the one that moves the mark fires.
            if !self
                .store
                .take_schedule_run(&task.meta.name, Some(mark), now)?
            {
                continue;
            }
            let late = now.0 - due.timestamp_millis() > 60_000;
            if let Err(why) = self.fire(&task, due.timestamp_millis(), late).await? {
                self.refused(
                    "gatehouse",
                    "task.schedule.refused",
                    &format!("task {}", task.meta.name),
                    &why,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// One due firing of a task's schedule: `Ok(Err(why))` when it does not run.
    async fn fire(
        &self,
        task: &Task,
        due_ms: i64,
        late: bool,
    ) -> Result<Result<(), String>, EngineError> {
        let Some(req) = self.schedule_authority(task)? else {
            return Ok(Err(format!(
                "no request authorises the schedule of task '{}': someone whom a policy lets request it runs `gatehouse request {} --schedule`",
                task.meta.name, task.meta.name
            )));
        };
        match &req.state {
            RequestState::Approved => {}
            RequestState::Void => {
                return Ok(Err(format!(
                    "the schedule is suspended: {}",
                    req.void_reason.as_deref().unwrap_or("its request is void")
                )))
            }
            other => {
                return Ok(Err(format!(
                    "request {} for the schedule is {other}",
                    req.id
                )))
            }
        }
        if let Some(why) = self.authority_lost(&req)? {
            self.suspend_schedule(req, why.clone()).await?;
            return Ok(Err(format!("the schedule is suspended: {why}")));
        }
        // Window and policy: this firing is refused, the schedule stays.
        if let Err(why) = self.request_still_holds(&req) {
            return Ok(Err(why));
        }
        let now = Timestamp::now();
        let mut ops = match self.plan(
            task,
            &req.devices,
            &req.variables,
            Trigger::Schedule { late },
            &req.requester,
            now,
            None,
        ) {
            Ok(ops) => ops,
            Err(e) => return Ok(Err(e.to_string())),
        };
        for op in &mut ops {
            op.request = req.id;
            op.superuser_bypass = req.policy.is_none();
        }
        let details = format!(
            "due {}{}; under request {} of {}{}",
            Timestamp(due_ms),
            if late {
                ", late: missed while the server was down"
            } else {
                ""
            },
            req.id,
            req.requester,
            match &req.policy {
                Some(p) => format!(" (policy {p})"),
                None => ", as Superuser, without a policy".into(),
            }
        );
        self.launch(task, ops, &req.requester, "task.schedule", details)
            .await?;
        Ok(Ok(()))
    }
}
