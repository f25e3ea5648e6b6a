//! Session recordings: asciicast v2 files beside the store, one for what
//! the device sent (`sessions/ID.cast`) and one for what the user typed
//! (`sessions/ID.input.cast`, shown only to holders of view-session-input).
//! Each event is a line written as it happens, so a crash loses at most the
//! line being written; both files are created 0600.

use super::{StoreError, StoreResult};
use crate::domain::Id;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which of a session's two recordings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Output,
    Input,
}

pub fn path_of(dir: &Path, id: Id, track: Track) -> PathBuf {
    let name = match track {
        Track::Output => format!("{}.cast", id.0),
        Track::Input => format!("{}.input.cast", id.0),
    };
    dir.join("sessions").join(name)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The header every recording starts with.
pub struct Header<'a> {
    pub cols: u16,
    pub rows: u16,
    pub started_unix: i64,
    pub term: &'a str,
    pub title: &'a str,
}

/// Where a track's lines go: a file beside sled, or rows of the shared
/// database (so any jump host's server replays any session).
enum Sink {
    File {
        file: std::fs::File,
        path: PathBuf,
    },
    Database {
        kv: std::sync::Arc<dyn super::kv::Backend>,
        prefix: Vec<u8>,
        next: u32,
    },
}

/// The tree of recorded lines in a shared database: keys are the session
/// id, the track (0 output, 1 input) and the line's number, big-endian.
pub(super) const LINES_TREE: &str = "session_recordings";

fn track_prefix(id: Id, track: Track) -> Vec<u8> {
    let mut key = id.key().to_vec();
    key.push(match track {
        Track::Output => 0,
        Track::Input => 1,
    });
    key
}

/// One track being written.
pub struct Writer {
    sink: Sink,
    started: Instant,
    code: &'static str,
    /// The start of a UTF-8 character cut at the end of the last chunk.
    carry: Vec<u8>,
}

impl Writer {
    pub fn create(dir: &Path, id: Id, track: Track, header: &Header<'_>) -> StoreResult<Writer> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = path_of(dir, id, track);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io(parent))?;
        }
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        let mut writer = Writer::with_sink(Sink::File { file, path }, track);
        writer.line(&header_line(header))?;
        Ok(writer)
    }

    /// A track written to the shared database (a session id is written once).
    pub(super) fn create_in_database(
        kv: std::sync::Arc<dyn super::kv::Backend>,
        id: Id,
        track: Track,
        header: &Header<'_>,
    ) -> StoreResult<Writer> {
        let prefix = track_prefix(id, track);
        let mut writer = Writer::with_sink(
            Sink::Database {
                kv,
                prefix,
                next: 0,
            },
            track,
        );
        writer.line(&header_line(header))?;
        Ok(writer)
    }

    fn with_sink(sink: Sink, track: Track) -> Writer {
        Writer {
            sink,
            started: Instant::now(),
            code: match track {
                Track::Output => "o",
                Track::Input => "i",
            },
            carry: Vec::new(),
        }
    }

    fn line(&mut self, line: &str) -> StoreResult<()> {
        match &mut self.sink {
            Sink::File { file, path } => writeln!(file, "{line}").map_err(io(path)),
            Sink::Database { kv, prefix, next } => {
                let mut key = prefix.clone();
                key.extend_from_slice(&next.to_be_bytes());
                *next += 1;
                kv.apply_lazy(vec![super::kv::Write::put(
                    LINES_TREE,
                    key,
                    format!("{line}\n").into_bytes(),
                )])
            }
        }
    }

    fn event(&mut self, code: &str, text: &str) -> StoreResult<()> {
        let at = self.started.elapsed().as_secs_f64();
        let line = serde_json::json!([(at * 1e6).round() / 1e6, code, text]);
        self.line(&line.to_string())
    }

    /// Records bytes; a character cut at the end waits for its rest.
    pub fn bytes(&mut self, bytes: &[u8]) -> StoreResult<()> {
        self.carry.extend_from_slice(bytes);
        let whole = match std::str::from_utf8(&self.carry) {
            Ok(_) => self.carry.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.carry.len(),
        };
        if whole == 0 {
            return Ok(());
        }
        let rest = self.carry.split_off(whole);
        let text = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry = rest;
        self.event(self.code, &text)
    }

    /// Records a change of the terminal's size.
    pub fn resize(&mut self, cols: u16, rows: u16) -> StoreResult<()> {
        self.event("r", &format!("{cols}x{rows}"))
    }

    /// Writes what was held back and syncs the file.
    pub fn finish(mut self) -> StoreResult<()> {
        if !self.carry.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.carry)).into_owned();
            self.event(self.code, &text)?;
        }
        match &self.sink {
            Sink::File { file, path } => file.sync_all().map_err(io(path)),
            Sink::Database { kv, .. } => kv.flush(),
        }
    }
}

/// The asciicast header line.
fn header_line(header: &Header<'_>) -> String {
    serde_json::json!({
        "version": 2,
        "width": header.cols,
        "height": header.rows,
        "timestamp": header.started_unix,
        "env": { "TERM": header.term },
        "title": header.title,
    })
    .to_string()
}

impl super::Store {
    /// Starts writing one track of a session's recording, where this store
    /// keeps recordings.
    pub fn recording_writer(
        &self,
        id: Id,
        track: Track,
        header: &Header<'_>,
    ) -> StoreResult<Writer> {
        if self.shared() {
            Writer::create_in_database(self.kv.clone(), id, track, header)
        } else {
            Writer::create(self.dir(), id, track, header)
        }
    }

    /// Writes a whole recording at once (a copy between stores).
    pub fn put_recording(&self, id: Id, track: Track, text: &str) -> StoreResult<()> {
        if self.shared() {
            let prefix = track_prefix(id, track);
            let writes = text
                .split_inclusive('\n')
                .enumerate()
                .map(|(n, line)| {
                    let mut key = prefix.clone();
                    key.extend_from_slice(&(n as u32).to_be_bytes());
                    super::kv::Write::put(LINES_TREE, key, line.as_bytes().to_vec())
                })
                .collect();
            return self.kv.apply(writes);
        }
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = path_of(self.dir(), id, track);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io(parent))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(text.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))
    }

    /// The lines of a shared store's recording from line `from` on (a
    /// watcher on another jump host tails it this way).
    pub fn recording_lines_from(
        &self,
        id: Id,
        track: Track,
        from: u32,
    ) -> StoreResult<Vec<String>> {
        let prefix = track_prefix(id, track);
        let mut start = prefix.clone();
        start.extend_from_slice(&from.to_be_bytes());
        let range = super::kv::Range {
            from: start,
            to: super::kv::after_prefix(&prefix),
            reverse: false,
            limit: None,
        };
        let mut lines = Vec::new();
        super::kv::scan(&*self.kv, LINES_TREE, &range, |_, v| {
            lines.push(String::from_utf8_lossy(v).into_owned());
            Ok(true)
        })?;
        Ok(lines)
    }

    /// A whole recording, as written so far.
    pub fn recording(&self, id: Id, track: Track) -> StoreResult<Option<String>> {
        if !self.shared() {
            return read(self.dir(), id, track);
        }
        let mut text = String::new();
        let mut any = false;
        super::kv::scan(
            &*self.kv,
            LINES_TREE,
            &super::kv::Range::prefix(&track_prefix(id, track)),
            |_, v| {
                any = true;
                text.push_str(&String::from_utf8_lossy(v));
                Ok(true)
            },
        )?;
        Ok(any.then_some(text))
    }
}

/// A whole recording, as written.
pub fn read(dir: &Path, id: Id, track: Track) -> StoreResult<Option<String>> {
    let path = path_of(dir, id, track);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// One event of a recording: seconds since its start, its code, its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at: f64,
    pub code: String,
    pub text: String,
}

/// The events of a recording's text (its header skipped); a line that is
/// not an event (a crash cut it) ends the list.
pub fn events(text: &str) -> Vec<Event> {
    let body = text.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
    event_lines(body)
}

/// The events of lines from the middle of a recording (no header among
/// them: a watcher following it reads them in pieces); a line that is not
/// an event ends the list.
pub fn event_lines(text: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(serde_json::Value::Array(parts)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            break;
        };
        match parts.as_slice() {
            [serde_json::Value::Number(at), serde_json::Value::String(code), serde_json::Value::String(text)] => {
                out.push(Event {
                    at: at.as_f64().unwrap_or(0.0),
                    code: code.clone(),
                    text: text.clone(),
                })
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A character cut between two chunks is recorded whole; the file is
    /// asciicast v2 (a header object, then [time, code, text] lines).
    #[test]
    fn a_recording_is_asciicast_with_characters_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let header = Header {
            cols: 80,
            rows: 24,
            started_unix: 1_700_000_000,
            term: "xterm",
            title: "web-1",
        };
        let mut w = Writer::create(dir.path(), Id(7), Track::Output, &header).unwrap();
        let euro = "€".as_bytes();
        w.bytes(b"price ").unwrap();
        w.bytes(&euro[..1]).unwrap();
        w.bytes(&euro[1..]).unwrap();
        w.resize(100, 30).unwrap();
        w.finish().unwrap();
        let text = read(dir.path(), Id(7), Track::Output).unwrap().unwrap();
        let head: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(head["version"], 2);
        assert_eq!(head["width"], 80);
        let events = events(&text);
        let shown: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.code.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(shown, vec![("o", "price "), ("o", "€"), ("r", "100x30")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path_of(dir.path(), Id(7), Track::Output))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A watcher follows a recording in pieces: the first piece holds the
    /// header, every later piece is events only and none of them is lost
    /// (reading a later piece as a whole recording dropped its first line).
    #[test]
    fn a_recording_read_in_pieces_loses_no_event() {
        let header = header_line(&Header {
            cols: 80,
            rows: 24,
            started_unix: 1_700_000_000,
            term: "xterm",
            title: "web-1",
        });
        let first = format!("{header}\n[0.1, \"o\", \"shared-42\"]\n");
        let later = "[0.5, \"o\", \"watched-5\"]\n";
        let texts = |events: Vec<Event>| events.into_iter().map(|e| e.text).collect::<Vec<_>>();
        assert_eq!(texts(events(&first)), vec!["shared-42"]);
        assert_eq!(texts(event_lines(later)), vec!["watched-5"]);
        // The whole recording, read at once, has both.
        assert_eq!(
            texts(events(&format!("{first}{later}"))),
            vec!["shared-42", "watched-5"]
        );
    }
}
