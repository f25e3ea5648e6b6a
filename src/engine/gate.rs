//! The last word before an operation starts: the same questions as at
//! request and approval time, asked again now. Between approval and start
//! lie queues, deferred starts, restarts and other people's changes; what
//! runs is what was approved, by someone still allowed to ask for it,
//! inside its window, or nothing runs.

use super::{Engine, EngineError};
use crate::access::policy::covering_policy;
use crate::access::Effect;
use crate::domain::{ExecutionRequest, Operation, RequestState, Timestamp, Trigger};
use std::sync::{Arc, Weak};

impl Engine {
    /// Why `op` may not start now, if it may not.
    pub(super) fn may_start(&self, op: &Operation) -> Result<(), String> {
        // A JIT revoke takes a privilege back: it runs whatever became of
        // the person who was granted it.
        if matches!(op.trigger, Trigger::JitExpiry { .. }) {
            return Ok(());
        }
        // A password change is the engine's own work, started for someone
        // allowed to change the credential (or by its triggers): it runs
        // while the change it belongs to is under way.
        if let Trigger::CredentialChange { credential, .. } = &op.trigger {
            return self.change_under_way(credential, op.id);
        }
        let text = |e: EngineError| e.to_string();
        // A dry run previews a pending request: it runs while that request
        // still waits, unchanged, for its decision.
        if let Trigger::DryRun { request } = op.trigger {
            let req = self
                .store
                .request(request)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("request {request} no longer exists"))?;
            if !matches!(req.state, RequestState::Pending { .. }) {
                return Err(format!(
                    "request {request} is {}: a dry run is for a request that waits for approval",
                    req.state
                ));
            }
            if let Some(why) = self.drifted(&req).map_err(text)? {
                return Err(format!("request {request} changed: {why}"));
            }
            return Ok(());
        }
        // A session's grant runs for its opener, who must still be allowed
        // to open sessions on the device (the policy was judged a moment
        // ago, when the session was asked for).
        if let Trigger::Session { .. } = op.trigger {
            let person = self.principal_records(&op.requested_by).map_err(text)?;
            let who = person.principal();
            let device = match self.store.find(crate::domain::Kind::Device, &op.device) {
                Ok(Some(crate::domain::Record::Device(d))) => d,
                _ => return Err(format!("device '{}' no longer exists", op.device)),
            };
            return self
                .authorize(&who, Effect::OpenSession { device: &device })
                .map_err(text);
        }
        // The requester: still a Gatehouse user, enabled, and still allowed
        // to ask for this task.
        let person = self.principal_records(&op.requested_by).map_err(text)?;
        let who = person.principal();
        let task = self.task(&op.task).map_err(text)?;
        self.authorize(&who, Effect::Request(&task)).map_err(text)?;
        let Some(req) = self.store.request(op.request).map_err(|e| e.to_string())? else {
            // A Superuser's run has no request to check; they must still be one.
            return if who.is_superuser() || !op.superuser_bypass {
                Ok(())
            } else {
                Err(format!(
                    "it was started by '{}' as a Superuser, which they no longer are",
                    op.requested_by
                ))
            };
        };
        self.request_still_holds(&req)
    }

    /// Why an approved request (or an authorised schedule) may not run now.
    pub(super) fn request_still_holds(&self, req: &ExecutionRequest) -> Result<(), String> {
        if !matches!(req.state, RequestState::Approved | RequestState::Emergency) {
            return Err(format!("request {} is {}", req.id, req.state));
        }
        if let Some(why) = self.drifted(req).map_err(|e| e.to_string())? {
            return Err(format!("request {} does not run: {why}", req.id));
        }
        let now = Timestamp::now();
        // A freeze stops approved runs and schedules; an emergency goes on.
        if !matches!(req.state, RequestState::Emergency) {
            let task = self.task(&req.task).map_err(|e| e.to_string())?;
            if let Some((_, why)) = self
                .freeze_on(&task, &req.devices, now.to_utc())
                .map_err(|e| e.to_string())?
            {
                return Err(format!("request {}: {why}", req.id));
            }
        }
        if now > req.window_end {
            return Err(format!(
                "request {}'s window ended at {}",
                req.id,
                req.window_end.to_utc().to_rfc3339()
            ));
        }
        // Under its policy: the requester still listed, inside its window now.
        if let Some(name) = &req.policy {
            let policy = self.policy(name).map_err(|e| e.to_string())?;
            let task = self.task(&req.task).map_err(|e| e.to_string())?;
            let now_utc = chrono::Utc::now();
            // The requester's groups now: leaving a group named by the
            // policy ends their runs under it.
            let requester = self
                .principal_records(&req.requester)
                .map_err(|e| e.to_string())?;
            covering_policy(
                std::slice::from_ref(&policy),
                requester.principal().member(),
                &task,
                &req.devices,
                now_utc,
            )
            .map_err(|why| format!("request {}: {why}", req.id))?;
        }
        Ok(())
    }

    /// Voids the request of an operation the gate refused, saying why.
    async fn void_refused(&self, op: Operation, why: String) -> Result<(), EngineError> {
        let Some(mut req) = self.store.request(op.request)? else {
            return Ok(());
        };
        if !matches!(req.state, RequestState::Approved) || req.schedule.is_some() {
            return Ok(());
        }
        self.void_request(&mut req, "gatehouse", why).await
    }
}

/// The runner's gate: asks the engine, and voids what it refuses.
pub(super) fn gate(engine: Weak<Engine>) -> crate::exec::Gate {
    Arc::new(move |op: &Operation| {
        let Some(engine) = engine.upgrade() else {
            return Err("the server is stopping".into());
        };
        let verdict = engine.may_start(op);
        if let Err(why) = &verdict {
            let (op, why) = (op.clone(), why.clone());
            tokio::spawn(async move {
                if let Err(e) = engine.void_refused(op, why).await {
                    tracing::error!(error = %e, "cannot void a refused request");
                }
            });
        }
        verdict
    })
}
