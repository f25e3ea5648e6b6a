//! Privileged sessions: a person's interactive shell on a device, opened by
//! Gatehouse with a credential they never see, recorded as it happens.

use super::{Id, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a session ended.
/// Stored by variant index: a new variant goes last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEnd {
    /// The remote shell exited (with its status when it sent one).
    Exited(Option<u32>),
    /// The user's client went away (closed, killed, connection lost).
    Disconnected,
    /// Someone who monitors sessions ended it, saying why.
    Terminated { by: String, reason: String },
    /// Its window ended.
    WindowEnded,
    /// The connection to the device failed or broke.
    Failed(String),
    /// The server stopped (or crashed) while it was open; found at start.
    ServerStopped,
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Exited(Some(code)) => write!(f, "the shell exited with status {code}"),
            SessionEnd::Exited(None) => f.write_str("the shell exited"),
            SessionEnd::Disconnected => f.write_str("the client disconnected"),
            SessionEnd::Terminated { by, reason } => write!(f, "ended by {by}: {reason}"),
            SessionEnd::WindowEnded => f.write_str("its window ended"),
            SessionEnd::Failed(why) => write!(f, "failed: {why}"),
            SessionEnd::ServerStopped => f.write_str("the server stopped while it was open"),
        }
    }
}

/// One session, as stored. Its recording lives in files beside the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: Id,
    pub user: String,
    pub device: String,
    pub credential: String,
    /// The policy that let it open; none for a Superuser's.
    pub policy: Option<String>,
    pub reason: Option<String>,
    pub justification: Option<String>,
    pub governance_id: Option<String>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub end: Option<SessionEnd>,
    /// The terminal it was opened for.
    pub term: String,
    pub cols: u16,
    pub rows: u16,
    /// Bytes the device sent (before redaction).
    pub output_bytes: u64,
    /// Command lines taken from the input.
    pub commands: u32,
    /// The approved request it was opened under.
    pub request: Option<Id>,
    /// When it is ended, its window's end.
    pub window_end: Option<Timestamp>,
    /// The change it was declared for.
    pub change: Option<super::ChangePlan>,
    /// Command lines outside the declared plan (the first hundred).
    pub deviations: Vec<String>,
    /// Command lines a deny pattern kept from the device.
    pub denied: u32,
}

impl SessionRecord {
    pub fn is_open(&self) -> bool {
        self.end.is_none()
    }

    /// "open", or how it ended, in one word for lists.
    pub fn state_word(&self) -> &'static str {
        match &self.end {
            None => "open",
            Some(SessionEnd::Exited(_)) => "exited",
            Some(SessionEnd::Disconnected) => "disconnected",
            Some(SessionEnd::Terminated { .. }) => "terminated",
            Some(SessionEnd::WindowEnded) => "window-ended",
            Some(SessionEnd::Failed(_)) => "failed",
            Some(SessionEnd::ServerStopped) => "interrupted",
        }
    }
}

/// What a client sends into an open session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionInput {
    /// Keystrokes (or pasted text), as the terminal produced them.
    Bytes(Vec<u8>),
    /// The client's terminal changed size.
    Resize { cols: u16, rows: u16 },
}

/// Command lines taken from what a user types, best effort: printable
/// characters build the line, backspace, Ctrl-U and Ctrl-W edit it, Ctrl-C
/// drops it, escape sequences (arrows, function keys) are skipped, and
/// Enter ends it. What the shell completes (Tab) or recalls (arrows) is not
/// seen: the recording is the control to rely on.
#[derive(Default)]
pub struct LineCatcher {
    line: String,
    /// Inside an escape sequence: bytes seen since ESC.
    escape: Option<Vec<u8>>,
    /// The start of a UTF-8 character cut between two reads.
    carry: Vec<u8>,
}

/// The longest line kept; more is cut (a paste of a whole file).
const LONGEST_LINE: usize = 4096;

impl LineCatcher {
    /// Feeds typed bytes; returns the lines they ended.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(bytes);
        let (text, rest) = match std::str::from_utf8(&buf) {
            Ok(t) => (t.to_string(), Vec::new()),
            Err(e) if e.error_len().is_none() => (
                String::from_utf8_lossy(&buf[..e.valid_up_to()]).into_owned(),
                buf[e.valid_up_to()..].to_vec(),
            ),
            Err(_) => (String::from_utf8_lossy(&buf).into_owned(), Vec::new()),
        };
        self.carry = rest;
        for c in text.chars() {
            if let Some(seq) = self.escape.as_mut() {
                seq.push(c as u8);
                // ESC [ … final, ESC O x, or ESC x.
                let ended = match seq.as_slice() {
                    [b'['] | [b'O'] => false,
                    [b'[', .., last] => (0x40..=0x7e).contains(last),
                    _ => true,
                };
                if ended || seq.len() > 32 {
                    self.escape = None;
                }
                continue;
            }
            match c {
                '\r' | '\n' => {
                    let line = self.line.trim().to_string();
                    self.line.clear();
                    if !line.is_empty() {
                        done.push(line);
                    }
                }
                '\u{1b}' => self.escape = Some(Vec::new()),
                '\u{7f}' | '\u{8}' => {
                    self.line.pop();
                }
                '\u{15}' | '\u{3}' => self.line.clear(),
                '\u{17}' => {
                    let kept = self.line.trim_end().len();
                    self.line.truncate(kept);
                    let start = self.line.rfind(' ').map(|i| i + 1).unwrap_or(0);
                    self.line.truncate(start);
                }
                '\t' => self.line.push(' '),
                c if c.is_control() => {}
                c if self.line.len() < LONGEST_LINE => self.line.push(c),
                _ => {}
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::LineCatcher;

    #[test]
    fn typed_lines_are_caught_with_their_edits() {
        let mut c = LineCatcher::default();
        assert!(c.feed(b"ech").is_empty());
        assert_eq!(c.feed(b"o hi\r"), vec!["echo hi"]);
        // Backspace, an arrow key, Ctrl-U, Ctrl-W.
        assert_eq!(c.feed(b"lss\x7f -l\x1b[D\r"), vec!["ls -l"]);
        assert_eq!(c.feed(b"rm -rf /\x15uptime\r"), vec!["uptime"]);
        assert_eq!(c.feed(b"cat one two\x17three\r"), vec!["cat one three"]);
        // Ctrl-C drops the line; blank lines are no commands.
        assert!(c.feed(b"reboot\x03\r\r").is_empty());
        // A character cut between two reads.
        let e = "é".as_bytes();
        c.feed(b"echo caf");
        c.feed(&e[..1]);
        assert_eq!(c.feed(&[e[1], b'\r']), vec!["echo café"]);
    }
}
