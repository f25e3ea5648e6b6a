//! Just-in-time elevation around a session: where the session's credential
//! has grant and revoke templates, the grant runs on the device before the
//! session opens (a JIT grant, as a task's), and its revoke as soon as the
//! session ends, however it ends; a server that stopped with a session
//! open revokes it at start. The revoke is retried with backoff and shown
//! on the Dashboard until it succeeds, as every grant's is.

use super::super::{Engine, EngineError};
use crate::domain::{
    ChangeReason, Credential, Device, Id, JitState, OpState, Task, Timestamp, Trigger,
};
use crate::store::NewAuditEvent;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a session's grant lasts when the session names no end: the
/// revoke runs when the session ends, or at this limit if the server is
/// down then.
const GRANT_WITHOUT_WINDOW_SECS: u64 = 12 * 3600;

impl Engine {
    /// Runs the credential's grant template on the device before session
    /// `session` opens, and waits for it; the grant's operation, or none
    /// when the credential has no grant template.
    pub(super) async fn grant_for_session(
        &self,
        session: Id,
        login: &str,
        device: &Device,
        credential: &Credential,
        window_end: Option<Timestamp>,
    ) -> Result<Option<Id>, EngineError> {
        let Some(grant) = credential.jit_grant_template.clone() else {
            return Ok(None);
        };
        let task = Task {
            template: grant,
            devices: vec![device.meta.name.clone()],
            credential: credential.meta.name.clone(),
            environment: device.environment.clone(),
            system: device.system.clone(),
            timeout_secs: crate::domain::DEFAULT_TASK_TIMEOUT_SECS,
            parallelism: 1,
            retries: 0,
            ..Task::default()
        };
        let mut task = task;
        task.meta.enabled = true;
        task.meta.name = format!("session {session}");
        let until =
            window_end.unwrap_or_else(|| Timestamp::now().after_secs(GRANT_WITHOUT_WINDOW_SECS));
        let ops = self.plan(
            &task,
            &[],
            &BTreeMap::new(),
            Trigger::Session { session },
            login,
            Timestamp::now(),
            Some(until),
        )?;
        let Some(op) = ops.first().map(|o| o.id) else {
            return Ok(None);
        };
        self.launch(
            &task,
            ops,
            login,
            "session.jit.grant",
            format!(
                "before session {session}: {} on {}",
                credential.meta.name, device.meta.name
            ),
        )
        .await?;
        // The session opens only once the privilege is there.
        let limit = Duration::from_secs(task.timeout_secs + 30);
        let started = tokio::time::Instant::now();
        loop {
            if let Some(o) = self.store.operation(op)? {
                match o.state {
                    OpState::Succeeded => return Ok(Some(op)),
                    s if s.is_final() => {
                        return Err(EngineError::Denied(format!(
                            "the just-in-time grant before the session failed (operation {op}): {}",
                            o.error.unwrap_or_else(|| s.to_string())
                        )))
                    }
                    _ => {}
                }
            }
            if started.elapsed() > limit {
                return Err(EngineError::Denied(format!(
                    "the just-in-time grant before the session did not end within {} s (operation {op})",
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// After a session: its grant (if any) expires now, so that the next
    /// tick revokes it; a credential set to `rotate_after_use` is changed
    /// (by the revoke, where there is one: the privilege is in use until
    /// then).
    pub(super) async fn after_session(
        &self,
        session: Id,
        grant_op: Option<Id>,
        credential: &Credential,
    ) -> Result<(), EngineError> {
        if let Some(op) = grant_op {
            self.expire_session_grant(session, op).await?;
            return Ok(());
        }
        if credential.rotate_after_use && credential.meta.enabled {
            if let Err(e) = self
                .start_change(
                    credential,
                    Vec::new(),
                    ChangeReason::AfterSession { session },
                    "gatehouse",
                )
                .await
            {
                self.audit(vec![NewAuditEvent::new(
                    "gatehouse",
                    "credential.change.refused",
                    format!("credential {}", credential.meta.name),
                    format!("after session {session} used it: {e}"),
                )])
                .await?;
            }
        }
        Ok(())
    }

    /// The grant made by operation `op` expires now. Its record is written
    /// when the operation's end is processed, which may be a moment after
    /// it succeeded: it is waited for a little.
    pub(super) async fn expire_session_grant(
        &self,
        session: Id,
        op: Id,
    ) -> Result<(), EngineError> {
        for _ in 0..50 {
            if let Some(mut grant) = self
                .store
                .jit_grants()?
                .into_iter()
                .find(|g| g.grant_op == op)
            {
                if grant.state == JitState::Active && grant.expires_at > Timestamp::now() {
                    grant.expires_at = Timestamp::now();
                    let target = format!(
                        "jit grant {} ({} on {})",
                        grant.id, grant.credential, grant.device
                    );
                    self.journal
                        .commit(
                            vec![crate::store::Change::PutJit(Box::new(grant))],
                            vec![NewAuditEvent::new(
                                "gatehouse",
                                "jit.expire",
                                target,
                                format!("session {session} ended: revoked now"),
                            )],
                        )
                        .await?;
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::error!(%session, %op, "no JIT grant recorded for a session's grant operation; it is revoked at its expiry");
        Ok(())
    }

    /// Grants of sessions that ended while the server was down expire now.
    pub(super) async fn expire_grants_of_ended_sessions(&self) -> Result<(), EngineError> {
        for grant in self.store.jit_grants()? {
            if grant.state != JitState::Active {
                continue;
            }
            let Some(op) = self.store.operation(grant.grant_op)? else {
                continue;
            };
            if let Trigger::Session { session } = op.trigger {
                let ended = self.store.session(session)?.is_none_or(|s| !s.is_open());
                if ended {
                    self.expire_session_grant(session, op.id).await?;
                }
            }
        }
        Ok(())
    }
}
