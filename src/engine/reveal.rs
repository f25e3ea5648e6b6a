//! Reveals: a credential's password shown to someone allowed to see it.
//!
//! Always: the `view-credential-secrets` permission for the credential's
//! environment, and a justification. Where an enabled policy names the
//! credential, a policy must also cover the reveal, as one covers a task:
//! the user listed, the environment, the window, the fields it requires,
//! a second factor, and approval levels. A reveal that needs approval is
//! filed as a request; once approved, its requester sees the password once,
//! inside the request's window. Every reveal and refusal is audited, never
//! the secret.

use super::api::{RevealSpec, Revealed};
use super::{Engine, EngineError, Response};
use crate::access::policy::{check_fields, covering_reveal, governing_reveals, RequestFields};
use crate::access::{Effect, Principal};
use crate::domain::{
    ChangeReason, Credential, ExecutionRequest, Kind, Pinned, Policy, Record, RequestKind,
    RequestState, RevealRequest, SecretState, Timestamp,
};
use crate::store::{Change, NewAuditEvent};

/// How long an approved reveal may be used when the request names no end.
const DEFAULT_REVEAL_WINDOW_SECS: u64 = 4 * 3600;

impl Engine {
    pub(super) async fn reveal(
        &self,
        who: &Principal<'_>,
        spec: RevealSpec,
    ) -> Result<Response, EngineError> {
        let credential = self.credential(&spec.name)?;
        let record = Record::Credential(credential.clone());
        let environment = self.credential_environment(&credential)?;
        self.authorize(
            who,
            Effect::Reveal {
                credential: &record,
                environment: environment.as_deref(),
            },
        )?;
        if spec.justification.trim().is_empty() {
            return Err(EngineError::Invalid {
                kind: Kind::Credential,
                name: spec.name.clone(),
                line: 0,
                field: Some("justification".into()),
                at: None,
                message: "a reveal needs a justification (--justification)".into(),
            });
        }
        let policies = self.policies()?;
        let governing = governing_reveals(&policies, &spec.name, environment.as_deref());
        if who.is_superuser() || governing.is_empty() {
            if spec.request.is_some() {
                return Err(EngineError::Denied(format!(
                    "no policy governs reveals of credential {}: reveal it without --request",
                    spec.name
                )));
            }
            let details = details(&spec, None);
            return self.show(&credential, who, details).await;
        }
        let login = who.user.meta.name.clone();
        // The same reveal again uses its approval once given, and is told
        // of its request while that waits.
        let request = match spec.request {
            Some(id) => Some(id),
            None => match self.open_reveal(&login, &spec.name)? {
                Some(r) if r.state == RequestState::Approved => Some(r.id),
                Some(r) => return Ok(Response::Filed(Box::new(r))),
                None => None,
            },
        };
        if let Some(id) = request {
            return self.reveal_approved(&credential, who, &spec, id).await;
        }
        let now_utc = chrono::Utc::now();
        let policy = match covering_reveal(&governing, who.member(), &spec.name, now_utc) {
            Ok(p) => p.clone(),
            Err(why) => return self.refuse(&login, &spec.name, why).await,
        };
        let reason_enabled =
            matches!(self.store.find(Kind::Reason, &spec.reason)?, Some(r) if r.meta().enabled);
        let fields = RequestFields {
            reason: Some(spec.reason.as_str()).filter(|r| !r.trim().is_empty()),
            reason_enabled,
            justification: Some(spec.justification.as_str()),
            governance_id: spec.governance_id.as_deref(),
            emergency: false,
            change: None,
        };
        if let Err(why) = check_fields(&policy, &fields) {
            return self.refuse(&login, &spec.name, why).await;
        }
        // As for tasks: approvers give the codes where the policy needs
        // approval; otherwise the one who sees the password does.
        if policy.requires_mfa && !policy.requires_approval {
            match self.check_totp(&login, spec.totp.as_deref()).await {
                Ok(()) => {}
                Err(e @ EngineError::MfaLocked { .. }) => return Err(e),
                Err(e) => return self.refuse(&login, &spec.name, e.to_string()).await,
            }
        }
        if policy.requires_approval {
            return self.file_reveal(&credential, who, &spec, &policy).await;
        }
        let details = details(&spec, Some(&policy.meta.name));
        self.show(&credential, who, details).await
    }

    /// This user's newest reveal request of `credential` that is pending,
    /// or approved and unused, with its window open.
    fn open_reveal(
        &self,
        login: &str,
        credential: &str,
    ) -> Result<Option<ExecutionRequest>, EngineError> {
        let now = Timestamp::now();
        let mut found = self.store.requests_newest_first(1, |r| {
            r.requester == login
                && matches!(
                    r.state,
                    RequestState::Approved | RequestState::Pending { .. }
                )
                && now <= r.window_end
                && r.reveal()
                    .is_some_and(|v| v.credential == credential && v.revealed_at.is_none())
        })?;
        Ok(found.pop())
    }

    /// A reveal under a policy with approval: a request, pending at level 1.
    async fn file_reveal(
        &self,
        credential: &Credential,
        who: &Principal<'_>,
        spec: &RevealSpec,
        policy: &Policy,
    ) -> Result<Response, EngineError> {
        let now = Timestamp::now();
        let window_end = spec
            .until
            .unwrap_or(now.after_secs(DEFAULT_REVEAL_WINDOW_SECS));
        if window_end <= now {
            return Err(EngineError::Denied(
                "the requested window ends before it starts".into(),
            ));
        }
        let req = ExecutionRequest {
            id: self.store.next_id()?,
            task: String::new(),
            devices: Vec::new(),
            variables: Default::default(),
            reason: Some(spec.reason.clone()).filter(|r| !r.trim().is_empty()),
            justification: Some(spec.justification.clone()),
            governance_id: spec.governance_id.clone(),
            requester: who.user.meta.name.clone(),
            policy: Some(policy.meta.name.clone()),
            window_start: now,
            window_end,
            state: RequestState::Pending { level: 1 },
            decisions: Vec::new(),
            pinned: Pinned {
                credential_revision: credential.meta.revision,
                ..Pinned::default()
            },
            created_at: now,
            operations: Vec::new(),
            void_reason: None,
            schedule: None,
            kind: RequestKind::Reveal(RevealRequest {
                credential: credential.meta.name.clone(),
                revealed_at: None,
            }),
            change: None,
        };
        let details = format!(
            "policy {}; {}; {}",
            policy.meta.name,
            req.state,
            details(spec, None)
        );
        self.save_request(
            &req,
            vec![NewAuditEvent::new(
                &req.requester,
                "request.create",
                req.target(),
                details,
            )],
        )
        .await?;
        Ok(Response::Filed(Box::new(req)))
    }

    /// The password of an approved reveal request, to its requester, once,
    /// inside its window, while its policy still covers them.
    async fn reveal_approved(
        &self,
        credential: &Credential,
        who: &Principal<'_>,
        spec: &RevealSpec,
        id: crate::domain::Id,
    ) -> Result<Response, EngineError> {
        // Marking the request used is one write under the lock; showing
        // the password may start a change, which takes the lock itself.
        let guard = self.write_lock.lock().await;
        let login = who.user.meta.name.clone();
        let name = credential.meta.name.as_str();
        let mut req = match self.store.request(id)? {
            Some(r) => r,
            None => {
                return self
                    .refuse(&login, name, format!("there is no request {id}"))
                    .await
            }
        };
        let why = match req.reveal() {
            _ if req.requester != login => Some(format!(
                "request {id} was made by '{}', not '{login}'",
                req.requester
            )),
            Some(r) if r.credential != name => Some(format!(
                "request {id} is for credential {}, not {name}",
                r.credential
            )),
            None => Some(format!("request {id} is for a task, not a reveal")),
            Some(RevealRequest {
                revealed_at: Some(at),
                ..
            }) => Some(format!(
                "request {id} was used at {at}: an approval shows the password once"
            )),
            Some(_) if req.state != RequestState::Approved => {
                Some(format!("request {id} is {}, not approved", req.state))
            }
            Some(_) if Timestamp::now() > req.window_end => {
                Some(format!("request {id}'s window ended at {}", req.window_end))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            return self.refuse(&login, name, why).await;
        }
        // Its policy must still cover the requester now.
        let policy_name = req.policy.clone().unwrap_or_default();
        let policy = self.policy(&policy_name)?;
        let environment = self.credential_environment(credential)?;
        let now_utc = chrono::Utc::now();
        if let Err(why) = covering_reveal(
            &governing_reveals(std::slice::from_ref(&policy), name, environment.as_deref()),
            who.member(),
            name,
            now_utc,
        ) {
            return self
                .refuse(&login, name, format!("request {id}: {why}"))
                .await;
        }
        if let Some(r) = req.reveal_mut() {
            r.revealed_at = Some(Timestamp::now());
        }
        self.save_request(
            &req,
            vec![NewAuditEvent::new(
                &login,
                "request.used",
                req.target(),
                "the approved reveal was shown",
            )],
        )
        .await?;
        drop(guard);
        let details = format!(
            "{}; under request {id}",
            details(spec, Some(&policy.meta.name))
        );
        self.show(credential, who, details).await
    }

    async fn refuse(
        &self,
        login: &str,
        credential: &str,
        why: String,
    ) -> Result<Response, EngineError> {
        self.audit(vec![NewAuditEvent::new(
            login,
            "credential.reveal.refused",
            format!("credential {credential}"),
            why.clone(),
        )])
        .await?;
        Err(EngineError::Denied(why))
    }

    /// Shows the password: audited (never the secret); a credential set to
    /// `rotate_after_view` is changed at once, or after its check-out period.
    async fn show(
        &self,
        credential: &Credential,
        who: &Principal<'_>,
        details: String,
    ) -> Result<Response, EngineError> {
        let name = credential.meta.name.as_str();
        let sealed = credential
            .password
            .as_ref()
            .ok_or_else(|| EngineError::Invalid {
                kind: Kind::Credential,
                name: name.to_string(),
                line: 0,
                field: Some("password".into()),
                at: None,
                message: "the credential holds no password".into(),
            })?;
        let plain = self.store.cipher().open(sealed)?;
        let password = String::from_utf8_lossy(&plain).into_owned();
        let login = who.user.meta.name.clone();
        self.audit(vec![NewAuditEvent::new(
            &login,
            "credential.reveal",
            format!("credential {name}"),
            details,
        )])
        .await?;
        if let (true, Some(checkout)) = (credential.rotate_after_view, credential.checkout_secs) {
            // Changed when the check-out period ends (the tick starts it).
            let _guard = self.write_lock.lock().await;
            let mut state = self
                .store
                .secret_state(credential.meta.id)?
                .unwrap_or(SecretState {
                    credential: credential.meta.id,
                    ..SecretState::default()
                });
            let at = Timestamp::now().after_secs(checkout);
            state.rotate_at = Some((at, login.clone()));
            self.journal
                .commit(
                    vec![Change::PutSecretState(Box::new(state))],
                    vec![NewAuditEvent::new(
                        "gatehouse",
                        "credential.checkout",
                        format!("credential {name}"),
                        format!("shown to {login}; changed at {at}"),
                    )],
                )
                .await?;
        } else if credential.rotate_after_view {
            if let Err(e) = self
                .start_change(
                    credential,
                    Vec::new(),
                    ChangeReason::AfterView { by: login.clone() },
                    &login,
                )
                .await
            {
                self.audit(vec![NewAuditEvent::new(
                    "gatehouse",
                    "credential.change.refused",
                    format!("credential {name}"),
                    format!("after a view by {login}: {e}"),
                )])
                .await?;
            }
        }
        Ok(Response::Revealed(Revealed(password)))
    }
}

/// What the audit says of a reveal: why, and under which policy.
fn details(spec: &RevealSpec, policy: Option<&str>) -> String {
    let reason = if spec.reason.trim().is_empty() {
        "-"
    } else {
        spec.reason.as_str()
    };
    let mut text = format!(
        "reason: {}; justification: {}",
        crate::text::printable(reason),
        crate::text::printable(&spec.justification)
    );
    if let Some(g) = &spec.governance_id {
        text.push_str(&format!("; governance id: {}", crate::text::printable(g)));
    }
    if let Some(p) = policy {
        text.push_str(&format!("; policy {p}"));
    }
    text
}
