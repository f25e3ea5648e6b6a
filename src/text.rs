//! Making text from remote machines and users safe to put on a terminal.

/// Replaces control characters (escape sequences included) with U+FFFD,
/// keeping tabs, and drops a trailing line end.
pub fn printable(text: &str) -> String {
    printable_cow(text).into_owned()
}

/// Whether a character must not reach a terminal as it is: control
/// characters (C0, DEL and C1, so every escape sequence) and the
/// formatting characters that reorder text (bidi overrides and isolates).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// [`printable`] without a copy when there is nothing to replace (a line of
/// remote output, printed a million times).
pub fn printable_cow(text: &str) -> std::borrow::Cow<'_, str> {
    replacing(text.trim_end_matches(['\n', '\r']), |c| {
        is_unsafe(c) && c != '\t'
    })
}

/// Text from outside made safe to keep and show in the TUI: like
/// [`printable`], but line breaks and tabs stay (a template's content, a
/// description), and nothing is trimmed.
pub fn screened(text: &str) -> std::borrow::Cow<'_, str> {
    replacing(text, |c| is_unsafe(c) && c != '\t' && c != '\n')
}

/// `text` with every character `replace` picks turned into U+FFFD; no copy
/// when it picks none.
fn replacing(text: &str, replace: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(&replace) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| if replace(c) { '\u{fffd}' } else { c })
        .collect::<String>()
        .into()
}

/// Text from outside made safe for a log line or a one-line message: control
/// characters escaped (a newline cannot forge a line) and at most `max`
/// characters kept, saying how much was left out.
pub fn clipped(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (taken, c) in text.chars().enumerate() {
        if taken == max {
            out.push_str(&format!("…({} bytes in all)", text.len()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `width` characters of one line for the screen: a longer one
/// ends in `…`, so a cut never passes for a whole word.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Like [`printable`], line by line: keeps the line breaks of a
/// multi-line message (an error with its context).
pub fn printable_lines(text: &str) -> String {
    text.lines().map(printable).collect::<Vec<_>>().join("\n")
}

/// Text for standard output: any character that could drive a terminal
/// (C0 and C1 controls, DEL, bidi overrides) that is still in it is written
/// as a JSON-style `\uXXXX` escape, which keeps JSON lines valid and the
/// rest visible. Line breaks and tabs stay.
pub fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    let escape = |c: char| is_unsafe(c) && c != '\n' && c != '\t';
    if !text.chars().any(escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Terminal output as a person reads it: escape sequences (CSI such as
/// colours and busybox's cursor query `ESC[6n`, OSC titles, two-byte ones)
/// and carriage returns removed. For matching `expect` patterns; the
/// stored output keeps every byte.
pub fn without_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Two-byte sequences (ESC =, ESC >, ESC ( B…): the next char too.
                Some('(') | Some(')') => {
                    chars.next();
                }
                _ => {}
            },
            c => out.push(c),
        }
    }
    out
}

/// Whether the whole of `text` matches the glob `pattern` (`*` any run of
/// characters, `?` one): expect lines and algorithm removals use it.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`: linear in
    // practice, never exponential on hostile patterns.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_what_a_person_does_not_read() {
        // busybox asks where the cursor is after its prompt.
        assert_eq!(without_terminal_escapes("~ $ \u{1b}[6n"), "~ $ ");
        // A coloured prompt.
        assert_eq!(
            without_terminal_escapes("\u{1b}[01;32muser@host\u{1b}[00m:~$ \u{1b}[0m"),
            "user@host:~$ "
        );
        // A window title (OSC, ended by BEL or by ST) and CR line endings.
        assert_eq!(
            without_terminal_escapes("\u{1b}]0;title\u{7}a\r\nb\u{1b}]2;t\u{1b}\\c"),
            "a\nbc"
        );
        // Plain text is left alone.
        assert_eq!(without_terminal_escapes("Password: "), "Password: ");
    }

    #[test]
    fn clipped_text_escapes_line_breaks_and_says_how_long_it_was() {
        assert_eq!(super::clipped("bob\nforged line", 50), "bob\\nforged line");
        assert_eq!(super::clipped("\u{1b}[2J", 50), "\\u{1b}[2J");
        let long = "x".repeat(10_000);
        assert_eq!(super::clipped(&long, 3), "xxx…(10000 bytes in all)");
    }

    #[test]
    fn escape_sequences_and_bells_are_neutralised() {
        assert_eq!(
            super::printable("\x1b]0;pwned\x07ok\r\n"),
            "\u{fffd}]0;pwned\u{fffd}ok"
        );
        assert_eq!(super::printable("a\tb"), "a\tb");
        assert!(matches!(
            super::printable_cow("plain line\n"),
            std::borrow::Cow::Borrowed("plain line")
        ));
        assert_eq!(super::printable_cow("bell\x07"), "bell\u{fffd}");
        assert_eq!(super::printable_lines("a\x1b\nb\n"), "a\u{fffd}\nb");
    }
}
