//! A credential's password over time: changed by an operation that runs
//! its change template with a generated password, verified by logging in
//! with it before it is stored, then its children changed; reconciled
//! through another login when the stored one no longer works; changed when
//! it reaches its maximum age or after someone was shown it.

use super::{Engine, EngineError, Response};
use crate::access::{Effect, Principal};
use crate::domain::{
    ChangeReason, Credential, ExecutionType, Kind, Meta, OpState, Operation, PendingChange,
    PreviousSecret, Record, SecretState, SecretStatus, Task, Timestamp, Trigger, PREVIOUS_KEPT,
};
use crate::store::{Change, NewAuditEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Where one credential's secret stands, for lists and the Dashboard
/// (never the secret).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CredentialState {
    pub name: String,
    pub status: SecretStatus,
    /// When a verified change last set the password.
    pub changed_at: Option<Timestamp>,
    /// When its maximum age is reached, if it has one.
    pub next_due: Option<Timestamp>,
    /// When a periodic check last logged in with it.
    pub verified_at: Option<Timestamp>,
    /// Verified changes so far.
    pub changes: u32,
}

impl Engine {
    pub(super) fn credential(&self, name: &str) -> Result<Credential, EngineError> {
        match self.store.find(Kind::Credential, name)? {
            Some(Record::Credential(c)) => Ok(c),
            _ => Err(EngineError::NotFound {
                kind: Kind::Credential,
                name: name.to_string(),
            }),
        }
    }

    /// The environment of the device a credential belongs to.
    pub(super) fn credential_environment(
        &self,
        c: &Credential,
    ) -> Result<Option<String>, EngineError> {
        let Some(device) = &c.device else {
            return Ok(None);
        };
        Ok(match self.store.find(Kind::Device, device)? {
            Some(Record::Device(d)) => Some(d.environment),
            _ => None,
        })
    }

    /// A person asks for a change (or a reconcile): they must be allowed
    /// to change the credential.
    pub(super) async fn ask_change(
        &self,
        who: &Principal<'_>,
        name: &str,
        devices: Vec<String>,
        reason: ChangeReason,
    ) -> Result<Response, EngineError> {
        let credential = self.credential(name)?;
        // Changing a password changes the credential, and uses the login
        // the change runs as: the asker must be allowed to change both.
        let login_name = match reason {
            ChangeReason::Reconcile => credential
                .reconcile_with
                .clone()
                .or_else(|| credential.change_with.clone()),
            _ => credential.change_with.clone(),
        };
        let mut judged = vec![Record::Credential(credential.clone())];
        if let Some(other) = login_name {
            judged.push(Record::Credential(self.credential(&other)?));
        }
        for record in &judged {
            self.authorize(
                who,
                Effect::Change {
                    stored: Some(record),
                    incoming: record,
                },
            )?;
        }
        let login = who.user.meta.name.clone();
        let operations = self
            .start_change(&credential, devices, reason, &login)
            .await?;
        Ok(Response::Requested {
            request: operations.first().map(|o| o.request).unwrap_or_default(),
            operations,
        })
    }

    /// Starts a change: one operation per device, running the change
    /// template as the credential itself (or its `change_with`, or for a
    /// reconcile its `reconcile_with`), with a new password from its
    /// policy, sealed in its secret state until verified.
    pub(super) async fn start_change(
        &self,
        credential: &Credential,
        devices: Vec<String>,
        reason: ChangeReason,
        actor: &str,
    ) -> Result<Vec<Operation>, EngineError> {
        let _guard = self.write_lock.lock().await;
        let name = credential.meta.name.clone();
        let refuse = |m: String| EngineError::Denied(format!("credential '{name}': {m}"));
        if !credential.meta.enabled {
            return Err(refuse("is disabled".into()));
        }
        let change_template = credential
            .change_template
            .clone()
            .ok_or_else(|| refuse("has no change_template to change its password with".into()))?;
        let template = match reason {
            ChangeReason::Reconcile => credential
                .reconcile_template
                .clone()
                .unwrap_or(change_template),
            _ => change_template,
        };
        let content = match self.store.find(Kind::Template, &template)? {
            Some(Record::Template(t)) if t.execution_type == ExecutionType::PasswordChange => {
                t.content
            }
            Some(_) => {
                return Err(refuse(format!(
                    "its change template '{template}' is not of execution type password-change"
                )))
            }
            None => {
                return Err(refuse(format!(
                    "its change template '{template}' does not exist"
                )))
            }
        };
        // What it changes follows from the masks its template fills.
        let new_password = content.contains("[#NEW_PASSWORD#]");
        let new_key = content.contains("[#NEW_PUBLIC_KEY#]");
        if !new_password && !new_key {
            return Err(refuse(format!(
                "its change template '{template}' uses neither [#NEW_PASSWORD#] nor [#NEW_PUBLIC_KEY#], so it would change nothing"
            )));
        }
        let mut state = self
            .store
            .secret_state(credential.meta.id)?
            .unwrap_or_else(|| SecretState {
                credential: credential.meta.id,
                ..SecretState::default()
            });
        if let SecretStatus::Changing { ops } = &state.status {
            return Err(refuse(format!(
                "a change is already running (operation {})",
                ops.iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let login = match reason {
            // The login that sets passwords for it (its change_with when it
            // names no other); never the credential itself, whose stored
            // password is what no longer works.
            ChangeReason::Reconcile => credential
                .reconcile_with
                .clone()
                .or_else(|| credential.change_with.clone())
                .ok_or_else(|| {
                    refuse(
                        "has neither reconcile_with nor change_with to set a new password through"
                            .into(),
                    )
                })?,
            _ => credential
                .change_with
                .clone()
                .unwrap_or_else(|| name.clone()),
        };
        let devices = if !devices.is_empty() {
            devices
        } else {
            self.devices_of(credential)?
        };
        let Some(first) = devices.first() else {
            return Err(refuse(
                "belongs to no device and no task uses it: name the devices (--device)".into(),
            ));
        };
        let (environment, system) = match self.store.find(Kind::Device, first)? {
            Some(Record::Device(d)) => (d.environment, d.system),
            _ => return Err(refuse(format!("device '{first}' does not exist"))),
        };
        let environment_of_change = environment.clone();
        let task = Task {
            meta: Meta {
                name: format!("password change of {name}"),
                enabled: true,
                ..Meta::default()
            },
            description: String::new(),
            template,
            environment,
            system,
            devices: devices.clone(),
            credential: login.clone(),
            timeout_secs: crate::domain::DEFAULT_TASK_TIMEOUT_SECS,
            parallelism: devices.len().max(1) as u32,
            ..Task::default()
        };
        // The credential's policy, else its environment's, else the default.
        let policy = match &credential.password_policy {
            Some(p) => p.clone(),
            None => match self.store.find(Kind::Environment, &environment_of_change)? {
                Some(Record::Environment(e)) => e.password_policy.unwrap_or_default(),
                _ => Default::default(),
            },
        };
        let cipher = self.store.cipher();
        let password = if new_password {
            let plain = Zeroizing::new(policy.generate().map_err(refuse)?);
            Some(cipher.seal(plain.as_bytes()))
        } else {
            None
        };
        let private_key = if new_key {
            let plain = new_key_pair(&name).map_err(refuse)?;
            Some(cipher.seal(plain.as_bytes()))
        } else {
            None
        };
        let ops = self.plan(
            &task,
            &[],
            &BTreeMap::new(),
            Trigger::CredentialChange {
                credential: name.clone(),
                reason: reason.clone(),
            },
            actor,
            Timestamp::now(),
            None,
        )?;
        state.status = SecretStatus::Changing {
            ops: ops.iter().map(|o| o.id).collect(),
        };
        state.pending = Some(PendingChange {
            password,
            private_key,
            reason: reason.clone(),
            started_at: Timestamp::now(),
            started_by: actor.to_string(),
        });
        let mut changes: Vec<Change> = ops
            .iter()
            .map(|o| Change::PutOperation(Box::new(o.clone())))
            .collect();
        changes.push(Change::PutSecretState(Box::new(state)));
        self.journal
            .commit(
                changes,
                vec![NewAuditEvent::new(
                    actor,
                    "credential.change.start",
                    format!("credential {name}"),
                    format!(
                        "reason: {reason}; devices: {}; as {login}; operations {}",
                        devices.join(", "),
                        ops.iter()
                            .map(|o| o.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )],
            )
            .await?;
        self.hand_over(ops.clone(), task.parallelism as usize);
        Ok(ops)
    }

    /// The devices a credential is used on: its own device, else those of
    /// the tasks that log in with it.
    fn devices_of(&self, credential: &Credential) -> Result<Vec<String>, EngineError> {
        if let Some(d) = &credential.device {
            return Ok(vec![d.clone()]);
        }
        let mut devices: Vec<String> = Vec::new();
        for record in self.store.list(Kind::Task)? {
            if let Record::Task(t) = record {
                if t.credential == credential.meta.name {
                    for d in t.devices {
                        if !devices.contains(&d) {
                            devices.push(d);
                        }
                    }
                }
            }
        }
        Ok(devices)
    }

    /// After an operation of a change ended: once all of the change's
    /// operations have, the new password is stored if every one was
    /// verified; the credential is out of sync if any device may hold the
    /// new one; else the change failed and the old password stays. Then
    /// the children's changes start.
    pub(super) async fn conclude_change(&self, op: &Operation) -> Result<(), EngineError> {
        let Trigger::CredentialChange {
            credential: name, ..
        } = &op.trigger
        else {
            return Ok(());
        };
        let children = {
            let _guard = self.write_lock.lock().await;
            let Some(Record::Credential(mut credential)) =
                self.store.find(Kind::Credential, name)?
            else {
                return Ok(());
            };
            let Some(mut state) = self.store.secret_state(credential.meta.id)? else {
                return Ok(());
            };
            let SecretStatus::Changing { ops } = &state.status else {
                return Ok(());
            };
            if !ops.contains(&op.id) {
                return Ok(());
            }
            let mut finals = Vec::new();
            for id in ops {
                match self.store.operation(*id)? {
                    Some(o) if o.state.is_final() => finals.push(o),
                    Some(_) => return Ok(()),
                    None => {}
                }
            }
            let Some(pending) = state.pending.clone() else {
                return Ok(());
            };
            let now = Timestamp::now();
            let ok: Vec<&Operation> = finals
                .iter()
                .filter(|o| o.state == OpState::Succeeded)
                .collect();
            // Failed after the change template ran: the device may hold the new password.
            let unverified: Vec<&Operation> = finals
                .iter()
                .filter(|o| o.state == OpState::Failed && o.exit_status == Some(0))
                .collect();
            let failures = || {
                finals
                    .iter()
                    .filter(|o| o.state != OpState::Succeeded)
                    .map(|o| {
                        format!(
                            "{}: {}",
                            o.device,
                            o.error.as_deref().unwrap_or(o.state.as_str())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let mut changes = Vec::new();
            let (action, details, children) = if !finals.is_empty() && ok.len() == finals.len() {
                let mut previous = PreviousSecret {
                    password: None,
                    private_key: None,
                    passphrase: None,
                    replaced_at: now,
                };
                if let Some(new) = pending.password {
                    previous.password = credential.password.replace(new);
                }
                if let Some(new) = pending.private_key {
                    // The new key is not encrypted: it is sealed like every secret.
                    previous.private_key = credential.private_key.replace(new);
                    previous.passphrase = credential.passphrase.take();
                }
                state.previous.insert(0, previous);
                state.previous.truncate(PREVIOUS_KEPT);
                state.pending = None;
                // A check-out still running ends with this change.
                state.rotate_at = None;
                state.status = SecretStatus::Ok;
                state.changed_at = Some(now);
                state.changes += 1;
                // Not an edit: the revision stays, so requests that pinned
                // the credential still run, with the new password.
                changes.push(Change::Put(Box::new(Record::Credential(
                    credential.clone(),
                ))));
                (
                    "credential.changed",
                    format!(
                        "verified on {}; reason: {}",
                        ok.iter()
                            .map(|o| o.device.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        pending.reason
                    ),
                    credential.children.clone(),
                )
            } else if ok.is_empty() && unverified.is_empty() {
                state.pending = None;
                let why = failures();
                state.status = SecretStatus::ChangeFailed { why: why.clone() };
                (
                    "credential.change.failed",
                    format!("the old password stays: {why}"),
                    Vec::new(),
                )
            } else {
                // The new password stays sealed in `pending`, for recovery.
                let why = failures();
                state.status = SecretStatus::OutOfSync { why: why.clone() };
                (
                    "credential.out-of-sync",
                    format!(
                        "the stored (old) password stays; changed on: {}; {why}",
                        ok.iter()
                            .map(|o| o.device.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Vec::new(),
                )
            };
            changes.push(Change::PutSecretState(Box::new(state)));
            self.journal
                .commit(
                    changes,
                    vec![NewAuditEvent::new(
                        "gatehouse",
                        action,
                        format!("credential {name}"),
                        details,
                    )],
                )
                .await?;
            children
        };
        for child in children {
            let started = async {
                let c = self.credential(&child)?;
                self.start_change(
                    &c,
                    Vec::new(),
                    ChangeReason::Parent {
                        credential: name.clone(),
                    },
                    &op.requested_by,
                )
                .await
            }
            .await;
            if let Err(e) = started {
                self.audit(vec![NewAuditEvent::new(
                    "gatehouse",
                    "credential.change.refused",
                    format!("credential {child}"),
                    format!("after its parent {name} changed: {e}"),
                )])
                .await?;
            }
        }
        Ok(())
    }

    /// Every credential's secret state, by credential id.
    fn states_by_credential(
        &self,
    ) -> Result<BTreeMap<crate::domain::Id, SecretState>, EngineError> {
        Ok(self
            .store
            .secret_states()?
            .into_iter()
            .map(|s| (s.credential, s))
            .collect())
    }

    /// Why a change's operation may not start: its change was given up.
    pub(super) fn change_under_way(&self, name: &str, op: crate::domain::Id) -> Result<(), String> {
        let credential = self.credential(name).map_err(|e| e.to_string())?;
        let state = self
            .store
            .secret_state(credential.meta.id)
            .map_err(|e| e.to_string())?;
        match state.map(|s| s.status) {
            Some(SecretStatus::Changing { ops }) if ops.contains(&op) => Ok(()),
            _ => Err(format!(
                "the password change of credential '{name}' it belongs to is no longer under way"
            )),
        }
    }

    /// Changes that were under way when the server stopped and whose
    /// operations have all ended since (at recovery) are concluded.
    pub(super) async fn conclude_stranded_changes(&self) -> Result<(), EngineError> {
        for state in self.store.secret_states()? {
            if let SecretStatus::Changing { ops } = &state.status {
                if let Some(Some(op)) = ops
                    .first()
                    .map(|id| self.store.operation(*id))
                    .transpose()?
                {
                    self.conclude_change(&op).await?;
                }
            }
        }
        Ok(())
    }

    /// Where the secret of each credential the caller may see stands.
    pub(super) fn credential_states(&self, who: &Principal<'_>) -> Result<Response, EngineError> {
        self.authorize(who, Effect::List(Kind::Credential))?;
        let states = self.states_by_credential()?;
        let mut out = Vec::new();
        for record in self.store.list(Kind::Credential)? {
            if self.authorize(who, Effect::Read(&record)).is_err() {
                continue;
            }
            let Record::Credential(c) = record else {
                continue;
            };
            let state = states.get(&c.meta.id).cloned().unwrap_or_default();
            out.push(CredentialState {
                name: c.meta.name.clone(),
                next_due: c.rotate_every_secs.map(|every| {
                    state
                        .changed_at
                        .unwrap_or(c.meta.created_at)
                        .after_secs(every)
                }),
                status: state.status,
                changed_at: state.changed_at,
                verified_at: state.verified_at,
                changes: state.changes,
            });
        }
        Ok(Response::CredentialStates(out))
    }

    /// Starts the changes of credentials past their maximum age; called
    /// every second. One that cannot start is marked so (and audited once),
    /// not tried every second.
    pub(super) async fn rotate_due(&self) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let states = self.states_by_credential()?;
        for record in self.store.list(Kind::Credential)? {
            let Record::Credential(c) = record else {
                continue;
            };
            // A check-out period that ended: the change a view asked for.
            if let Some(state) = states.get(&c.meta.id) {
                if let Some((at, by)) = &state.rotate_at {
                    if *at <= now && state.status == SecretStatus::Ok && c.meta.enabled {
                        let mut cleared = state.clone();
                        cleared.rotate_at = None;
                        self.journal
                            .commit(vec![Change::PutSecretState(Box::new(cleared))], vec![])
                            .await?;
                        if let Err(e) = self
                            .start_change(
                                &c,
                                Vec::new(),
                                ChangeReason::AfterView { by: by.clone() },
                                "gatehouse",
                            )
                            .await
                        {
                            self.audit(vec![NewAuditEvent::new(
                                "gatehouse",
                                "credential.change.refused",
                                format!("credential {}", c.meta.name),
                                format!("after its check-out by {by}: {e}"),
                            )])
                            .await?;
                        }
                        continue;
                    }
                }
            }
            let Some(every) = c.rotate_every_secs else {
                continue;
            };
            let state = state_of(&states, c.meta.id);
            if !c.meta.enabled || state.status != SecretStatus::Ok {
                continue;
            }
            let from = state.changed_at.unwrap_or(c.meta.created_at);
            if now < from.after_secs(every) {
                continue;
            }
            // Inside its rotation window only (the server's local time).
            if let Some(window) = &c.rotation_window {
                use chrono::Timelike;
                let local = chrono::Local::now();
                if !window.contains(local.hour() * 60 + local.minute()) {
                    continue;
                }
            }
            if let Err(e) = self
                .start_change(&c, Vec::new(), ChangeReason::MaxAge, "gatehouse")
                .await
            {
                let why = format!("the maximum-age change could not start: {e}");
                let mut state = state;
                state.status = SecretStatus::ChangeFailed { why: why.clone() };
                self.journal
                    .commit(
                        vec![Change::PutSecretState(Box::new(state))],
                        vec![NewAuditEvent::new(
                            "gatehouse",
                            "credential.change.refused",
                            format!("credential {}", c.meta.name),
                            why,
                        )],
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// The runner's hold: an operation that logs in with a credential whose
/// password is being changed waits for the change to end (it would log in
/// with a password that is changing under it); the change's own
/// operations do not wait.
pub(super) fn hold(engine: std::sync::Weak<Engine>) -> crate::exec::Hold {
    std::sync::Arc::new(move |op: &Operation| {
        let engine = engine.upgrade()?;
        if op.credential.is_empty() {
            return None;
        }
        // Most of the time nothing is changing: no record is read then.
        let changing = engine.store.secret_states().ok()?;
        if !changing
            .iter()
            .any(|s| matches!(s.status, SecretStatus::Changing { .. }))
        {
            return None;
        }
        let credential = engine.credential(&op.credential).ok()?;
        let state = changing
            .into_iter()
            .find(|s| s.credential == credential.meta.id)?;
        match state.status {
            SecretStatus::Changing { ops } if !ops.contains(&op.id) => Some(format!(
                "the password of credential '{}' is being changed (operation {})",
                op.credential,
                ops.iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        }
    })
}

impl Engine {
    /// Starts the periodic checks that are due (`verify_every`): each logs
    /// in with the stored password on the credential's devices, off the
    /// tick; one that fails marks the credential out of sync.
    pub(super) async fn verify_due(self: &std::sync::Arc<Self>) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let states = self.states_by_credential()?;
        // A few new checks a second: at a start with many due, the rest
        // follow at the next ticks instead of all at once.
        let mut started = 0;
        for record in self.store.list(Kind::Credential)? {
            if started == CHECKS_PER_TICK {
                break;
            }
            let Record::Credential(c) = record else {
                continue;
            };
            let Some(every) = c.verify_every_secs else {
                continue;
            };
            let mut state = state_of(&states, c.meta.id);
            if !c.meta.enabled || state.status != SecretStatus::Ok {
                continue;
            }
            let from = state
                .verified_at
                .or(state.changed_at)
                .unwrap_or(c.meta.created_at);
            if now < from.after_secs(every) {
                continue;
            }
            let devices = self.devices_of(&c)?;
            // Marked first, so the next tick does not start it again.
            state.verified_at = Some(now);
            self.journal
                .commit(vec![Change::PutSecretState(Box::new(state))], vec![])
                .await?;
            started += 1;
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.verify_now(&c, &devices).await {
                    tracing::error!(credential = %c.meta.name, error = %e, "password check");
                }
            });
        }
        Ok(())
    }

    /// Logs in with the stored password on each device; marks the
    /// credential out of sync (audited) at the first that refuses it.
    async fn verify_now(&self, c: &Credential, devices: &[String]) -> Result<(), EngineError> {
        for name in devices {
            let Some(Record::Device(device)) = self.store.find(Kind::Device, name)? else {
                continue;
            };
            let Err(e) = crate::exec::check_login(
                &self.store,
                &device,
                c,
                std::time::Duration::from_secs(15),
            )
            .await
            else {
                continue;
            };
            // Only a refused login says the password changed; an
            // unreachable device says nothing about it (but is logged).
            if !matches!(e, crate::exec::RunError::Auth(_)) {
                tracing::warn!(
                    credential = %c.meta.name,
                    device = %name,
                    error = %crate::text::printable(&e.to_string()),
                    "password check could not log in"
                );
                continue;
            }
            let _guard = self.write_lock.lock().await;
            let Some(mut state) = self.store.secret_state(c.meta.id)? else {
                return Ok(());
            };
            if state.status != SecretStatus::Ok {
                return Ok(());
            }
            let why = format!("the stored password no longer logs in to {name}: {e}");
            state.status = SecretStatus::OutOfSync { why: why.clone() };
            self.journal
                .commit(
                    vec![Change::PutSecretState(Box::new(state))],
                    vec![NewAuditEvent::new(
                        "gatehouse",
                        "credential.verify.failed",
                        format!("credential {}", c.meta.name),
                        why,
                    )],
                )
                .await?;
            return Ok(());
        }
        Ok(())
    }

    /// After a run that logged in with a credential set to
    /// `rotate_after_use` ended (the last open operation of its request
    /// with that credential; a JIT grant's privilege is still in use, so
    /// its revoke counts, not its grant), its password is changed.
    pub(super) async fn rotate_after_use(&self, op: &Operation) -> Result<(), EngineError> {
        if op.credential.is_empty() || matches!(op.trigger, Trigger::CredentialChange { .. }) {
            return Ok(());
        }
        let Ok(credential) = self.credential(&op.credential) else {
            return Ok(());
        };
        if !credential.rotate_after_use || op.jit_until.is_some() || !credential.meta.enabled {
            return Ok(());
        }
        let still_open = self
            .store
            .unfinished_operations()?
            .iter()
            .any(|o| o.request == op.request && o.credential == op.credential && o.id != op.id);
        if still_open {
            return Ok(());
        }
        if let Err(e) = self
            .start_change(
                &credential,
                Vec::new(),
                ChangeReason::AfterUse { operation: op.id },
                "gatehouse",
            )
            .await
        {
            self.audit(vec![NewAuditEvent::new(
                "gatehouse",
                "credential.change.refused",
                format!("credential {}", credential.meta.name),
                format!("after operation {} used it: {e}", op.id),
            )])
            .await?;
        }
        Ok(())
    }
}

/// A new ed25519 key pair in OpenSSH's format, from the OS's random
/// source, commented with the credential's name.
fn new_key_pair(credential: &str) -> Result<Zeroizing<String>, String> {
    use getrandom::rand_core::UnwrapErr;
    use russh::keys::ssh_key::LineEnding;
    let mut key = russh::keys::PrivateKey::random(
        &mut UnwrapErr(getrandom::SysRng),
        russh::keys::Algorithm::Ed25519,
    )
    .map_err(|e| format!("cannot make a key pair: {e}"))?;
    key.set_comment(format!("gatehouse {credential}"));
    key.to_openssh(LineEnding::LF)
        .map(|k| Zeroizing::new(k.to_string()))
        .map_err(|e| format!("cannot write the new key: {e}"))
}

/// How many periodic password checks start in one tick (a second).
const CHECKS_PER_TICK: usize = 8;

/// A credential's secret state, or the state of one never changed.
fn state_of(
    states: &BTreeMap<crate::domain::Id, SecretState>,
    credential: crate::domain::Id,
) -> SecretState {
    states.get(&credential).cloned().unwrap_or(SecretState {
        credential,
        ..SecretState::default()
    })
}
