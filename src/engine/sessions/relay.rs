//! One open session's relay: device output to the user, the recording and
//! watchers; keystrokes to the device, with each command line audited,
//! held against the policy's deny patterns and the declared change; the
//! window's end announced, then enforced.

use super::live::LiveSession;
use super::target_of;
use crate::domain::{LineCatcher, SessionEnd, SessionInput, SessionRecord, Timestamp};
use crate::engine::Engine;
use crate::store::recording::Writer;
use crate::store::NewAuditEvent;
use crate::template::Redactor;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long before its window ends a session's user is warned.
const WARN_BEFORE: Duration = Duration::from_secs(5 * 60);
/// The most deviations a session keeps (each is also in the audit).
const DEVIATIONS_KEPT: usize = 100;
/// Ctrl-C: what a denied line's Enter becomes, so the shell drops it.
const INTERRUPT: u8 = 0x03;

pub(super) struct Relay<'a> {
    pub engine: &'a Engine,
    pub login: &'a str,
    pub record: SessionRecord,
    pub channel: Channel<Msg>,
    pub redactor: Redactor,
    pub out_rec: Writer,
    pub in_rec: Writer,
    pub live: Arc<LiveSession>,
    pub output: mpsc::Sender<Vec<u8>>,
    pub lines: LineCatcher,
    /// The policy's name and its deny patterns, when it has some.
    pub deny: Option<(String, Vec<String>)>,
}

/// What one turn of the relay decided.
enum Turn {
    Go,
    End(SessionEnd),
}

impl Relay<'_> {
    /// Relays until the session ends; returns its record, ended.
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<SessionInput>,
        mut ended_outside: oneshot::Receiver<SessionEnd>,
    ) -> SessionRecord {
        let (warn_at, end_at) = match self.record.window_end {
            Some(end) => {
                let left = Duration::from_millis((end.0 - Timestamp::now().0).max(0) as u64);
                let now = tokio::time::Instant::now();
                (
                    Some(now + left.saturating_sub(WARN_BEFORE.min(left / 2))),
                    Some(now + left),
                )
            }
            None => (None, None),
        };
        let mut warned = false;
        let mut exit: Option<u32> = None;
        let end = loop {
            let turn = tokio::select! {
                msg = self.channel.wait() => match msg {
                    Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                        self.record.output_bytes += data.len() as u64;
                        let shown: Vec<u8> = self
                            .redactor
                            .feed(0, &data)
                            .into_iter()
                            .flat_map(|(_, b)| b)
                            .collect();
                        self.show(shown).await
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        exit = Some(exit_status);
                        Turn::Go
                    }
                    Some(ChannelMsg::Close) | None => Turn::End(SessionEnd::Exited(exit)),
                    Some(_) => Turn::Go,
                },
                typed = input.recv() => match typed {
                    Some(SessionInput::Bytes(bytes)) => self.typed(&bytes).await,
                    Some(SessionInput::Resize { cols, rows }) => {
                        let cols = cols.clamp(10, super::MOST_COLUMNS);
                        let rows = rows.clamp(2, super::MOST_ROWS);
                        // A device that ignores a resize keeps its size: no harm.
                        let _ = self.channel.window_change(cols as u32, rows as u32, 0, 0).await;
                        if let Err(e) = self.out_rec.resize(cols, rows) {
                            tracing::error!(session = %self.record.id, error = %e, "cannot record a session's resize");
                        }
                        Turn::Go
                    }
                    None => Turn::End(SessionEnd::Disconnected),
                },
                end = &mut ended_outside => match end {
                    Ok(end) => Turn::End(end),
                    Err(_) => Turn::Go,
                },
                _ = sleep_until(warn_at), if !warned => {
                    warned = true;
                    let end = self.record.window_end.map(|t| t.to_string()).unwrap_or_default();
                    self.say(&format!("this session ends at {end}, when its window ends")).await;
                    Turn::Go
                }
                _ = sleep_until(end_at) => Turn::End(SessionEnd::WindowEnded),
            };
            if let Turn::End(end) = turn {
                break end;
            }
        };
        // What the redactor held back was no secret: shown and recorded.
        let rest: Vec<u8> = self
            .redactor
            .finish()
            .into_iter()
            .flat_map(|(_, b)| b)
            .collect();
        self.show(rest).await;
        match &end {
            SessionEnd::Terminated { by, reason } => {
                self.say(&format!("session ended by {by}: {reason}")).await
            }
            SessionEnd::WindowEnded => self.say("the session's window ended").await,
            _ => {}
        }
        let _ = self.channel.close().await;
        for writer in [self.out_rec, self.in_rec] {
            if let Err(e) = writer.finish() {
                tracing::error!(session = %self.record.id, error = %e, "cannot finish a session's recording");
            }
        }
        self.record.ended_at = Some(Timestamp::now());
        self.record.end = Some(end);
        self.record
    }

    /// Shows redacted output to the user, the recording and the watchers.
    async fn show(&mut self, bytes: Vec<u8>) -> Turn {
        if bytes.is_empty() {
            return Turn::Go;
        }
        {
            let mut watchers = self.live.watchers.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.out_rec.bytes(&bytes) {
                tracing::error!(session = %self.record.id, error = %e, "cannot record a session's output");
            }
            LiveSession::fan_out(&mut watchers, &bytes);
        }
        if self.output.send(bytes).await.is_err() {
            return Turn::End(SessionEnd::Disconnected);
        }
        Turn::Go
    }

    /// A line from Gatehouse itself on the user's screen (and recorded).
    async fn say(&mut self, text: &str) {
        let line = format!("\r\n[gatehouse: {text}]\r\n");
        let _ = self.show(line.into_bytes()).await;
    }

    /// Keystrokes: recorded, cut into command lines at each Enter, each
    /// line audited and held against the deny patterns and the plan.
    async fn typed(&mut self, bytes: &[u8]) -> Turn {
        if let Err(e) = self.in_rec.bytes(bytes) {
            tracing::error!(session = %self.record.id, error = %e, "cannot record a session's input");
        }
        let mut events = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let cut = rest
                .iter()
                .position(|b| *b == b'\r' || *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(rest.len());
            let (segment, after) = rest.split_at(cut);
            rest = after;
            let mut send = segment.to_vec();
            for line in self.lines.feed(segment) {
                // Redacted first, then made printable (bidi and other format
                // characters pass the line catcher).
                let shown = crate::text::printable(&self.redactor.redact_text(&line));
                self.record.commands += 1;
                if let Some(pattern) = self.denied(&line) {
                    self.record.denied += 1;
                    // The line stays at the device's prompt; Ctrl-C drops it.
                    if let Some(last) = send.last_mut() {
                        *last = INTERRUPT;
                    }
                    let policy = self
                        .deny
                        .as_ref()
                        .map(|(p, _)| p.clone())
                        .unwrap_or_default();
                    events.push(self.event(
                        "session.denied",
                        format!("{shown} (matches '{pattern}' of policy {policy})"),
                    ));
                    self.say(&format!(
                        "not sent: the line matches '{pattern}', which policy {policy} denies"
                    ))
                    .await;
                    continue;
                }
                events.push(self.event("session.command", shown.clone()));
                if let Some(change) = &self.record.change {
                    if !change.expects(&line) {
                        events.push(self.event(
                            "change.deviation",
                            format!(
                                "outside the plan of change {}: {shown}",
                                crate::text::printable(&change.code)
                            ),
                        ));
                        if self.record.deviations.len() < DEVIATIONS_KEPT {
                            self.record.deviations.push(shown);
                        }
                    }
                }
            }
            if self.channel.data(&send[..]).await.is_err() {
                return Turn::End(SessionEnd::Failed("the device stopped reading".into()));
            }
        }
        if !events.is_empty() {
            if let Err(e) = self.engine.audit(events).await {
                tracing::error!(session = %self.record.id, error = %e, "cannot audit a session's commands");
            }
        }
        Turn::Go
    }

    /// The deny pattern a line matches, if any.
    fn denied(&self, line: &str) -> Option<String> {
        let (_, patterns) = self.deny.as_ref()?;
        patterns
            .iter()
            .find(|p| crate::text::glob_matches(p, line.trim()))
            .cloned()
    }

    fn event(&self, action: &str, details: String) -> NewAuditEvent {
        NewAuditEvent::new(self.login, action, target_of(&self.record), details)
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
