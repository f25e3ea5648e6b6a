//! Privileged sessions: the server logs in to a device with a credential
//! the user never sees, asks for a PTY of the user's terminal, and relays
//! bytes both ways, recording what the device sent (redacted of the
//! session's secrets) and what the user typed, and auditing each command
//! line. A policy that covers sessions lets it open, as for tasks.

use super::api::ConnectSpec;
use super::{Engine, EngineError, Response};
use crate::access::policy::{check_fields, covering_session, RequestFields, SessionTarget};
use crate::access::{Effect, Principal};
use crate::domain::{
    Credential, Device, Id, Kind, LineCatcher, Record, SessionEnd, SessionInput, SessionRecord,
    Timestamp,
};
use crate::store::recording::{self, Header, Track, Writer};
use crate::store::{Change, NewAuditEvent};
use crate::template::Redactor;
use russh::ChannelMsg;
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest terminal a client may ask for.
const MOST_COLUMNS: u16 = 1000;
const MOST_ROWS: u16 = 500;

impl Engine {
    /// Opens a session for `login` and relays it until it ends: `input`
    /// brings the client's keystrokes and resizes, `output` takes what the
    /// device sends (redacted). The answer is the session as it ended.
    pub async fn session(
        &self,
        login: &str,
        spec: ConnectSpec,
        mut input: mpsc::Receiver<SessionInput>,
        output: mpsc::Sender<Vec<u8>>,
    ) -> Result<Response, EngineError> {
        let (user, roles) = self.principal_records(login)?;
        let who = Principal {
            user: &user,
            roles: roles.iter().collect(),
        };
        let (device, credential, policy) = self.session_terms(&who, &spec).await?;
        let target = crate::exec::login_target(&self.store, &device, &credential)
            .map_err(|e| EngineError::Denied(e.to_string()))?;
        let secrets: Vec<(String, SecretString)> = [
            ("PASSWORD", target.password.as_ref()),
            ("PASSPHRASE", target.passphrase.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, s)| s.map(|s| (name.to_string(), s.clone())))
        .collect();
        let mut redactor = Redactor::new(&secrets);
        let cols = spec.cols.clamp(10, MOST_COLUMNS);
        let rows = spec.rows.clamp(2, MOST_ROWS);
        let term = crate::text::printable(&spec.term)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.+".contains(*c))
            .take(64)
            .collect::<String>();
        let term = if term.is_empty() {
            "xterm".to_string()
        } else {
            term
        };

        let connected = crate::exec::ssh::connect(&target, CONNECT_TIMEOUT, CONNECT_TIMEOUT).await;
        drop(target);
        let ssh = match connected {
            Ok(s) => s,
            Err(e) => {
                let why = redactor.redact_text(&e.to_string());
                self.audit(vec![NewAuditEvent::new(
                    login,
                    "session.refused",
                    format!("device {}", device.meta.name),
                    format!("cannot log in: {why}"),
                )])
                .await?;
                return Err(EngineError::Denied(format!(
                    "cannot open a session on device '{}': {why}",
                    device.meta.name
                )));
            }
        };
        let channel = async {
            let channel = ssh.handle.channel_open_session().await?;
            channel
                .request_pty(true, &term, cols as u32, rows as u32, 0, 0, &[])
                .await?;
            channel.request_shell(true).await?;
            Ok::<_, russh::Error>(channel)
        }
        .await;
        let mut channel = match channel {
            Ok(c) => c,
            Err(e) => {
                ssh.close().await;
                return Err(EngineError::Denied(format!(
                    "device '{}' gave no shell: {}",
                    device.meta.name,
                    redactor.redact_text(&e.to_string())
                )));
            }
        };

        let now = Timestamp::now();
        let mut record = SessionRecord {
            id: self.store.next_id()?,
            user: login.to_string(),
            device: device.meta.name.clone(),
            credential: credential.meta.name.clone(),
            policy: policy.clone(),
            reason: spec.reason.clone(),
            justification: spec.justification.clone(),
            governance_id: spec.governance_id.clone(),
            started_at: now,
            ended_at: None,
            end: None,
            term: term.clone(),
            cols,
            rows,
            output_bytes: 0,
            commands: 0,
        };
        let header = Header {
            cols,
            rows,
            started_unix: now.0 / 1000,
            term: &term,
            title: &format!("{}@{}", credential.username, device.meta.name),
        };
        let dir = self.store.dir().to_path_buf();
        let writers = Writer::create(&dir, record.id, Track::Output, &header)
            .and_then(|o| Writer::create(&dir, record.id, Track::Input, &header).map(|i| (o, i)));
        let (mut out_rec, mut in_rec) = match writers {
            Ok(w) => w,
            Err(e) => {
                ssh.close().await;
                return Err(e.into());
            }
        };
        self.journal
            .commit(
                vec![Change::PutSession(Box::new(record.clone()))],
                vec![NewAuditEvent::new(
                    login,
                    "session.start",
                    format!("session {} (device {})", record.id, record.device),
                    format!(
                        "credential {}; policy {}; reason: {}; justification: {}; governance id: {}",
                        record.credential,
                        policy.as_deref().unwrap_or("-, as Superuser"),
                        printable_or_dash(&record.reason),
                        printable_or_dash(&record.justification),
                        printable_or_dash(&record.governance_id),
                    ),
                )],
            )
            .await?;

        let mut lines = LineCatcher::default();
        let mut exit: Option<u32> = None;
        let mut commands: Vec<String> = Vec::new();
        let end = loop {
            tokio::select! {
                msg = channel.wait() => match msg {
                    Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                        record.output_bytes += data.len() as u64;
                        for (_, shown) in redactor.feed(0, &data) {
                            if let Err(e) = out_rec.bytes(&shown) {
                                tracing::error!(session = %record.id, error = %e, "cannot record a session's output");
                            }
                            if output.send(shown).await.is_err() {
                                break;
                            }
                        }
                        if output.is_closed() {
                            break SessionEnd::Disconnected;
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(exit_status),
                    Some(ChannelMsg::Close) | None => break SessionEnd::Exited(exit),
                    Some(_) => {}
                },
                typed = input.recv() => match typed {
                    Some(SessionInput::Bytes(bytes)) => {
                        if let Err(e) = in_rec.bytes(&bytes) {
                            tracing::error!(session = %record.id, error = %e, "cannot record a session's input");
                        }
                        commands.extend(lines.feed(&bytes).into_iter().map(|l| redactor.redact_text(&l)));
                        if channel.data(&bytes[..]).await.is_err() {
                            break SessionEnd::Failed("the device stopped reading".into());
                        }
                    }
                    Some(SessionInput::Resize { cols, rows }) => {
                        let (cols, rows) = (cols.clamp(10, MOST_COLUMNS), rows.clamp(2, MOST_ROWS));
                        let _ = channel.window_change(cols as u32, rows as u32, 0, 0).await;
                        let _ = out_rec.resize(cols, rows);
                    }
                    None => break SessionEnd::Disconnected,
                },
            }
            if !commands.is_empty() {
                record.commands += commands.len() as u32;
                let events = commands
                    .drain(..)
                    .map(|c| {
                        NewAuditEvent::new(
                            login,
                            "session.command",
                            format!("session {} (device {})", record.id, record.device),
                            c,
                        )
                    })
                    .collect();
                self.audit(events).await?;
            }
        };
        // What the redactor held back was no secret: shown and recorded.
        for (_, shown) in redactor.finish() {
            let _ = out_rec.bytes(&shown);
            let _ = output.send(shown).await;
        }
        let _ = channel.close().await;
        ssh.close().await;
        for writer in [out_rec, in_rec] {
            if let Err(e) = writer.finish() {
                tracing::error!(session = %record.id, error = %e, "cannot finish a session's recording");
            }
        }
        record.ended_at = Some(Timestamp::now());
        record.end = Some(end.clone());
        self.journal
            .commit(
                vec![Change::PutSession(Box::new(record.clone()))],
                vec![NewAuditEvent::new(
                    login,
                    "session.end",
                    format!("session {} (device {})", record.id, record.device),
                    format!(
                        "{end}; {} command line(s), {} bytes of output",
                        record.commands, record.output_bytes
                    ),
                )],
            )
            .await?;
        Ok(Response::Session(Box::new(record)))
    }

    /// The device, the credential and the policy a session opens under, or
    /// why it may not (audited).
    async fn session_terms(
        &self,
        who: &Principal<'_>,
        spec: &ConnectSpec,
    ) -> Result<(Device, Credential, Option<String>), EngineError> {
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
        let refuse = |why: String| async move {
            self.audit(vec![NewAuditEvent::new(
                login,
                "session.refused",
                format!("device {}", spec.device),
                why.clone(),
            )])
            .await?;
            Err::<(Device, Credential, Option<String>), EngineError>(EngineError::Denied(why))
        };
        if let Err(denial) = crate::access::authorize(
            who,
            Effect::OpenSession { device: &device },
            &super::StoreFacts(&self.store),
        ) {
            return refuse(denial.message).await;
        }
        let credential = match self.session_credential(&device, spec.credential.as_deref()) {
            Ok(c) => c,
            Err(why) => return refuse(why).await,
        };
        if who.is_superuser() {
            return Ok((device, credential, None));
        }
        let policies = self.policies()?;
        let now_local = chrono::Local::now().naive_local();
        let target = SessionTarget {
            device: &device,
            credential: &credential.meta.name,
        };
        let policy = match covering_session(&policies, login, &target, now_local) {
            Ok(p) => p.clone(),
            Err(why) => return refuse(why).await,
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
            emergency: false,
        };
        if let Err(why) = check_fields(&policy, &fields) {
            return refuse(why).await;
        }
        if policy.requires_approval {
            return refuse(format!(
                "policy {} requires approval, and sessions are opened only under policies without it for now",
                policy.meta.name
            ))
            .await;
        }
        if policy.requires_mfa {
            match self.check_totp(login, spec.totp.as_deref()).await {
                Ok(()) => {}
                Err(e @ (EngineError::MfaLocked { .. } | EngineError::MfaRequired { .. })) => {
                    return Err(e)
                }
                Err(e) => return refuse(e.to_string()).await,
            }
        }
        Ok((device, credential, Some(policy.meta.name.clone())))
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
        let owned: Vec<Credential> = self
            .store
            .list(Kind::Credential)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|r| match r {
                Record::Credential(c) if c.meta.enabled && c.device.as_deref() == Some(name) => {
                    Some(c)
                }
                _ => None,
            })
            .collect();
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

    /// Sessions this user may see, newest first.
    pub(super) fn sessions(
        &self,
        who: &Principal<'_>,
        open_only: bool,
    ) -> Result<Response, EngineError> {
        let environments = self.device_environments()?;
        let list = self.store.sessions_newest_first(10_000, |s| {
            (!open_only || s.is_open())
                && self
                    .authorize(
                        who,
                        Effect::SeeSession {
                            user: &s.user,
                            environment: environments.get(&s.device).map(String::as_str),
                        },
                    )
                    .is_ok()
        })?;
        Ok(Response::Sessions(list))
    }

    /// A session's recording, for whoever may see the session (the typed
    /// input only for holders of view-session-input).
    pub(super) async fn session_recording(
        &self,
        who: &Principal<'_>,
        id: Id,
        input: bool,
    ) -> Result<Response, EngineError> {
        let session = self
            .store
            .session(id)?
            .ok_or_else(|| EngineError::NotFound {
                kind: Kind::Device,
                name: format!("session {id}"),
            })?;
        let environments = self.device_environments()?;
        let environment = environments.get(&session.device).map(String::as_str);
        self.authorize(
            who,
            Effect::SeeSession {
                user: &session.user,
                environment,
            },
        )?;
        if input {
            self.authorize(who, Effect::SeeSessionInput { environment })?;
        }
        let track = if input { Track::Input } else { Track::Output };
        let text =
            recording::read(self.store.dir(), id, track)?.ok_or_else(|| EngineError::NotFound {
                kind: Kind::Device,
                name: format!("the recording of session {id}"),
            })?;
        self.audit(vec![NewAuditEvent::new(
            &who.user.meta.name,
            if input {
                "session.input.read"
            } else {
                "session.recording.read"
            },
            format!("session {id} (device {})", session.device),
            format!("{} bytes", text.len()),
        )])
        .await?;
        Ok(Response::Recording(text))
    }

    /// Each device's environment, by device name.
    fn device_environments(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, EngineError> {
        Ok(self
            .store
            .list(Kind::Device)?
            .into_iter()
            .filter_map(|r| match r {
                Record::Device(d) => Some((d.meta.name, d.environment)),
                _ => None,
            })
            .collect())
    }

    /// Sessions the store says are open were cut off when the server
    /// stopped: they end as such (their recordings keep what was written).
    pub(super) async fn end_interrupted_sessions(&self) -> Result<(), EngineError> {
        for mut s in self
            .store
            .sessions_newest_first(usize::MAX, |s| s.is_open())?
        {
            s.end = Some(SessionEnd::ServerStopped);
            s.ended_at = Some(Timestamp::now());
            let target = format!("session {} (device {})", s.id, s.device);
            self.journal
                .commit(
                    vec![Change::PutSession(Box::new(s))],
                    vec![NewAuditEvent::new(
                        "gatehouse",
                        "session.end",
                        target,
                        SessionEnd::ServerStopped.to_string(),
                    )],
                )
                .await?;
        }
        Ok(())
    }
}

fn printable_or_dash(v: &Option<String>) -> String {
    v.as_deref()
        .map(crate::text::printable)
        .unwrap_or_else(|| "-".into())
}
