//! Forwarding the audit log out of the box: RFC 5424 syslog (UDP, TCP with
//! newline framing, TCP with octet counting) and JSON-lines files. Each
//! target reads the audit log from its own stored position, so a collector
//! that is down blocks nothing and loses nothing: it gets every event from
//! where it stopped once it is back. Operation results travel too, as the
//! `operation.finish` events they are.
//!
//! Each forwarded event carries its chain hash, so the copy outside anchors
//! the local chain: `audit verify --against FILE` uses it to detect a
//! truncated or rolled-back local log (see [`anchor`]).

pub mod anchor;
mod sink;
pub mod syslog;

use crate::engine::Engine;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One place audit events go, as the configuration names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Names the target's stored position; renaming one starts it afresh.
    pub name: String,
    pub sink: Sink,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Syslog {
        transport: Transport,
        /// host:port of the collector.
        address: String,
        /// The syslog facility code (RFC 5424 table 1).
        facility: u8,
    },
    /// One JSON object per line, appended and synced to disk per batch.
    JsonLines { file: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per event (RFC 5426). Best effort: a datagram sent while
    /// the collector is down is gone, so use TCP where nothing may be lost.
    Udp,
    /// TCP, one event per line (RFC 6587 non-transparent framing).
    Tcp,
    /// TCP, each event preceded by its length (RFC 6587 octet counting).
    TcpOctetCounting,
}

impl Transport {
    pub const NAMES: [&'static str; 3] = ["udp", "tcp", "tcp-octet-counting"];

    pub fn parse(text: &str) -> Option<Transport> {
        match text {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tcp-octet-counting" => Some(Transport::TcpOctetCounting),
            _ => None,
        }
    }
}

/// Events sent per round.
const BATCH: usize = 256;
/// How often an idle target looks for new events.
const POLL: Duration = Duration::from_millis(200);
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// A collector that is down is tried again at least this often.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Refuses a JSON-lines target that is a symbolic link or lies inside the
/// data directory: the server would append audit events to whatever it
/// points at (the key file, the store).
pub fn check_target(target: &Target, data_dir: &std::path::Path) -> Result<(), String> {
    let Sink::JsonLines { file } = &target.sink else {
        return Ok(());
    };
    let at = format!("forward target '{}' ({})", target.name, file.display());
    if let Ok(meta) = std::fs::symlink_metadata(file) {
        if meta.file_type().is_symlink() {
            return Err(format!("{at}: is a symbolic link; name the file itself"));
        }
        if !meta.is_file() {
            return Err(format!("{at}: is not a regular file"));
        }
    }
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let parent = std::fs::canonicalize(&parent)
        .map_err(|e| format!("{at}: its folder cannot be used: {e}"))?;
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if parent.starts_with(&data) {
        return Err(format!(
            "{at}: lies inside the data directory {}; forward to a file outside it",
            data.display()
        ));
    }
    Ok(())
}

/// Starts one forwarding task per target; they run as long as the server.
pub fn spawn(engine: Arc<Engine>, targets: Vec<Target>) {
    for target in targets {
        let engine = engine.clone();
        tokio::spawn(async move { run(engine, target).await });
    }
}

async fn run(engine: Arc<Engine>, target: Target) {
    let store = engine.store();
    let mut cursor = match store.forward_cursor(&target.name) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target = %target.name, error = %e, "cannot read the forwarding position: not forwarding");
            return;
        }
    };
    let hostname = syslog::hostname();
    let mut connection: Option<sink::Connection> = None;
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    // Whether the store's last answer about the log's length was an error.
    let mut unread = false;
    tracing::info!(target = %target.name, from = cursor + 1, "forwarding audit events");
    loop {
        match store.audit_len() {
            Ok(len) => {
                unread = false;
                if len <= cursor {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
            // The store did not answer (a shared database away): asked
            // again after a pause, and said once until it answers.
            Err(e) => {
                if !unread {
                    tracing::warn!(target = %target.name, error = %e, "cannot read the audit log's length; trying again");
                    unread = true;
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
        }
        let events = match store.audit_events(cursor + 1, BATCH) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(target = %target.name, error = %e, "cannot read audit events to forward");
                tokio::time::sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        let Some(last) = events.last().map(|e| e.seq) else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        let sent = match connection.as_mut() {
            Some(c) => c.send(&events, &hostname).await,
            None => match sink::Connection::open(&target.sink).await {
                Ok(mut c) => {
                    let sent = c.send(&events, &hostname).await;
                    connection = Some(c);
                    sent
                }
                Err(e) => Err(e),
            },
        };
        match sent {
            Ok(()) => {
                cursor = last;
                if let Err(e) = store.set_forward_cursor(&target.name, cursor) {
                    tracing::warn!(target = %target.name, error = %e, "cannot store the forwarding position");
                }
                if failing {
                    tracing::info!(target = %target.name, up_to = cursor, "forwarding target is back; caught up");
                }
                failing = false;
                backoff = MIN_BACKOFF;
            }
            Err(e) => {
                connection = None;
                if !failing {
                    tracing::warn!(target = %target.name, error = %e, from = cursor + 1, "cannot forward audit events; will keep trying from this position");
                }
                failing = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;

    fn jsonl(file: std::path::PathBuf) -> Target {
        Target {
            name: "archive".into(),
            sink: Sink::JsonLines { file },
        }
    }

    #[test]
    fn a_file_target_that_is_a_link_or_inside_the_data_directory_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let key = data.path().join("store.key");
        std::fs::write(&key, b"key").unwrap();
        let link = outside.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        let err = check_target(&jsonl(link), data.path()).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        let inside = data.path().join("logs").join("audit.jsonl");
        std::fs::create_dir(data.path().join("logs")).unwrap();
        let err = check_target(&jsonl(inside), data.path()).unwrap_err();
        assert!(err.contains("inside the data directory"), "{err}");
        // Positive control: a new file outside is fine.
        check_target(&jsonl(outside.path().join("new.jsonl")), data.path()).unwrap();
    }
}
