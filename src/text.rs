//! Making text from remote machines and users safe to put on a terminal.

/// Replaces control characters (escape sequences included) with U+FFFD,
/// keeping tabs, and drops a trailing line end.
pub fn printable(text: &str) -> String {
    text.trim_end_matches(['\n', '\r'])
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Like [`printable`], line by line: keeps the line breaks of a
/// multi-line message (an error with its context).
pub fn printable_lines(text: &str) -> String {
    text.lines().map(printable).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_and_bells_are_neutralised() {
        assert_eq!(
            super::printable("\x1b]0;pwned\x07ok\r\n"),
            "\u{fffd}]0;pwned\u{fffd}ok"
        );
        assert_eq!(super::printable("a\tb"), "a\tb");
        assert_eq!(super::printable_lines("a\x1b\nb\n"), "a\u{fffd}\nb");
    }
}
