//! Just-in-time elevation: a successful grant operation records a grant;
//! at its expiry the credential's revoke template runs on the device, and
//! runs again, with backoff, until it succeeds.

use super::{Engine, EngineError, Response};
use crate::access::Principal;
use crate::domain::{
    Id, JitGrant, JitState, Kind, OpState, Operation, Permission, Record, Task, Timestamp, Trigger,
};
use crate::store::{Change, NewAuditEvent};
use std::collections::BTreeMap;

/// The first retry of a failed revoke waits this long; then twice as long, up to a minute.
const REVOKE_RETRY_MS: i64 = 2_000;
const REVOKE_RETRY_MAX_MS: i64 = 60_000;

impl Engine {
    async fn save_grant(
        &self,
        grant: &JitGrant,
        events: Vec<NewAuditEvent>,
    ) -> Result<(), EngineError> {
        self.journal
            .commit(vec![Change::PutJit(Box::new(grant.clone()))], events)
            .await?;
        Ok(())
    }

    /// A grant operation that succeeded becomes a grant that will be revoked.
    pub(super) async fn record_grant(&self, op: &Operation) -> Result<(), EngineError> {
        let (OpState::Succeeded, Some(until)) = (op.state, op.jit_until) else {
            return Ok(());
        };
        // The lease runs for what was asked, from the moment the privilege
        // exists (not from the request: waiting for approval or in the
        // queue does not eat it). A Superuser's run, with no request, ends
        // at its window's end.
        let now = Timestamp::now();
        let until = match self.store.request(op.request)? {
            Some(req) => Timestamp(now.0 + (req.window_end.0 - req.window_start.0).max(0)),
            None => until,
        };
        let grant = JitGrant {
            id: self.store.next_id()?,
            grant_op: op.id,
            task: op.task.clone(),
            credential: op.credential.clone(),
            device: op.device.clone(),
            requested_by: op.requested_by.clone(),
            granted_at: now,
            expires_at: until,
            state: JitState::Active,
        };
        let details = format!(
            "{} on {} until {until} (operation {})",
            op.credential, op.device, op.id
        );
        self.save_grant(
            &grant,
            vec![NewAuditEvent::new(
                &op.requested_by,
                "jit.grant",
                format!("jit grant {}", grant.id),
                details,
            )],
        )
        .await
    }

    /// Starts the revoke operation of a grant.
    async fn start_revoke(&self, grant: &mut JitGrant) -> Result<(), EngineError> {
        let revoke_template = match self.store.find(Kind::Credential, &grant.credential)? {
            Some(Record::Credential(c)) => c.jit_revoke_template.clone(),
            _ => None,
        }
        .ok_or_else(|| {
            EngineError::Denied(format!(
                "credential '{}' has no revoke template",
                grant.credential
            ))
        })?;
        let original = self.task(&grant.task).ok();
        // The revoke runs whatever became of the task: only its device,
        // credential and bounds matter. A grant without a task (a
        // session's, or of a task deleted since) runs in its device's
        // environment and system.
        let (environment, system) = match self.store.find(Kind::Device, &grant.device)? {
            Some(Record::Device(d)) => (d.environment, d.system),
            _ => Default::default(),
        };
        let mut task = Task {
            template: revoke_template,
            devices: vec![grant.device.clone()],
            credential: grant.credential.clone(),
            children: Vec::new(),
            schedule: None,
            retries: 0,
            ..original.unwrap_or_else(|| Task {
                timeout_secs: crate::domain::DEFAULT_TASK_TIMEOUT_SECS,
                parallelism: 1,
                environment,
                system,
                ..Task::default()
            })
        };
        task.meta.enabled = true;
        task.meta.name = grant.task.clone();
        let ops = self.plan(
            &task,
            &[],
            &BTreeMap::new(),
            Trigger::JitExpiry { grant: grant.id },
            &grant.requested_by,
            Timestamp::now(),
            None,
        )?;
        let op = ops.first().map(|o| o.id).unwrap_or_default();
        grant.state = JitState::Revoking { op };
        self.save_grant(grant, vec![]).await?;
        self.launch(
            &task,
            ops,
            "gatehouse",
            "jit.revoke.start",
            format!("jit grant {} on {}", grant.id, grant.device),
        )
        .await
    }

    /// Runs due revokes and settles finished ones; called every second.
    pub(super) async fn tick_jit(&self) -> Result<(), EngineError> {
        let now = Timestamp::now();
        for mut grant in self.store.jit_grants()? {
            let target = format!(
                "jit grant {} ({} on {})",
                grant.id, grant.credential, grant.device
            );
            match grant.state.clone() {
                JitState::Active if grant.expires_at <= now => {
                    self.revoke_or_fail(&mut grant, 0, &target).await?
                }
                JitState::Failing {
                    attempts, retry_at, ..
                } if retry_at <= now => self.revoke_or_fail(&mut grant, attempts, &target).await?,
                JitState::Revoking { op } => {
                    let Some(op) = self.store.operation(op)? else {
                        continue;
                    };
                    if !op.state.is_final() {
                        continue;
                    }
                    if op.state == OpState::Succeeded {
                        grant.state = JitState::Revoked { at: now };
                        let late = if now.0 - grant.expires_at.0 > 60_000 {
                            ", late"
                        } else {
                            ""
                        };
                        self.save_grant(
                            &grant,
                            vec![NewAuditEvent::new(
                                "gatehouse",
                                "jit.revoke",
                                target,
                                format!("revoked by operation {}{late}", op.id),
                            )],
                        )
                        .await?;
                    } else {
                        let error = op.error.clone().unwrap_or_else(|| op.state.to_string());
                        self.fail_revoke(&mut grant, 0, error, &target).await?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn revoke_or_fail(
        &self,
        grant: &mut JitGrant,
        attempts: u32,
        target: &str,
    ) -> Result<(), EngineError> {
        let before = attempts;
        if let Err(e) = self.start_revoke(grant).await {
            self.fail_revoke(grant, before, e.to_string(), target)
                .await?;
        }
        Ok(())
    }

    async fn fail_revoke(
        &self,
        grant: &mut JitGrant,
        known_attempts: u32,
        error: String,
        target: &str,
    ) -> Result<(), EngineError> {
        let attempts = match &grant.state {
            JitState::Failing { attempts, .. } => attempts + 1,
            _ => known_attempts + 1,
        };
        let wait = (REVOKE_RETRY_MS << attempts.min(10)).min(REVOKE_RETRY_MAX_MS);
        grant.state = JitState::Failing {
            attempts,
            retry_at: Timestamp(Timestamp::now().0 + wait),
            error: error.clone(),
        };
        self.save_grant(
            grant,
            vec![NewAuditEvent::new(
                "gatehouse",
                "jit.revoke.failed",
                target.to_string(),
                format!("attempt {attempts}: {error}"),
            )],
        )
        .await
    }

    pub(super) fn jit_list(&self, who: &Principal<'_>, all: bool) -> Result<Response, EngineError> {
        let login = who.user.meta.name.as_str();
        let facts = self.visibility_facts()?;
        let mut leases = Vec::new();
        for grant in self
            .store
            .jit_grants()?
            .into_iter()
            .filter(|g| g.requested_by == login || facts.grant(who, g))
            .filter(|g| all || !matches!(g.state, JitState::Revoked { .. }))
        {
            let uses = self.lease_uses(&grant)?;
            leases.push(super::api::JitLease { grant, uses });
        }
        Ok(Response::Jit(leases))
    }

    /// The operations that ran with a grant's credential on its device
    /// during its lease (the grant and its revoke aside): whether, and how,
    /// the privilege was used. Only the device's operations made after
    /// the grant are read (through the index), not its whole history.
    fn lease_uses(&self, grant: &JitGrant) -> Result<Vec<Id>, EngineError> {
        let end = match grant.state {
            JitState::Revoked { at } => at,
            _ => Timestamp::now(),
        };
        Ok(self
            .store
            .indexed_after(crate::store::OpField::Device, &grant.device, grant.grant_op)?
            .into_iter()
            .filter(|o| {
                o.credential == grant.credential
                    && !matches!(o.trigger, crate::domain::Trigger::JitExpiry { .. })
                    && o.started_at
                        .is_some_and(|s| s >= grant.granted_at && s <= end)
            })
            .map(|o| o.id)
            .collect())
    }

    /// Ends a grant now: its revoke runs at the next tick.
    pub(super) async fn jit_revoke_now(
        &self,
        who: &Principal<'_>,
        id: Id,
    ) -> Result<Response, EngineError> {
        let Some(mut grant) = self.store.jit_grants()?.into_iter().find(|g| g.id == id) else {
            return Err(EngineError::Missing(format!("jit grant {id}")));
        };
        // Its holder may end it early; anyone else needs manage-credentials.
        if grant.requested_by != who.user.meta.name {
            self.authorize(
                who,
                crate::access::Effect::Use(Permission::ManageCredentials),
            )?;
        }
        if grant.state != JitState::Active {
            return Err(EngineError::Denied(format!(
                "jit grant {id} is {}",
                grant.state
            )));
        }
        grant.expires_at = Timestamp::now();
        let target = format!(
            "jit grant {} ({} on {})",
            grant.id, grant.credential, grant.device
        );
        self.save_grant(
            &grant,
            vec![NewAuditEvent::new(
                &who.user.meta.name,
                "jit.revoke.early",
                target,
                "revoke requested before expiry",
            )],
        )
        .await?;
        Ok(Response::Done)
    }

    /// Grants not yet revoked keep a personal server up, so revokes run on time.
    pub(super) fn has_open_grants(&self) -> bool {
        self.store
            .jit_grants()
            .map(|g| {
                g.iter()
                    .any(|g| !matches!(g.state, JitState::Revoked { .. }))
            })
            .unwrap_or(false)
    }
}
