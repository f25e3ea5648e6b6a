//! The log pane's own ring buffer of one operation's output: bounded, in
//! sequence order, with a scroll offset that follows the tail until the
//! user scrolls up.

use crate::domain::{Id, OutputChunk, Stream};
use ratatui::style::{Color, Modifier, Style};
use std::collections::VecDeque;

/// Lines kept for the pane; older ones stay in the store.
const KEEP_LINES: usize = 10_000;

/// One line of remote output as the pane shows it: text that holds no
/// control character, and where its colours change. Remote colour codes
/// (SGR: colours, bold, underline, reset) become styles; every other escape
/// shows as a visible ␛ and other control characters as U+FFFD.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub stream: Stream,
    pub text: String,
    /// (byte offset in `text`, style from there on); empty for plain lines.
    pub styles: Vec<(usize, Style)>,
}

impl LogLine {
    /// Reads one line of remote output.
    pub fn parse(stream: Stream, raw: &str) -> LogLine {
        let raw = raw.trim_end_matches('\r');
        let mut text = String::with_capacity(raw.len());
        let mut styles = Vec::new();
        let mut style = Style::default();
        let mut chars = raw.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c == '\u{1b}' && raw[at + 1..].starts_with('[') {
                // A CSI sequence: parameters, then one final byte.
                let body = &raw[at + 2..];
                let end = body.find(|c: char| ('\u{40}'..='\u{7e}').contains(&c));
                if let Some(end) = end.filter(|e| *e <= 64 && body[..*e].is_ascii()) {
                    if body[end..].starts_with('m') {
                        style = apply_sgr(style, &body[..end]);
                        styles.push((text.len(), style));
                        // Skip '[', the parameters and 'm'.
                        for _ in 0..end + 2 {
                            chars.next();
                        }
                        continue;
                    }
                }
                text.push('\u{241b}');
                continue;
            }
            text.push(match c {
                '\u{1b}' => '\u{241b}',
                '\t' => '\t',
                c if crate::text::is_unsafe(c) => '\u{fffd}',
                c => c,
            });
        }
        // A style that changes nothing at the very end is no style.
        while styles.last().is_some_and(|(at, _)| *at == text.len()) {
            styles.pop();
        }
        if styles.iter().all(|(_, s)| *s == Style::default()) {
            styles.clear();
        }
        LogLine {
            stream,
            text,
            styles,
        }
    }

    /// The line's runs of text with their own styles (on top of the pane's).
    pub fn runs(&self) -> Vec<(&str, Style)> {
        let mut runs = Vec::new();
        let mut at = 0;
        let mut style = Style::default();
        for (start, next) in &self.styles {
            if *start > at {
                runs.push((&self.text[at..*start], style));
            }
            at = *start;
            style = *next;
        }
        runs.push((&self.text[at..], style));
        runs
    }
}

/// Applies SGR parameters ("1;31") to a style; unknown ones change nothing.
fn apply_sgr(mut style: Style, params: &str) -> Style {
    const BASIC: [Color; 8] = [
        Color::Black,
        Color::Red,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::Gray,
    ];
    const BRIGHT: [Color; 8] = [
        Color::DarkGray,
        Color::LightRed,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
        Color::White,
    ];
    let numbers: Vec<u16> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
    let mut i = 0;
    while i < numbers.len() {
        let n = numbers[i];
        match n {
            0 => style = Style::default(),
            1 => style = style.add_modifier(Modifier::BOLD),
            4 => style = style.add_modifier(Modifier::UNDERLINED),
            22 => style = style.remove_modifier(Modifier::BOLD),
            24 => style = style.remove_modifier(Modifier::UNDERLINED),
            30..=37 => style = style.fg(BASIC[(n - 30) as usize]),
            39 => style.fg = None,
            40..=47 => style = style.bg(BASIC[(n - 40) as usize]),
            49 => style.bg = None,
            90..=97 => style = style.fg(BRIGHT[(n - 90) as usize]),
            100..=107 => style = style.bg(BRIGHT[(n - 100) as usize]),
            38 | 48 => {
                let color = match numbers.get(i + 1) {
                    Some(5) => {
                        let c = numbers.get(i + 2).map(|v| Color::Indexed(*v as u8));
                        i += 2;
                        c
                    }
                    Some(2) => {
                        let rgb = (numbers.get(i + 2), numbers.get(i + 3), numbers.get(i + 4));
                        i += 4;
                        match rgb {
                            (Some(r), Some(g), Some(b)) => {
                                Some(Color::Rgb(*r as u8, *g as u8, *b as u8))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if let Some(color) = color {
                    style = if n == 38 {
                        style.fg(color)
                    } else {
                        style.bg(color)
                    };
                }
            }
            _ => {}
        }
        i += 1;
    }
    style
}

/// Output chunks cut into lines: a line ends at a newline, or where
/// another stream's chunk begins (output without a last newline does not
/// run into Gatehouse's "exit status" line).
#[derive(Default)]
pub struct Splitter {
    partial: String,
    /// The stream the unfinished line came from.
    partial_stream: Option<Stream>,
}

impl Splitter {
    /// Takes one chunk; `line` gets each line it completes, in order.
    pub fn feed(&mut self, stream: Stream, bytes: &[u8], mut line: impl FnMut(LogLine)) {
        if !self.partial.is_empty() && self.partial_stream != Some(stream) {
            let was = self.partial_stream.unwrap_or(stream);
            line(LogLine::parse(was, &std::mem::take(&mut self.partial)));
        }
        self.partial_stream = Some(stream);
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        // Whole lines are taken where they lie, then cut off at once (not
        // one by one from the front: quadratic in a chunk's line count).
        let mut start = 0;
        while let Some(len) = self.partial[start..].find('\n') {
            // Remote bytes never reach the terminal raw.
            line(LogLine::parse(stream, &self.partial[start..start + len]));
            start += len + 1;
        }
        self.partial.drain(..start);
    }

    /// The unfinished line, if any, as the last one.
    pub fn finish(&mut self) -> Option<LogLine> {
        let stream = self.partial_stream?;
        if self.partial.is_empty() {
            return None;
        }
        Some(LogLine::parse(stream, &std::mem::take(&mut self.partial)))
    }
}

/// The selected operation's output as lines.
#[derive(Default)]
pub struct OperationLog {
    pub op: Option<Id>,
    pub lines: VecDeque<LogLine>,
    splitter: Splitter,
    /// Long lines wrap (else they are cut at the pane's edge, and
    /// `hscroll` columns are skipped).
    pub wrap: bool,
    pub hscroll: usize,
    /// Output bytes received (the debug trace aside).
    pub bytes: u64,
    /// The rows the pane showed last (scrolling stops where a full pane
    /// of lines is in view).
    height: std::cell::Cell<usize>,
    /// What the last search looked for (`n`/`N` look again; matching
    /// lines are highlighted).
    pub needle: String,
    /// The next chunk this log expects; a later one means some were skipped.
    pub next_seq: u64,
    /// Lines up from the bottom; 0 follows the tail.
    pub offset: usize,
    pub follow: bool,
    /// Whether the pane shows the debug trace too (it stays on from one
    /// operation to the next).
    pub debug: bool,
}

impl OperationLog {
    /// Starts over for another operation.
    pub fn select(&mut self, op: Id) {
        *self = OperationLog {
            op: Some(op),
            follow: true,
            debug: self.debug,
            wrap: self.wrap,
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
        if chunk.stream != Stream::Debug {
            self.bytes += chunk.bytes.len() as u64;
        }
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.feed(chunk.stream, &chunk.bytes, |line| self.push_line(line));
        self.splitter = splitter;
        true
    }

    /// Adds a chunk read from the store: the store's order is the truth,
    /// and what it skipped (the debug trace, which this pane does not
    /// show) is no gap to fill.
    pub fn push_stored(&mut self, chunk: &OutputChunk) {
        if chunk.seq > self.next_seq {
            self.next_seq = chunk.seq;
        }
        self.push(chunk);
    }

    fn push_line(&mut self, line: LogLine) {
        if self.lines.len() == KEEP_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        if !self.follow && self.offset > 0 {
            // Keep the same lines in view while new ones arrive below.
            self.offset = (self.offset + 1).min(self.lines.len());
        }
    }

    /// The largest offset that still fills the pane.
    fn max_offset(&self) -> usize {
        self.lines.len().saturating_sub(self.height.get().max(1))
    }

    /// Scrolls by `delta` lines (positive is up); scrolling up stops following.
    pub fn scroll(&mut self, delta: isize) {
        let max = self.max_offset() as isize;
        self.offset = (self.offset as isize + delta).clamp(0, max) as usize;
        self.follow = self.offset == 0;
    }

    /// To the first line (`top`) or the last, which is followed again.
    pub fn jump(&mut self, top: bool) {
        if top {
            self.offset = self.max_offset();
            self.follow = self.offset == 0;
        } else {
            self.offset = 0;
            self.follow = true;
        }
    }

    /// Wraps long lines, or cuts them at the edge again.
    pub fn toggle_wrap(&mut self) {
        self.wrap = !self.wrap;
        self.hscroll = 0;
    }

    /// Moves the view `delta` columns right (negative: left); only when
    /// lines are cut, not wrapped.
    pub fn scroll_sideways(&mut self, delta: isize) {
        if self.wrap {
            return;
        }
        let widest = self
            .lines
            .iter()
            .map(|l| l.text.chars().count())
            .max()
            .unwrap_or(0);
        self.hscroll = (self.hscroll as isize + delta).clamp(0, widest as isize) as usize;
    }

    /// Toggles following the tail.
    pub fn toggle_follow(&mut self) {
        self.follow = !self.follow;
        if self.follow {
            self.offset = 0;
        }
    }

    /// The lines a pane of `height` rows shows, oldest first: always a
    /// full pane when there are enough lines.
    pub fn visible(&self, height: usize) -> impl Iterator<Item = &LogLine> {
        self.height.set(height);
        let len = self.lines.len();
        let end = len.saturating_sub(self.offset).max(height.min(len));
        let start = end.saturating_sub(height);
        self.lines.range(start..end)
    }

    /// The index of the line at the pane's bottom.
    fn bottom(&self) -> usize {
        let len = self.lines.len();
        len.saturating_sub(self.offset)
            .max(self.height.get().min(len))
            .saturating_sub(1)
    }

    /// Puts line `i` in view (at the bottom, or as low as a full pane allows).
    fn show(&mut self, i: usize) {
        self.offset = (self.lines.len() - 1 - i).min(self.max_offset());
        self.follow = self.offset == 0;
    }

    /// The nearest line above the pane's bottom holding `needle`; moves
    /// the view there and remembers it for `n`/`N`.
    pub fn search(&mut self, needle: &str) -> bool {
        if needle.is_empty() {
            return false;
        }
        self.needle = needle.to_string();
        self.search_again(false)
    }

    /// The next match of the last search: down (`forward`) or up from
    /// the line at the pane's bottom.
    pub fn search_again(&mut self, forward: bool) -> bool {
        if self.needle.is_empty() {
            return false;
        }
        let bottom = self.bottom();
        let needle = self.needle.clone();
        let holds = |i: &usize| self.lines[*i].text.contains(&needle);
        let hit = if forward {
            (bottom + 1..self.lines.len()).find(holds)
        } else {
            (0..bottom).rev().find(holds)
        };
        match hit {
            Some(i) => {
                self.show(i);
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
    fn a_live_gap_is_refused_but_the_stores_skip_of_the_trace_is_taken() {
        let mut log = OperationLog::default();
        assert!(log.push(&chunk(0, "first\n")));
        // Chunk 1 is the debug trace, never sent live: 2 is a gap live...
        assert!(!log.push(&chunk(2, "second\n")));
        assert_eq!(log.lines.len(), 1);
        // ...and what the store sends back (without the trace) is taken.
        log.push_stored(&chunk(2, "second\n"));
        assert_eq!(log.lines.len(), 2);
        assert!(log.push(&chunk(3, "third\n")), "contiguous again");
    }

    #[test]
    fn a_search_fills_the_pane_and_n_and_shift_n_move_between_matches() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        let text: String = (0..100)
            .map(|i| {
                if [3, 50, 95].contains(&i) {
                    format!("boom {i}\n")
                } else {
                    format!("line {i}\n")
                }
            })
            .collect();
        assert!(log.push(&chunk(0, &text)));
        let view = |log: &OperationLog| -> Vec<String> {
            log.visible(10).map(|l| l.text.clone()).collect()
        };
        assert_eq!(view(&log).len(), 10);
        // Up from the bottom line: boom 95 comes to the bottom, then 50.
        assert!(log.search("boom"));
        assert_eq!(view(&log).last().unwrap(), "boom 95");
        assert!(log.search_again(false));
        assert!(
            view(&log).contains(&"boom 50".to_string()),
            "{:?}",
            view(&log)
        );
        // A match in the first screenful: a full pane, the match in it.
        assert!(log.search_again(false));
        let shown = view(&log);
        assert_eq!(shown.len(), 10, "{shown:?}");
        assert_eq!(shown[0], "line 0");
        assert!(shown.contains(&"boom 3".to_string()));
        // PgDn from there moves by whole lines, none skipped.
        log.scroll(-1);
        assert_eq!(view(&log)[0], "line 1");
        // n goes down to the next match, N back up.
        assert!(log.search_again(true));
        assert!(
            view(&log).contains(&"boom 50".to_string()),
            "{:?}",
            view(&log)
        );
        assert!(log.search_again(false));
        assert!(
            view(&log).contains(&"boom 3".to_string()),
            "{:?}",
            view(&log)
        );
        // Home and End.
        log.jump(false);
        assert_eq!(view(&log).last().unwrap(), "line 99");
        assert!(log.follow);
        log.jump(true);
        assert_eq!(view(&log)[0], "line 0");
    }

    #[test]
    fn an_unfinished_line_ends_where_another_streams_chunk_begins() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        assert!(log.push(&chunk(0, "noeol-at-end")));
        assert!(log.push(&OutputChunk {
            seq: 1,
            stream: Stream::System,
            time: Timestamp(0),
            bytes: b"exit status 0\n".to_vec(),
        }));
        let texts: Vec<String> = log
            .lines
            .iter()
            .map(|l| l.runs().iter().map(|(t, _)| *t).collect::<String>())
            .collect();
        assert_eq!(texts, ["noeol-at-end", "exit status 0"]);
    }

    #[test]
    fn lines_join_across_chunks_and_gaps_are_reported() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        assert!(log.push(&chunk(0, "hel")));
        assert!(log.push(&chunk(1, "lo\nwor")));
        assert!(!log.push(&chunk(3, "x\n")), "seq 2 is missing");
        assert!(log.push(&chunk(2, "ld\n")));
        let lines: Vec<&str> = log.visible(10).map(|l| l.text.as_str()).collect();
        assert_eq!(lines, ["hello", "world"]);
    }

    #[test]
    fn escape_sequences_never_reach_the_screen() {
        let mut log = OperationLog::default();
        log.select(Id(1));
        log.push(&chunk(
            0,
            "\x1b[2Jboom\x07\x1b]52;c;aGk=\x07\u{9b}x\u{202e}y\n",
        ));
        assert_eq!(
            log.lines[0].text,
            "\u{241b}[2Jboom\u{fffd}\u{241b}]52;c;aGk=\u{fffd}\u{fffd}x\u{fffd}y"
        );
        assert!(log.lines[0].styles.is_empty());
    }

    #[test]
    fn remote_colours_become_styles_and_nothing_else_does() {
        let line = LogLine::parse(
            Stream::Stdout,
            "ok \x1b[1;31mFAILED\x1b[0m and \x1b[38;5;82mgreen\x1b[m\r",
        );
        assert_eq!(line.text, "ok FAILED and green");
        let runs = line.runs();
        assert_eq!(runs[0], ("ok ", Style::default()));
        assert_eq!(
            runs[1],
            (
                "FAILED",
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
            )
        );
        assert_eq!(runs[2], (" and ", Style::default()));
        assert_eq!(runs[3], ("green", Style::default().fg(Color::Indexed(82))));
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
            log.visible(1).next().unwrap().text,
            format!("line {}", KEEP_LINES + 49)
        );
        log.scroll(5);
        assert!(!log.follow);
        assert!(log.search("line 5000"));
        assert_eq!(log.visible(1).next().unwrap().text, "line 5000");
    }
}
