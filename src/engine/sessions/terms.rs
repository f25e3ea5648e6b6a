//! Whether a session may open, and on what terms: the device, the
//! credential, the covering policy and what it requires (fields, a change
//! code, a second factor, approval in levels, emergency access), and the
//! window that ends it.

use super::super::api::ConnectSpec;
use super::super::{Engine, EngineError};
use crate::access::policy::{check_fields, covering_session, RequestFields, SessionTarget};
use crate::access::{Effect, Principal};
use crate::domain::{
    ChangePlan, Credential, Device, ExecutionRequest, Kind, Pinned, Record, RequestKind,
    RequestState, SessionRequest, Timestamp,
};
use crate::store::NewAuditEvent;

/// How long an approved session request may be used when it names no end.
const DEFAULT_SESSION_WINDOW_SECS: u64 = 4 * 3600;

/// What a connect comes to.
pub(super) enum Terms {
    /// It opens now.
    Open(Box<Opening>),
    /// It waits for approval: the request filed (or already waiting).
    Filed(Box<ExecutionRequest>),
}

/// A session about to open.
pub(super) struct Opening {
    pub device: Device,
    pub credential: Credential,
    pub policy: Option<crate::domain::Policy>,
    /// The request it uses (approved, or an emergency's), marked used.
    pub request: Option<ExecutionRequest>,
    pub window_end: Option<Timestamp>,
    pub change: Option<ChangePlan>,
}

impl Engine {
    /// The terms a connect opens under, or why it may not (audited).
    pub(super) async fn session_terms(
        &self,
        who: &Principal<'_>,
        spec: &ConnectSpec,
    ) -> Result<Terms, EngineError> {
        let login = who.user.meta.name.as_str();
        let device = match self.store.find(Kind::Device, &spec.device)? {
            Some(Record::Device(d)) if d.meta.enabled => d,
            Some(_) => {
                return Err(EngineError::Denied(format!(
                    "device '{}' is disabled",
                    spec.device
                )))
            }
            None => {
                return Err(EngineError::NotFound {
                    kind: Kind::Device,
                    name: spec.device.clone(),
                })
            }
        };
        if let Err(denial) = crate::access::authorize(
            who,
            Effect::OpenSession { device: &device },
            &super::super::StoreFacts(&self.store),
        ) {
            return self
                .refuse_session(login, &spec.device, denial.message)
                .await;
        }
        let credential = match self.session_credential(&device, spec.credential.as_deref()) {
            Ok(c) => c,
            Err(why) => return self.refuse_session(login, &spec.device, why).await,
        };
        let change = spec
            .change
            .clone()
            .filter(|c| !c.code.trim().is_empty() || !c.plan.is_empty());
        let until = spec
            .duration_secs
            .map(|secs| Timestamp::now().after_secs(secs));
        if who.is_superuser() {
            return Ok(Terms::Open(Box::new(Opening {
                device,
                credential,
                policy: None,
                request: None,
                window_end: until,
                change,
            })));
        }
        let policies = self.policies()?;
        let now_utc = chrono::Utc::now();
        let target = SessionTarget {
            device: &device,
            credential: &credential.meta.name,
            username: &credential.username,
        };
        let policy = match covering_session(&policies, who.member(), &target, now_utc) {
            Ok(p) => p.clone(),
            Err(why) => return self.refuse_session(login, &spec.device, why).await,
        };
        // A credential of no device (root's key for automation, a jump
        // login) opens a shell only where the policy names it.
        if credential.device.is_none() && !policy.credentials.contains(&credential.meta.name) {
            let why = format!(
                "credential '{}' belongs to no device: policy {} must name it in `credentials` for a session to use it",
                credential.meta.name, policy.meta.name
            );
            return self.refuse_session(login, &spec.device, why).await;
        }
        let reason_enabled = match &spec.reason {
            Some(r) => matches!(self.store.find(Kind::Reason, r)?, Some(rec) if rec.meta().enabled),
            None => false,
        };
        let fields = RequestFields {
            reason: spec.reason.as_deref(),
            reason_enabled,
            justification: spec.justification.as_deref(),
            governance_id: spec.governance_id.as_deref(),
            emergency: spec.emergency,
            change: change.as_ref().map(|c| c.code.as_str()),
        };
        if let Err(why) = check_fields(&policy, &fields) {
            return self.refuse_session(login, &spec.device, why).await;
        }
        let opening = |request: Option<ExecutionRequest>, window_end, change| {
            Terms::Open(Box::new(Opening {
                device: device.clone(),
                credential: credential.clone(),
                policy: Some(policy.clone()),
                request,
                window_end,
                change,
            }))
        };
        if spec.emergency {
            self.session_mfa(login, spec, &policy).await?;
            let req =
                self.session_request(who, spec, &device, &credential, &policy, change.clone())?;
            let mut req = ExecutionRequest {
                state: RequestState::Emergency,
                ..req
            };
            mark_used(&mut req);
            let window_end = req.window_end;
            self.save_request(
                &req,
                vec![NewAuditEvent::new(
                    login,
                    "request.emergency",
                    req.target(),
                    format!(
                        "policy {}; opened at once under emergency access; justification: {}",
                        policy.meta.name,
                        crate::text::printable(spec.justification.as_deref().unwrap_or("-"))
                    ),
                )],
            )
            .await?;
            return Ok(opening(Some(req), Some(window_end), change));
        }
        if !policy.requires_approval {
            self.session_mfa(login, spec, &policy).await?;
            return Ok(opening(None, until, change));
        }
        // Under approval: the approved request of this session, used once.
        let _guard = self.write_lock.lock().await;
        let wanted = |r: &ExecutionRequest| {
            r.requester == login
                && r.session().is_some_and(|s| {
                    s.device == device.meta.name
                        && s.credential == credential.meta.name
                        && s.used_at.is_none()
                })
                && matches!(
                    r.state,
                    RequestState::Approved | RequestState::Pending { .. }
                )
                && Timestamp::now() <= r.window_end
        };
        let found = match spec.request {
            Some(id) => match self.store.request(id)? {
                Some(r) if wanted(&r) => Some(r),
                Some(r) => {
                    let why = format!(
                        "request {id} is not an open, unused session request of yours for device {} ({})",
                        device.meta.name, r.state
                    );
                    return self.refuse_session(login, &spec.device, why).await;
                }
                None => {
                    return self
                        .refuse_session(login, &spec.device, format!("there is no request {id}"))
                        .await
                }
            },
            None => self.store.requests_newest_first(1, wanted)?.pop(),
        };
        match found {
            Some(r) if r.state != RequestState::Approved => Ok(Terms::Filed(Box::new(r))),
            Some(req) => {
                // The code is checked without the write lock (its check
                // writes too); then the request is read again under it, so
                // that two connects never both use one approval.
                drop(_guard);
                self.session_mfa(login, spec, &policy).await?;
                let _guard = self.write_lock.lock().await;
                let mut req = match self.store.request(req.id)? {
                    Some(r) if wanted(&r) => r,
                    _ => {
                        let why = format!("request {} was used meanwhile", req.id);
                        return self.refuse_session(login, &spec.device, why).await;
                    }
                };
                mark_used(&mut req);
                self.save_request(
                    &req,
                    vec![NewAuditEvent::new(
                        login,
                        "request.used",
                        req.target(),
                        "the approved session was opened",
                    )],
                )
                .await?;
                let window_end = req.window_end;
                let change = req.change.clone();
                Ok(opening(Some(req), Some(window_end), change))
            }
            None => {
                let req = self.session_request(who, spec, &device, &credential, &policy, change)?;
                let details = format!(
                    "policy {}; {}; justification: {}; governance id: {}; reason: {}",
                    policy.meta.name,
                    req.state,
                    req.justification.as_deref().unwrap_or("-"),
                    req.governance_id.as_deref().unwrap_or("-"),
                    req.reason.as_deref().unwrap_or("-")
                );
                self.save_request(
                    &req,
                    vec![NewAuditEvent::new(
                        login,
                        "request.create",
                        req.target(),
                        details,
                    )],
                )
                .await?;
                Ok(Terms::Filed(Box::new(req)))
            }
        }
    }

    /// A second factor to start, where the policy asks for one: checked
    /// when the session opens, not when its request is filed.
    async fn session_mfa(
        &self,
        login: &str,
        spec: &ConnectSpec,
        policy: &crate::domain::Policy,
    ) -> Result<(), EngineError> {
        if !policy.requires_mfa {
            return Ok(());
        }
        match self.check_totp(login, spec.totp.as_deref()).await {
            Ok(()) => Ok(()),
            Err(e @ (EngineError::MfaLocked { .. } | EngineError::MfaRequired { .. })) => Err(e),
            Err(e) => {
                self.refuse_session(login, &spec.device, e.to_string())
                    .await
            }
        }
    }

    /// A new session request, pending at level 1.
    fn session_request(
        &self,
        who: &Principal<'_>,
        spec: &ConnectSpec,
        device: &Device,
        credential: &Credential,
        policy: &crate::domain::Policy,
        change: Option<ChangePlan>,
    ) -> Result<ExecutionRequest, EngineError> {
        let now = Timestamp::now();
        Ok(ExecutionRequest {
            id: self.store.next_id()?,
            task: String::new(),
            devices: vec![device.meta.name.clone()],
            variables: Default::default(),
            reason: spec.reason.clone(),
            justification: spec.justification.clone(),
            governance_id: spec.governance_id.clone(),
            requester: who.user.meta.name.clone(),
            policy: Some(policy.meta.name.clone()),
            window_start: now,
            window_end: now.after_secs(spec.duration_secs.unwrap_or(DEFAULT_SESSION_WINDOW_SECS)),
            state: RequestState::Pending { level: 1 },
            decisions: Vec::new(),
            pinned: Pinned {
                credential_revision: credential.meta.revision,
                devices: vec![(device.meta.name.clone(), device.meta.revision)],
                ..Pinned::default()
            },
            created_at: now,
            operations: Vec::new(),
            void_reason: None,
            schedule: None,
            kind: RequestKind::Session(SessionRequest {
                device: device.meta.name.clone(),
                credential: credential.meta.name.clone(),
                used_at: None,
            }),
            change,
        })
    }

    pub(super) async fn refuse_session<T>(
        &self,
        login: &str,
        device: &str,
        why: String,
    ) -> Result<T, EngineError> {
        self.audit(vec![NewAuditEvent::new(
            login,
            "session.refused",
            format!("device {device}"),
            why.clone(),
        )])
        .await?;
        Err(EngineError::Denied(why))
    }

    /// The credential named, which must be enabled and not belong to
    /// another device; or the one enabled credential of the device.
    fn session_credential(
        &self,
        device: &Device,
        named: Option<&str>,
    ) -> Result<Credential, String> {
        let name = &device.meta.name;
        if let Some(named) = named {
            return match self.store.find(Kind::Credential, named) {
                Ok(Some(Record::Credential(c))) if !c.meta.enabled => {
                    Err(format!("credential '{named}' is disabled"))
                }
                Ok(Some(Record::Credential(c)))
                    if c.device.as_deref().is_some_and(|d| d != name.as_str()) =>
                {
                    Err(format!(
                        "credential '{named}' belongs to device '{}', not '{name}'",
                        c.device.as_deref().unwrap_or_default()
                    ))
                }
                Ok(Some(Record::Credential(c))) => Ok(c),
                Ok(_) => Err(format!("no credential named '{named}'")),
                Err(e) => Err(e.to_string()),
            };
        }
        let owned = self
            .store
            .device_credentials(name)
            .map_err(|e| e.to_string())?;
        match <[Credential; 1]>::try_from(owned) {
            Ok([one]) => Ok(one),
            Err(owned) if owned.is_empty() => Err(format!(
                "device '{name}' has no credential of its own: name one with --credential"
            )),
            Err(owned) => Err(format!(
                "device '{name}' has several credentials ({}): name one with --credential",
                owned
                    .iter()
                    .map(|c| c.meta.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

fn mark_used(req: &mut ExecutionRequest) {
    if let RequestKind::Session(s) = &mut req.kind {
        s.used_at = Some(Timestamp::now());
    }
}
