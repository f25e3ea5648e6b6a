//! An operation's output on its way to the store and the watchers: redacted
//! across its streams (in the order the bytes came), numbered, capped,
//! stored in order, then broadcast. Gatehouse's own lines (and the debug
//! trace) are redacted whole when they are sent, not as a stream.

use super::{ExecEvent, Notify};
use crate::domain::{Id, OutputChunk, Stream, Timestamp};
use crate::store::Store;
use crate::template::Redactor;
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many raw chunks may wait for the writer; beyond that the executor
/// waits, so the remote side is slowed, never the memory grown.
const QUEUE: usize = 64;
/// Chunks smaller than this are merged while the writer is behind.
const MERGE_BELOW: usize = 32 * 1024;

/// The executor's end: raw bytes go in.
#[derive(Clone)]
pub struct OutputTx {
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
    /// Gatehouse's own lines are redacted whole before they go in.
    lines: Arc<Redactor>,
}

impl OutputTx {
    /// Sends raw bytes (secrets and all: the writer redacts them).
    pub async fn send(&self, stream: Stream, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            // The writer only goes away when the operation is over.
            let _ = self.tx.send((stream, bytes)).await;
        }
    }

    /// A line of Gatehouse's own, such as "attempt 2 of 3".
    pub async fn system(&self, line: impl Into<String>) {
        self.line(Stream::System, line.into()).await
    }

    /// A line of the debug trace (see [`Stream::Debug`]).
    pub async fn debug(&self, line: impl Into<String>) {
        self.line(Stream::Debug, line.into()).await
    }

    async fn line(&self, stream: Stream, line: String) {
        let mut text = self.lines.redact_text(&line);
        text.push('\n');
        self.send(stream, text.into_bytes()).await
    }
}

/// What the writer leaves behind: how much it stored and whether it had to cut.
#[derive(Debug, Default, Clone)]
pub struct OutputTotals {
    pub bytes: u64,
    pub truncated: bool,
    /// Why this attempt's output, from some point on, is not in the store
    /// (the data directory's disk is full, say); the watchers saw it live.
    pub unstored: Option<String>,
}

/// Starts the writer of one operation's output.
pub fn start(
    store: Arc<Store>,
    notify: Notify,
    op: Id,
    secrets: &[(String, SecretString)],
    cap: u64,
    already: OutputTotals,
) -> (OutputTx, tokio::task::JoinHandle<OutputTotals>) {
    let (tx, mut rx) = mpsc::channel::<(Stream, Vec<u8>)>(QUEUE);
    let mut redactor = Redactor::new(secrets);
    let lines = Arc::new(Redactor::new(secrets));
    let handle = tokio::spawn(async move {
        // Earlier attempts of the same operation count against the cap.
        let mut totals = OutputTotals {
            unstored: None,
            ..already
        };
        let mut writer = match store.output_writer(op) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(op = %op, error = %e, "cannot store this operation's output");
                totals.unstored = Some(format!("its output was not stored: {e}"));
                None
            }
        };
        let mut seq = writer.as_ref().map_or(0, |w| w.next_seq());
        if let Some(why) = &totals.unstored {
            notify(ExecEvent::Output {
                op,
                chunk: unstored_note(seq, why),
            });
            seq += 1;
        }
        let mut store_chunk = |stream: Stream, bytes: Vec<u8>, totals: &mut OutputTotals| {
            if bytes.is_empty() || totals.truncated {
                return;
            }
            let (bytes, cut) = if totals.bytes + bytes.len() as u64 > cap {
                let room = cap.saturating_sub(totals.bytes) as usize;
                (bytes[..room].to_vec(), true)
            } else {
                (bytes, false)
            };
            let mut chunks = vec![(stream, bytes)];
            if cut {
                totals.truncated = true;
                chunks.push((
                    Stream::System,
                    format!("\n[output truncated: this operation's output reached the cap of {cap} bytes]\n").into_bytes(),
                ));
            }
            for (stream, bytes) in chunks {
                if bytes.is_empty() {
                    continue;
                }
                totals.bytes += bytes.len() as u64;
                let chunk = OutputChunk {
                    seq,
                    stream,
                    time: Timestamp::now(),
                    bytes,
                };
                seq += 1;
                let stored = match writer.as_mut().map(|w| w.append(&chunk)) {
                    Some(Err(e)) => {
                        tracing::error!(op = %op, error = %e, "cannot store output");
                        writer = None;
                        let why = format!(
                            "its output from byte {} on was not stored: {e}",
                            totals.bytes - chunk.bytes.len() as u64
                        );
                        totals.unstored = Some(why.clone());
                        Err(why)
                    }
                    _ => Ok(()),
                };
                notify(ExecEvent::Output { op, chunk });
                if let Err(why) = stored {
                    // Whoever watches learns it at once, not at the end.
                    notify(ExecEvent::Output {
                        op,
                        chunk: unstored_note(seq, &why),
                    });
                    seq += 1;
                }
            }
        };
        while let Some((stream, bytes)) = rx.recv().await {
            // Merge what else is waiting on the same stream into one chunk.
            let mut merged = bytes;
            let mut other = None;
            while merged.len() < MERGE_BELOW {
                match rx.try_recv() {
                    Ok((s, b)) if s == stream => merged.extend(b),
                    Ok(next) => {
                        other = Some(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
            for (stream, bytes) in [(stream, merged)].into_iter().chain(other) {
                let shown = match stream {
                    // Redacted whole by the sender (`OutputTx::line`).
                    Stream::System | Stream::Debug => vec![(stream, bytes)],
                    _ => redactor
                        .feed(tag(stream), &bytes)
                        .into_iter()
                        .map(|(t, b)| (untag(t), b))
                        .collect(),
                };
                for (stream, bytes) in shown {
                    store_chunk(stream, bytes, &mut totals);
                }
            }
        }
        for (t, rest) in redactor.finish() {
            store_chunk(untag(t), rest, &mut totals);
        }
        // On disk before the operation's end is committed.
        if let Some(w) = writer {
            if let Err(e) = w.sync() {
                tracing::error!(op = %op, error = %e, "cannot sync output");
                totals.unstored = Some(format!("its output may not be on disk: {e}"));
            }
        }
        totals
    });
    (OutputTx { tx, lines }, handle)
}

/// A line for the live watchers only: what could not be stored, and why.
fn unstored_note(seq: u64, why: &str) -> OutputChunk {
    OutputChunk {
        seq,
        stream: Stream::System,
        time: Timestamp::now(),
        bytes: format!("[{why}]\n").into_bytes(),
    }
}

/// The redactor's tag for a remote stream.
fn tag(stream: Stream) -> u8 {
    match stream {
        Stream::Stderr => 1,
        Stream::Stdout | Stream::System | Stream::Debug => 0,
    }
}

fn untag(tag: u8) -> Stream {
    if tag == 1 {
        Stream::Stderr
    } else {
        Stream::Stdout
    }
}
