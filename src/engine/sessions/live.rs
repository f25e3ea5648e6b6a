//! Open sessions, as the server relays them: who watches each, and the
//! way to end one from outside.

use super::super::{Engine, EngineError, Response};
use crate::access::Effect;
use crate::domain::{Id, Kind, SessionEnd};
use crate::store::recording::{self, Track};
use crate::store::NewAuditEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Output pieces a watcher may fall behind by before it is let go.
const WATCHER_QUEUE: usize = 1024;

/// One open session's handles.
pub(super) struct LiveSession {
    /// Held while output is recorded and sent to watchers, and while a
    /// watcher joins (reads the recording so far and is added): a joining
    /// watcher sees every byte once.
    pub watchers: Mutex<Vec<mpsc::Sender<Vec<u8>>>>,
    /// Ends the session from outside (a monitor, the server's shutdown).
    pub end: Mutex<Option<oneshot::Sender<SessionEnd>>>,
    pub device: String,
}

/// The open sessions of this server.
#[derive(Default)]
pub struct LiveSessions {
    map: Mutex<HashMap<Id, Arc<LiveSession>>>,
}

impl LiveSessions {
    pub(super) fn add(&self, id: Id, session: Arc<LiveSession>) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, session);
    }

    pub(super) fn remove(&self, id: Id) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// The sessions open through this server.
    pub(super) fn ids(&self) -> Vec<Id> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn get(&self, id: Id) -> Option<Arc<LiveSession>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

impl LiveSession {
    /// Sends a piece of output to every watcher; one that fell behind is
    /// let go (its stream ends). Call with `watchers` locked.
    pub(super) fn fan_out(watchers: &mut Vec<mpsc::Sender<Vec<u8>>>, bytes: &[u8]) {
        watchers.retain(|w| w.try_send(bytes.to_vec()).is_ok());
    }
}

impl Engine {
    /// Streams an open session to someone who may monitor it: the screen
    /// so far (the recording's output), then each piece as it comes, until
    /// the session ends or the watcher goes. Audited.
    pub async fn watch_session(
        &self,
        login: &str,
        id: Id,
        out: mpsc::Sender<Vec<u8>>,
    ) -> Result<Response, EngineError> {
        let person = self.principal_records(login)?;
        let who = person.principal();
        let session = self
            .store
            .session(id)?
            .ok_or_else(|| EngineError::Missing(format!("session {id}")))?;
        let environment = self.device_environment(&session.device)?;
        self.authorize(
            &who,
            Effect::MonitorSession {
                environment: environment.as_deref(),
            },
        )?;
        let Some(live) = self.live_sessions.get(id) else {
            // Open through another jump host's server: its recording is
            // in the shared database, followed as it grows.
            if self.store.shared() && session.is_open() {
                return self.watch_elsewhere(login, &session, out).await;
            }
            return Err(EngineError::Denied(format!(
                "session {id} is not open ({})",
                session.state_word()
            )));
        };
        let (tx, mut rx) = mpsc::channel(WATCHER_QUEUE);
        let so_far = {
            let mut watchers = live.watchers.lock().unwrap_or_else(|p| p.into_inner());
            let text = self.store.recording(id, Track::Output)?.unwrap_or_default();
            watchers.push(tx);
            text
        };
        let device = live.device.clone();
        // The session's relay holds the watchers: when it ends, so does
        // this stream (a handle kept here would keep it open).
        drop(live);
        self.audit(vec![NewAuditEvent::new(
            login,
            "session.watch",
            format!("session {id} (device {device})"),
            format!("watching {}'s session", session.user),
        )])
        .await?;
        for event in recording::events(&so_far) {
            if event.code == "o" && out.send(event.text.into_bytes()).await.is_err() {
                return Ok(Response::Done);
            }
        }
        while let Some(bytes) = rx.recv().await {
            if out.send(bytes).await.is_err() {
                break;
            }
        }
        Ok(Response::Done)
    }

    /// Follows a session open through another server of a shared store:
    /// its recording's lines as they are stored, until it ends there or
    /// the watcher goes. Audited as a watch.
    async fn watch_elsewhere(
        &self,
        login: &str,
        session: &crate::domain::SessionRecord,
        out: mpsc::Sender<Vec<u8>>,
    ) -> Result<Response, EngineError> {
        let id = session.id;
        self.audit(vec![NewAuditEvent::new(
            login,
            "session.watch",
            format!("session {id} (device {})", session.device),
            format!(
                "watching {}'s session, open on another jump host",
                session.user
            ),
        )])
        .await?;
        let mut next = 0u32;
        loop {
            let lines = self.store.recording_lines_from(id, Track::Output, next)?;
            // Line 0 is the header; every later piece is events only.
            let events = if next == 0 {
                recording::events(&lines.concat())
            } else {
                recording::event_lines(&lines.concat())
            };
            next += lines.len() as u32;
            for event in events {
                if event.code == "o" && out.send(event.text.into_bytes()).await.is_err() {
                    return Ok(Response::Done);
                }
            }
            let still_open = self.store.session(id)?.is_some_and(|s| s.is_open());
            if !still_open && lines.is_empty() {
                return Ok(Response::Done);
            }
            if out.is_closed() {
                return Ok(Response::Done);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Ends an open session for someone who may monitor it; its user sees
    /// who ended it and why. Audited when the session ends.
    pub(in crate::engine) async fn end_session(
        &self,
        who: &crate::access::Principal<'_>,
        id: Id,
        reason: String,
    ) -> Result<Response, EngineError> {
        if reason.trim().is_empty() {
            return Err(EngineError::Denied(
                "ending a session needs a reason its user is shown (--reason)".into(),
            ));
        }
        let session = self
            .store
            .session(id)?
            .ok_or_else(|| EngineError::Missing(format!("session {id}")))?;
        let environment = self.device_environment(&session.device)?;
        self.authorize(
            who,
            Effect::MonitorSession {
                environment: environment.as_deref(),
            },
        )?;
        let end = self
            .live_sessions
            .get(id)
            .and_then(|live| live.end.lock().unwrap_or_else(|p| p.into_inner()).take());
        match end {
            Some(end) => {
                let _ = end.send(SessionEnd::Terminated {
                    by: who.user.meta.name.clone(),
                    reason: crate::text::printable(&reason),
                });
                Ok(Response::Done)
            }
            // Open through another jump host's server: it is asked through
            // the store and ends it at its next round; answered once it has.
            None if self.store.shared() && session.is_open() => {
                self.end_elsewhere(who, &session, reason).await
            }
            None => Err(EngineError::Denied(format!(
                "session {id} is not open ({})",
                session.state_word()
            ))),
        }
    }

    async fn end_elsewhere(
        &self,
        who: &crate::access::Principal<'_>,
        session: &crate::domain::SessionRecord,
        reason: String,
    ) -> Result<Response, EngineError> {
        let id = session.id;
        let by = who.user.meta.name.clone();
        self.store.ask_session_end(
            id,
            &crate::store::cluster::SessionEndAsk {
                by: by.clone(),
                reason: crate::text::printable(&reason),
                at: crate::domain::Timestamp::now(),
            },
        )?;
        self.audit(vec![NewAuditEvent::new(
            &by,
            "session.end-asked",
            format!("session {id} (device {})", session.device),
            format!(
                "asked the jump host holding {}'s session to end it: {}",
                session.user,
                crate::text::printable(&reason)
            ),
        )])
        .await?;
        let lease = self
            .cluster
            .as_ref()
            .map(|m| m.lease)
            .unwrap_or(std::time::Duration::from_secs(20));
        let until = tokio::time::Instant::now() + lease;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if !self.store.session(id)?.is_some_and(|s| s.is_open()) {
                // Ended (by the ask, or on its own meanwhile): nothing is left to ask.
                self.store.forget_session_end(id)?;
                return Ok(Response::Done);
            }
        }
        Err(EngineError::Denied(format!(
            "session {id} is open through another jump host, which was asked to end it and has not yet (within {} s): it ends it when its server next looks, or its session ends with that server",
            lease.as_secs()
        )))
    }

    /// Ends the sessions this server holds that another server was asked
    /// to end (a monitor on another jump host).
    pub(in crate::engine) fn end_sessions_asked_elsewhere(&self) -> Result<(), EngineError> {
        for id in self.live_sessions.ids() {
            let Some(ask) = self.store.session_end_asked(id)? else {
                continue;
            };
            let end = self
                .live_sessions
                .get(id)
                .and_then(|live| live.end.lock().unwrap_or_else(|p| p.into_inner()).take());
            if let Some(end) = end {
                let _ = end.send(SessionEnd::Terminated {
                    by: ask.by,
                    reason: ask.reason,
                });
            }
            self.store.forget_session_end(id)?;
        }
        Ok(())
    }

    /// The environment of a device, by name.
    pub(in crate::engine) fn device_environment(
        &self,
        device: &str,
    ) -> Result<Option<String>, EngineError> {
        Ok(match self.store.find(Kind::Device, device)? {
            Some(crate::domain::Record::Device(d)) => Some(d.environment),
            _ => None,
        })
    }
}
