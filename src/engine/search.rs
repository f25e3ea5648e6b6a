//! Searching stored output across operations: one page of operations at
//! a time (newest first, through the same visibility and filters as
//! History), each read chunk by chunk and split into lines per stream,
//! so memory stays bounded whatever the output's size. The client asks
//! page after page and prints matches as they come.

use super::api::{HistoryFilter, OutputMatch, SearchPage};
use super::{Engine, EngineError, Response};
use crate::access::Principal;
use crate::domain::{Operation, Stream};
use crate::store::NewAuditEvent;

/// Operations read per page.
pub const SEARCH_PAGE_OPS: u32 = 200;
/// At most this many matching lines come back in one page.
pub const SEARCH_PAGE_MATCHES: usize = 1_000;
/// Chunks read from one operation at a time.
const CHUNKS: usize = 512;
/// A matching line is shown up to this many characters.
const LINE_MAX: usize = 400;
/// A line without a newline is judged in pieces of this many bytes.
const LINE_BYTES: usize = 64 * 1024;

impl Engine {
    pub(super) async fn search_output(
        &self,
        who: &Principal<'_>,
        text: &str,
        filter: &HistoryFilter,
    ) -> Result<Response, EngineError> {
        let needle = text.trim().to_lowercase();
        if needle.is_empty() {
            return Err(EngineError::Failed("say what to search for".into()));
        }
        // A search is a read of others' output: audited once, at its first page.
        if filter.before.is_none() {
            let mut scope = Vec::new();
            for (name, v) in [
                ("task", &filter.task),
                ("device", &filter.device),
                ("user", &filter.user),
            ] {
                if let Some(v) = v {
                    scope.push(format!("{name} {}", crate::text::printable(v)));
                }
            }
            if let Some(since) = filter.since {
                scope.push(format!("since {since}"));
            }
            self.audit(vec![NewAuditEvent::new(
                &who.user.meta.name,
                "output.search",
                "output",
                format!(
                    "searched for {:?}{}",
                    crate::text::clipped(text, 200),
                    if scope.is_empty() {
                        String::new()
                    } else {
                        format!(" in {}", scope.join(", "))
                    }
                ),
            )])
            .await?;
        }
        let facts = self.visibility_facts()?;
        let page_ops = if filter.limit == 0 {
            SEARCH_PAGE_OPS
        } else {
            filter.limit.min(SEARCH_PAGE_OPS)
        };
        let ops = self.store.operations_newest_first(
            filter.before,
            page_ops as usize,
            super::operations::narrowed(filter),
            |o| facts.operation(&self.store, who, o) && super::operations::filtered(filter, o),
        )?;
        let mut page = SearchPage {
            matches: Vec::new(),
            next: None,
            operations: 0,
            bytes: 0,
            cut: None,
        };
        for op in &ops {
            page.operations += 1;
            if self.search_one(op, &needle, &mut page, SEARCH_PAGE_MATCHES)? {
                // The page is full: this operation's further lines are not
                // read (the client says so), and the next page starts
                // with the operations older than it.
                page.cut = Some(op.id);
                page.next = Some(op.id);
                return Ok(Response::Found(Box::new(page)));
            }
        }
        if ops.len() == page_ops as usize {
            page.next = ops.last().map(|o| o.id);
        }
        Ok(Response::Found(Box::new(page)))
    }

    /// The bytes of output stored for an operation (the debug trace aside).
    pub(super) fn stored_output_bytes(&self, id: crate::domain::Id) -> Result<u64, EngineError> {
        let (mut bytes, mut from) = (0u64, 0u64);
        loop {
            let chunks = self.store.output(id, from, CHUNKS)?;
            let Some(last) = chunks.last() else {
                return Ok(bytes);
            };
            from = last.seq + 1;
            bytes += chunks
                .iter()
                .filter(|c| c.stream != Stream::Debug)
                .map(|c| c.bytes.len() as u64)
                .sum::<u64>();
        }
    }

    /// Whether an operation's output (without the debug trace) holds
    /// `needle` (lower case) on some line; a store error counts as no.
    pub(super) fn output_holds(&self, op: &Operation, needle: &str) -> bool {
        let mut page = SearchPage {
            matches: Vec::new(),
            next: None,
            operations: 0,
            bytes: 0,
            cut: None,
        };
        // The first matching line is enough.
        self.search_one(op, needle, &mut page, 1).unwrap_or(false)
    }

    /// The lines of one operation's output (without the debug trace) that
    /// hold `needle`, terminal escapes stripped, line by line per stream,
    /// until the page holds `limit` matches: then `true` (the rest of this
    /// operation is not read). A line longer than `LINE_BYTES` without a
    /// newline is judged in pieces, so memory stays bounded.
    fn search_one(
        &self,
        op: &Operation,
        needle: &str,
        page: &mut SearchPage,
        limit: usize,
    ) -> Result<bool, EngineError> {
        let mut partial: [Vec<u8>; 3] = Default::default();
        let mut numbers = [0u64; 3];
        let mut from = 0;
        loop {
            let chunks = self.store.output(op.id, from, CHUNKS)?;
            let Some(last) = chunks.last() else { break };
            from = last.seq + 1;
            for chunk in &chunks {
                let slot = match chunk.stream {
                    Stream::Stdout => 0,
                    Stream::Stderr => 1,
                    Stream::System => 2,
                    Stream::Debug => continue,
                };
                page.bytes += chunk.bytes.len() as u64;
                partial[slot].extend_from_slice(&chunk.bytes);
                loop {
                    let end = match partial[slot].iter().position(|b| *b == b'\n') {
                        Some(end) => end + 1,
                        None if partial[slot].len() > LINE_BYTES => LINE_BYTES,
                        None => break,
                    };
                    let line: Vec<u8> = partial[slot].drain(..end).collect();
                    numbers[slot] += 1;
                    let t = chunk.time;
                    consider(op, chunk.stream, numbers[slot], &line, t, needle, page);
                    if page.matches.len() >= limit {
                        return Ok(true);
                    }
                }
            }
        }
        // A last line without a newline counts too.
        for (slot, stream) in [Stream::Stdout, Stream::Stderr, Stream::System]
            .into_iter()
            .enumerate()
        {
            if !partial[slot].is_empty() {
                numbers[slot] += 1;
                let line = std::mem::take(&mut partial[slot]);
                let time = op.finished_at.unwrap_or(op.created_at);
                consider(op, stream, numbers[slot], &line, time, needle, page);
            }
        }
        Ok(page.matches.len() >= limit)
    }
}

fn consider(
    op: &Operation,
    stream: Stream,
    number: u64,
    line: &[u8],
    time: crate::domain::Timestamp,
    needle: &str,
    page: &mut SearchPage,
) {
    // The common case, a line without escapes and an ASCII needle, is
    // judged on its bytes without copying it.
    if needle.is_ascii() && !line.contains(&0x1b) {
        let n = needle.len();
        if line.len() < n
            || !line
                .windows(n)
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        {
            return;
        }
    }
    let text = String::from_utf8_lossy(line);
    let plain = crate::text::without_terminal_escapes(text.trim_end_matches(['\n', '\r']));
    if !plain.to_lowercase().contains(needle) {
        return;
    }
    let shown: String = crate::text::printable(&plain)
        .chars()
        .take(LINE_MAX)
        .collect();
    page.matches.push(OutputMatch {
        op: op.id,
        task: op.task.clone(),
        device: op.device.clone(),
        user: op.requested_by.clone(),
        stream,
        number,
        time,
        line: shown,
    });
}
