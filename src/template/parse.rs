//! Parsing `ssh-expect` templates and checking the masks of every template.

use super::BUILTIN_MASKS;
use crate::domain::{is_mask_name, Executor, Variable};
use std::fmt;

/// A template that does not parse or check, with the 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

fn error(line: usize, column: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        column,
        message: message.into(),
    }
}

/// One statement of an `ssh-expect` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based line in the template, for messages that say which line waited.
    pub line: usize,
    pub kind: StepKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Wait until the output since the last `exec` matches the glob.
    Expect {
        glob: String,
        timeout_secs: Option<u64>,
    },
    /// Send a line to the shell.
    Exec { line: String },
    /// Send text as it is, without a newline: a bare `y`, a Ctrl-C (`^C`),
    /// a CR line ending (`\r`), a byte (`\x1b`).
    Send { text: String },
    /// Close the session.
    End,
}

/// Parses and checks a template's content for its executor: statements for
/// `ssh-expect`, masks for all. Every error names the line and column.
pub fn check(
    executor: Executor,
    content: &str,
    variables: &[Variable],
) -> Result<(), TemplateError> {
    check_masks(content, variables)?;
    // What else the content must be is the executor's to say.
    crate::exec::executor::of(executor).check(content)
}

/// Parses an `ssh-expect` template into its steps.
pub fn parse_expect(content: &str) -> Result<Vec<Step>, TemplateError> {
    let mut steps = Vec::new();
    for (index, raw) in content.lines().enumerate() {
        let line = index + 1;
        let indent = raw.len() - raw.trim_start().len();
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let word_end = text.find(char::is_whitespace).unwrap_or(text.len());
        let (word, rest) = text.split_at(word_end);
        let rest_col = indent + word_end + 1;
        let kind = match word {
            "expect" => {
                let (glob, after, after_col) = quoted(rest, line, rest_col, "expect")?;
                let timeout_secs = parse_timeout(after, line, after_col)?;
                StepKind::Expect { glob, timeout_secs }
            }
            "exec" => {
                let (text, after, after_col) = quoted(rest, line, rest_col, "exec")?;
                trailing(after, line, after_col)?;
                StepKind::Exec { line: text }
            }
            "send" => {
                let (text, after, after_col) = quoted_send(rest, line, rest_col)?;
                trailing(after, line, after_col)?;
                StepKind::Send { text }
            }
            "end" => {
                trailing(rest, line, rest_col)?;
                StepKind::End
            }
            other => {
                return Err(error(
                    line,
                    indent + 1,
                    format!("unknown statement '{other}': expected expect, exec, send or end"),
                ))
            }
        };
        steps.push(Step { line, kind });
    }
    if steps.is_empty() {
        return Err(error(1, 1, "the template has no statements"));
    }
    Ok(steps)
}

/// Reads one double-quoted string (`\"` and `\\` escape) from the start of
/// `text`; returns it, the rest of the line and the rest's column.
fn quoted<'a>(
    text: &'a str,
    line: usize,
    column: usize,
    statement: &str,
) -> Result<(String, &'a str, usize), TemplateError> {
    let lead = text.len() - text.trim_start().len();
    let text_trim = text.trim_start();
    let start_col = column + lead;
    if !text_trim.starts_with('"') {
        return Err(error(
            line,
            start_col,
            format!("{statement} needs a quoted string, like {statement} \"…\""),
        ));
    }
    let mut value = String::new();
    let mut chars = text_trim.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let rest = &text_trim[i + 1..];
                return Ok((value, rest, start_col + i + 1));
            }
            '\\' => match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((j, other)) => {
                    return Err(error(
                        line,
                        start_col + j,
                        format!("unknown escape '\\{other}': only \\\" and \\\\ are allowed"),
                    ))
                }
                None => break,
            },
            other => value.push(other),
        }
    }
    Err(error(
        line,
        start_col,
        "unbalanced quote: the string is not closed",
    ))
}

/// Reads the quoted string of a `send`: besides `\"` and `\\`, the
/// escapes `\n`, `\r`, `\t`, `\xNN` (a byte below 0x80), `\^` (a caret),
/// and `^X` for a control character (`^C` is Ctrl-C; X is A–Z or @[\]^_).
fn quoted_send(
    text: &str,
    line: usize,
    column: usize,
) -> Result<(String, &str, usize), TemplateError> {
    let lead = text.len() - text.trim_start().len();
    let text_trim = text.trim_start();
    let start_col = column + lead;
    if !text_trim.starts_with('"') {
        return Err(error(
            line,
            start_col,
            "send needs a quoted string, like send \"y\" or send \"^C\"",
        ));
    }
    let mut value = String::new();
    let mut chars = text_trim.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text_trim[i + 1..], start_col + i + 1)),
            '^' => match chars.next() {
                Some((_, x @ ('A'..='Z' | '@' | '[' | '\\' | ']' | '^' | '_'))) => {
                    value.push(char::from(x as u8 & 0x1f))
                }
                Some((j, other)) => {
                    return Err(error(
                        line,
                        start_col + j,
                        format!("'^{other}' is no control character: ^ takes A–Z or @[\\]^_ (\\^ for a caret)"),
                    ))
                }
                None => break,
            },
            '\\' => match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, '^')) => value.push('^'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((j, 'x')) => {
                    let hex: String = (0..2).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                    match u8::from_str_radix(&hex, 16) {
                        Ok(b) if b < 0x80 && hex.len() == 2 => value.push(char::from(b)),
                        _ => {
                            return Err(error(
                                line,
                                start_col + j,
                                format!("'\\x{hex}': give two hex digits of a byte below 80"),
                            ))
                        }
                    }
                }
                Some((j, other)) => {
                    return Err(error(
                        line,
                        start_col + j,
                        format!("unknown escape '\\{other}' in send: \\n \\r \\t \\xNN \\^ \\\" \\\\ are allowed"),
                    ))
                }
                None => break,
            },
            other => value.push(other),
        }
    }
    Err(error(
        line,
        start_col,
        "unbalanced quote: the string is not closed",
    ))
}

fn parse_timeout(text: &str, line: usize, column: usize) -> Result<Option<u64>, TemplateError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(None),
        ["timeout", secs] => match secs.parse::<u64>() {
            Ok(s) if (1..=86_400).contains(&s) => Ok(Some(s)),
            _ => Err(error(
                line,
                column + text.find(secs).unwrap_or(0),
                format!("timeout '{secs}' must be a whole number of seconds from 1 to 86400"),
            )),
        },
        _ => Err(error(
            line,
            column + (text.len() - text.trim_start().len()),
            "after the string, only 'timeout SECONDS' may follow",
        )),
    }
}

fn trailing(text: &str, line: usize, column: usize) -> Result<(), TemplateError> {
    let lead = text.len() - text.trim_start().len();
    if text.trim().is_empty() {
        Ok(())
    } else {
        Err(error(
            line,
            column + lead,
            format!("unexpected '{}' at the end of the statement", text.trim()),
        ))
    }
}

/// Checks that every `[#NAME#]` is closed and names a built-in or declared mask.
fn check_masks(content: &str, variables: &[Variable]) -> Result<(), TemplateError> {
    for (index, raw) in content.lines().enumerate() {
        let mut from = 0;
        while let Some(open) = raw[from..].find("[#") {
            let start = from + open;
            let column = raw[..start].chars().count() + 1;
            let Some(close) = raw[start + 2..].find("#]") else {
                return Err(error(
                    index + 1,
                    column,
                    "mask '[#' is not closed with '#]'",
                ));
            };
            let name = &raw[start + 2..start + 2 + close];
            if !is_mask_name(name) {
                return Err(error(
                    index + 1,
                    column,
                    format!("'[#{name}#]' is not a mask name (upper-case letters, digits, '_')"),
                ));
            }
            if !BUILTIN_MASKS.contains(&name) && !variables.iter().any(|v| v.name == name) {
                return Err(error(
                    index + 1,
                    column,
                    format!("unknown mask [#{name}#]: neither built-in nor a declared variable"),
                ));
            }
            from = start + 2 + close + 2;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn send_takes_text_without_a_newline_and_control_characters() {
        let steps = parse_expect("send \"y\"\nsend \"^C\"\nsend \"a\\rb\\x1b\\^\"\nend\n").unwrap();
        let texts: Vec<&str> = steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Send { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, vec!["y", "\u{3}", "a\rb\u{1b}^"]);
        let e = parse_expect("send \"^1\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 8), "{e}");
        let e = parse_expect("send \"\\xZZ\"\n").unwrap_err();
        assert!(e.message.contains("hex"), "{e}");
        // exec keeps its strict escapes.
        assert!(parse_expect("exec \"a\\nb\"\n").is_err());
    }

    use super::*;

    fn var(name: &str) -> Variable {
        Variable {
            name: name.into(),
            ..Variable::default()
        }
    }

    #[test]
    fn parses_the_design_example() {
        let content = "# comment\nexpect \"*$\"\nexec \"service [#SERVICE#] status\"\nexpect \"*:\" timeout 10\nexec \"[#AUTH_PASSWORD#]\"\nend\n";
        check(Executor::SshExpect, content, &[var("SERVICE")]).unwrap();
        let steps = parse_expect(content).unwrap();
        assert_eq!(steps.len(), 5);
        assert_eq!(steps[0].line, 2);
        assert_eq!(
            steps[2].kind,
            StepKind::Expect {
                glob: "*:".into(),
                timeout_secs: Some(10)
            }
        );
    }

    #[test]
    fn names_line_and_column_of_an_unknown_statement() {
        let e = parse_expect("expect \"*\"\n  sned \"x\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("unknown statement 'sned'"), "{e}");
    }

    #[test]
    fn names_an_unbalanced_quote() {
        let e = parse_expect("exec \"echo hi\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 6));
        assert!(e.message.contains("unbalanced quote"));
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        let steps = parse_expect(r#"exec "echo \"hi\" \\ there""#).unwrap();
        assert_eq!(
            steps[0].kind,
            StepKind::Exec {
                line: r#"echo "hi" \ there"#.into()
            }
        );
    }

    #[test]
    fn refuses_undeclared_masks_with_their_position() {
        let e = check(
            Executor::SshScript,
            "echo ok\necho [#SERVICE#] [#NOPE#]\n",
            &[var("SERVICE")],
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (2, 18));
        assert!(e.message.contains("[#NOPE#]"));
        let e = check(Executor::Local, "echo [#OPEN", &[]).unwrap_err();
        assert!(e.message.contains("not closed"));
    }

    #[test]
    fn refuses_bad_timeouts_and_trailing_words() {
        assert!(parse_expect("expect \"*\" timeout x").is_err());
        assert!(parse_expect("expect \"*\" later").is_err());
        assert!(parse_expect("end now").is_err());
        assert!(parse_expect("# only a comment").is_err());
    }
}
