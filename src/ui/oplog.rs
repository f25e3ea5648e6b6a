//! The log pane's own ring buffer of one operation's output: bounded, in
//! sequence order, with a scroll offset that follows the tail until the
//! user scrolls up.

use crate::domain::{Id, OutputChunk, Stream};
use std::collections::VecDeque;

/// Lines kept for the pane; older ones stay in the store.
const KEEP_LINES: usize = 10_000;

/// The selected operation's output as lines.
#[derive(Default)]
pub struct OperationLog {
    pub op: Option<Id>,
    pub lines: VecDeque<(Stream, String)>,
    partial: String,
    /// The next chunk this log expects; a later one means some were skipped.
    pub next_seq: u64,
    /// Lines up from the bottom; 0 follows the tail.
    pub offset: usize,
    pub follow: bool,
}

impl OperationLog {
    /// Starts over for another operation.
    pub fn select(&mut self, op: Id) {
        *self = OperationLog {
            op: Some(op),
            follow: true,
            ..OperationLog::default()
        };
    }

    /// Adds chunks in order; returns false if there is a gap before them
    /// (the caller then reads the missing ones from the store).
    pub fn push(&mut self, chunk: &OutputChunk) -> bool {
        if chunk.seq < self.next_seq {
            return true;
        }
        if chunk.seq > self.next_seq {
            return false;
        }
        self.next_seq = chunk.seq + 1;
        let text = String::from_utf8_lossy(&chunk.bytes);
        self.partial.push_str(&text);
        // Whole lines are taken where they lie, then cut off at once (not
        // one by one from the front: quadratic in a chunk's line count).
        let mut start = 0;
        while let Some(len) = self.partial[start..].find('\n') {
            // Remote bytes never reach the terminal raw.
            let line = crate::text::printable(&self.partial[start..start + len]);
            start += len + 1;
            self.push_line(chunk.stream, line);
        }
        self.partial.drain(..start);
        true
    }

    fn push_line(&mut self, stream: Stream, line: String) {
        if self.lines.len() == KEEP_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((stream, line));
        if !self.follow && self.offset > 0 {
            // Keep the same lines in view while new ones arrive below.
            self.offset = (self.offset + 1).min(self.lines.len());
        }
    }

    /// Scrolls by `delta` lines (positive is up); scrolling up stops following.
    pub fn scroll(&mut self, delta: isize) {
        let max = self.lines.len().saturating_sub(1) as isize;
        self.offset = (self.offset as isize + delta).clamp(0, max) as usize;
        self.follow = self.offset == 0;
    }

    /// Toggles following the tail.
    pub fn toggle_follow(&mut self) {
        self.follow = !self.follow;
        if self.follow {
            self.offset = 0;
        }
    }

    /// The lines a pane of `height` rows shows, oldest first.
    pub fn visible(&self, height: usize) -> impl Iterator<Item = &(Stream, String)> {
        let end = self.lines.len().saturating_sub(self.offset);
        let start = end.saturating_sub(height);
        self.lines.range(start..end)
    }

    /// The first line holding `needle`, searching up from the view's bottom;
    /// moves the view there.
    pub fn search(&mut self, needle: &str) -> bool {
        if needle.is_empty() {
            return false;
        }
        let bottom = self.lines.len().saturating_sub(self.offset + 1);
        let hit = (0..bottom)
            .rev()
            .find(|i| self.lines[*i].1.contains(needle));
        match hit {
            Some(i) => {
                self.offset = self.lines.len() - 1 - i;
                self.follow = false;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn chunk(seq: u64, text: &str) -> OutputChunk {
        OutputChunk {
            seq,
            stream: Stream::Stdout,
            time: Timestamp(0),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn lines_join_across_chunks_and_gaps_are_reported() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        assert!(log.push(&chunk(0, "hel")));
        assert!(log.push(&chunk(1, "lo\nwor")));
        assert!(!log.push(&chunk(3, "x\n")), "seq 2 is missing");
        assert!(log.push(&chunk(2, "ld\n")));
        let lines: Vec<&str> = log.visible(10).map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, ["hello", "world"]);
    }

    #[test]
    fn escape_sequences_never_reach_the_screen() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        log.push(&chunk(0, "\x1b[2Jboom\x07\n"));
        assert_eq!(log.lines[0].1, "\u{fffd}[2Jboom\u{fffd}");
    }

    #[test]
    fn scrolling_up_stops_following_and_the_buffer_stays_bounded() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        for i in 0..(KEEP_LINES as u64 + 50) {
            log.push(&chunk(i, &format!("line {i}\n")));
        }
        assert_eq!(log.lines.len(), KEEP_LINES);
        assert_eq!(
            log.visible(1).next().unwrap().1,
            format!("line {}", KEEP_LINES + 49)
        );
        log.scroll(5);
        assert!(!log.follow);
        assert!(log.search("line 5000"));
        assert_eq!(log.visible(1).next().unwrap().1, "line 5000");
    }
}
