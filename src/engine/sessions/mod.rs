//! Privileged sessions: the server logs in to a device with a credential
//! the user never sees, asks for a PTY of the user's terminal, and relays
//! bytes both ways, recording what the device sent (redacted of the
//! session's secrets) and what the user typed, and auditing each command
//! line. A policy that covers sessions lets it open, as for tasks
//! ([`terms`]); monitors watch and end open ones ([`live`]).

mod elevation;
mod live;
mod relay;
mod terms;

pub use live::LiveSessions;

use super::api::ConnectSpec;
use super::{Engine, EngineError, Response};
use crate::access::{Effect, Principal};
use crate::domain::{
    Id, Kind, LineCatcher, Record, SessionEnd, SessionInput, SessionRecord, Timestamp,
};
use crate::store::recording::{self, Header, Track};
use crate::store::{Change, NewAuditEvent};
use crate::template::Redactor;
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
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
    /// device sends (redacted). The answer is the session as it ended, or
    /// the request filed when the session needs approval first.
    pub async fn session(
        &self,
        login: &str,
        spec: ConnectSpec,
        input: mpsc::Receiver<SessionInput>,
        output: mpsc::Sender<Vec<u8>>,
    ) -> Result<Response, EngineError> {
        let person = self.principal_records(login)?;
        let who = person.principal();
        let opening = match self.session_terms(&who, &spec).await? {
            terms::Terms::Filed(req) => return Ok(Response::Filed(req)),
            terms::Terms::Open(o) => *o,
        };
        let id = self.store.next_id()?;
        let grant_op = self
            .grant_for_session(
                id,
                login,
                &opening.device,
                &opening.credential,
                opening.window_end,
            )
            .await;
        let grant_op = match grant_op {
            Ok(op) => op,
            Err(e) => {
                return self
                    .refuse_session(login, &opening.device.meta.name, e.to_string())
                    .await
            }
        };
        match self
            .open_and_relay(id, login, &spec, &opening, grant_op, input, output)
            .await
        {
            Ok(response) => {
                self.after_session(id, grant_op, &opening.credential)
                    .await?;
                Ok(response)
            }
            Err(e) => {
                // It never opened: the privilege granted for it goes again.
                if let Some(op) = grant_op {
                    self.expire_session_grant(id, op).await?;
                }
                Err(e)
            }
        }
    }

    /// Logs in, opens the shell and relays it (see [`Engine::session`]).
    #[allow(clippy::too_many_arguments)]
    async fn open_and_relay(
        &self,
        id: Id,
        login: &str,
        spec: &ConnectSpec,
        opening: &terms::Opening,
        grant_op: Option<Id>,
        input: mpsc::Receiver<SessionInput>,
        output: mpsc::Sender<Vec<u8>>,
    ) -> Result<Response, EngineError> {
        let target = crate::exec::login_target(&self.store, &opening.device, &opening.credential)
            .map_err(|e| EngineError::Denied(e.to_string()))?;
        let secrets: Vec<(String, SecretString)> = [
            ("PASSWORD", target.password.as_ref()),
            ("PASSPHRASE", target.passphrase.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, s)| s.map(|s| (name.to_string(), s.clone())))
        .collect();
        let redactor = Redactor::new(&secrets);
        let cols = spec.cols.clamp(10, MOST_COLUMNS);
        let rows = spec.rows.clamp(2, MOST_ROWS);
        let term = terminal_type(&spec.term);
        let device = &opening.device;

        let connected = crate::exec::ssh::connect(&target, CONNECT_TIMEOUT, CONNECT_TIMEOUT).await;
        drop(target);
        let ssh = match connected {
            Ok(s) => s,
            Err(e) => {
                let why = format!("cannot log in: {}", redactor.redact_text(&e.to_string()));
                return self.refuse_session(login, &device.meta.name, why).await;
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
        let channel = match channel {
            Ok(c) => c,
            Err(e) => {
                ssh.close().await;
                let why = format!("no shell: {}", redactor.redact_text(&e.to_string()));
                return self.refuse_session(login, &device.meta.name, why).await;
            }
        };

        let now = Timestamp::now();
        let record = SessionRecord {
            id,
            user: login.to_string(),
            device: device.meta.name.clone(),
            credential: opening.credential.meta.name.clone(),
            policy: opening.policy.as_ref().map(|p| p.meta.name.clone()),
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
            request: opening.request.as_ref().map(|r| r.id),
            window_end: opening.window_end,
            change: opening.change.clone(),
            deviations: Vec::new(),
            denied: 0,
        };
        let header = Header {
            cols,
            rows,
            started_unix: now.0 / 1000,
            term: &term,
            title: &format!("{}@{}", opening.credential.username, device.meta.name),
        };
        let writers = self
            .store
            .recording_writer(record.id, Track::Output, &header)
            .and_then(|o| {
                self.store
                    .recording_writer(record.id, Track::Input, &header)
                    .map(|i| (o, i))
            });
        let (out_rec, in_rec) = match writers {
            Ok(w) => w,
            Err(e) => {
                ssh.close().await;
                return Err(e.into());
            }
        };
        // On a shared store, this server holds the session: another that
        // starts leaves it open; a survivor ends it if this one dies.
        if let Some(me) = self.server_id() {
            self.store.claim_operations(me, &[record.id])?;
        }
        self.journal
            .commit(
                vec![Change::PutSession(Box::new(record.clone()))],
                vec![NewAuditEvent::new(
                    login,
                    "session.start",
                    target_of(&record),
                    format!(
                        "credential {}; policy {}; request {}; change {}; window until {}; JIT grant {}; reason: {}; justification: {}; governance id: {}",
                        record.credential,
                        record.policy.as_deref().unwrap_or("-, as Superuser"),
                        record.request.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                        record.change.as_ref().map(|c| crate::text::printable(&c.code)).unwrap_or_else(|| "-".into()),
                        record.window_end.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                        grant_op.map(|op| format!("by operation {op}")).unwrap_or_else(|| "-".into()),
                        printable_or_dash(&record.reason),
                        printable_or_dash(&record.justification),
                        printable_or_dash(&record.governance_id),
                    ),
                )],
            )
            .await?;
        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        let live = Arc::new(live::LiveSession {
            watchers: Mutex::new(Vec::new()),
            end: Mutex::new(Some(end_tx)),
            device: device.meta.name.clone(),
        });
        self.live_sessions.add(record.id, live.clone());
        let deny = opening
            .policy
            .as_ref()
            .map(|p| (p.meta.name.clone(), p.deny_commands.clone()))
            .filter(|(_, d)| !d.is_empty());
        let relay = relay::Relay {
            engine: self,
            login,
            record,
            channel,
            redactor,
            out_rec,
            in_rec,
            live: live.clone(),
            output,
            lines: LineCatcher::default(),
            deny,
        };
        let record = relay.run(input, end_rx).await;
        self.live_sessions.remove(record.id);
        ssh.close().await;
        let mut details = format!(
            "{}; {} command line(s), {} bytes of output",
            record
                .end
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            record.commands,
            record.output_bytes
        );
        let mut events = Vec::new();
        if !record.deviations.is_empty() {
            details.push_str(&format!(
                "; {} outside the declared change",
                record.deviations.len()
            ));
            events.push(NewAuditEvent::new(
                login,
                "change.deviation",
                target_of(&record),
                format!(
                    "change {}: {} command line(s) outside its plan: {}",
                    crate::text::printable(
                        record
                            .change
                            .as_ref()
                            .map(|c| c.code.as_str())
                            .unwrap_or("-")
                    ),
                    record.deviations.len(),
                    crate::text::printable(&record.deviations.join(" | "))
                ),
            ));
        }
        events.insert(
            0,
            NewAuditEvent::new(login, "session.end", target_of(&record), details),
        );
        self.journal
            .commit(vec![Change::PutSession(Box::new(record.clone()))], events)
            .await?;
        Ok(Response::Session(Box::new(record)))
    }

    /// Sessions this user may see, newest first.
    pub(super) fn sessions(
        &self,
        who: &Principal<'_>,
        open_only: bool,
        text: Option<&str>,
    ) -> Result<Response, EngineError> {
        let environments = self.device_environments()?;
        let text = text.filter(|t| !t.is_empty());
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
                && text.is_none_or(|t| recording_contains(&self.store, s.id, t))
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
            .ok_or_else(|| EngineError::Missing(format!("session {id}")))?;
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
        let text = self
            .store
            .recording(id, track)?
            .ok_or_else(|| EngineError::Missing(format!("the recording of session {id}")))?;
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
        self.end_sessions_where(|engine, s| Ok(!engine.runs_elsewhere(s.id)?))
            .await
    }

    /// Ends the open sessions a server that died was holding.
    pub(in crate::engine) async fn end_sessions_of(&self, dead: u64) -> Result<(), EngineError> {
        self.end_sessions_where(|engine, s| Ok(engine.store.operation_claim(s.id)? == Some(dead)))
            .await
    }

    /// Ends the open sessions `ends` picks: their server stopped.
    async fn end_sessions_where(
        &self,
        ends: impl Fn(&Self, &crate::domain::SessionRecord) -> Result<bool, EngineError>,
    ) -> Result<(), EngineError> {
        let open = self
            .store
            .sessions_newest_first(usize::MAX, |s| s.is_open())?;
        for mut s in open {
            if !ends(self, &s)? {
                continue;
            }
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
        // Their privileges, granted for them, go now.
        self.expire_grants_of_ended_sessions().await
    }
}

/// Whether a session's recorded output (as the user saw it: redacted)
/// contains `text`, escape sequences and line ends aside.
fn recording_contains(store: &crate::store::Store, id: Id, text: &str) -> bool {
    match store.recording(id, Track::Output) {
        Ok(Some(cast)) => {
            let shown: String = recording::events(&cast)
                .into_iter()
                .filter(|e| e.code == "o")
                .map(|e| e.text)
                .collect();
            crate::text::without_terminal_escapes(&shown).contains(text)
        }
        _ => false,
    }
}

/// The audit target of a session's events.
pub(super) fn target_of(record: &SessionRecord) -> String {
    format!("session {} (device {})", record.id, record.device)
}

/// The terminal type a client gave, as a safe word.
fn terminal_type(given: &str) -> String {
    let term: String = given
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.+".contains(*c))
        .take(64)
        .collect();
    if term.is_empty() {
        "xterm".to_string()
    } else {
        term
    }
}

fn printable_or_dash(v: &Option<String>) -> String {
    v.as_deref()
        .map(crate::text::printable)
        .unwrap_or_else(|| "-".into())
}
