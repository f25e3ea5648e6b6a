//! Replacing secret values with their mask names in everything that leaves
//! an executor. One redactor sees all of an operation's streams in the order
//! their bytes arrived, so a secret split between stdout and stderr, across
//! reads, or with terminal escape sequences between its characters is still
//! found; and it looks for the common encodings of each secret too (the
//! forms `{:?}`, JSON and shell quoting give it, and base64).

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

const ESC: u8 = 0x1b;
/// An escape sequence longer than this is not skipped as one.
const LONGEST_ESCAPE: usize = 256;

/// One form of one secret and the mask name that replaces it.
struct Pattern {
    bytes: Vec<u8>,
    mask: Vec<u8>,
}

/// How a pattern fares at one position.
enum Match {
    /// It ends just before this index.
    Full(usize),
    /// The input ran out while it still matched: wait for more.
    Partial,
    No,
}

/// Redacts secrets from a stream of tagged bytes (the tag says which of the
/// operation's streams a byte came on). Bytes that might begin a secret are
/// held back until the next bytes show whether they do.
pub struct Redactor {
    /// Every form of every secret, longest first.
    patterns: Vec<Pattern>,
    /// Which bytes can start a pattern: most bytes are passed on at once.
    starts: [bool; 256],
    pending: Vec<u8>,
    pending_tags: Vec<u8>,
}

/// The forms a secret takes in text Gatehouse or a program may produce.
fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let inner = |quoted: String| -> String {
        quoted
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .map(str::to_string)
            .unwrap_or(quoted)
    };
    let mut forms = vec![
        secret.to_string(),
        inner(format!("{secret:?}")),
        inner(serde_json::to_string(secret).unwrap_or_default()),
        super::shell_quote(secret),
        secret.replace('\'', r"'\''"),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
    ];
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

/// Where the escape sequence starting at `at` (an ESC) ends; `Err(())` when
/// the input ends inside it, `Ok(None)` when it is not one.
fn escape_end(buf: &[u8], at: usize) -> Result<Option<usize>, ()> {
    let Some(&kind) = buf.get(at + 1) else {
        return Err(());
    };
    match kind {
        b'[' => {
            for (q, b) in buf.iter().enumerate().skip(at + 2) {
                if q - at > LONGEST_ESCAPE {
                    return Ok(None);
                }
                if (0x40..=0x7e).contains(b) {
                    return Ok(Some(q + 1));
                }
            }
            Err(())
        }
        b']' | b'P' | b'_' | b'^' => {
            for q in at + 2..buf.len() {
                if q - at > LONGEST_ESCAPE {
                    return Ok(None);
                }
                if buf[q] == 0x07 {
                    return Ok(Some(q + 1));
                }
                if buf[q] == ESC {
                    return match buf.get(q + 1) {
                        Some(b'\\') => Ok(Some(q + 2)),
                        Some(_) => Ok(None),
                        None => Err(()),
                    };
                }
            }
            Err(())
        }
        0x40..=0x5f => Ok(Some(at + 2)),
        _ => Ok(None),
    }
}

impl Pattern {
    /// Whether this pattern starts at `at`, escape sequences between its
    /// bytes skipped.
    fn at(&self, buf: &[u8], at: usize) -> Match {
        let mut p = at;
        let mut j = 0;
        while j < self.bytes.len() {
            let Some(&b) = buf.get(p) else {
                return Match::Partial;
            };
            if b == self.bytes[j] {
                p += 1;
                j += 1;
            } else if b == ESC && j > 0 {
                match escape_end(buf, p) {
                    Ok(Some(end)) => p = end,
                    Ok(None) => return Match::No,
                    Err(()) => return Match::Partial,
                }
            } else {
                return Match::No;
            }
        }
        Match::Full(p)
    }
}

impl Redactor {
    /// A redactor for these (mask name, value) pairs; empty values are ignored.
    pub fn new(secrets: &[(String, SecretString)]) -> Redactor {
        let mut patterns: Vec<Pattern> = Vec::new();
        for (name, value) in secrets {
            let value = value.expose_secret();
            if value.is_empty() {
                continue;
            }
            for form in encodings(value) {
                patterns.push(Pattern {
                    bytes: form.into_bytes(),
                    mask: format!("[#{name}#]").into_bytes(),
                });
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.bytes.len()));
        let mut starts = [false; 256];
        for p in &patterns {
            starts[p.bytes[0] as usize] = true;
        }
        Redactor {
            patterns,
            starts,
            pending: Vec::new(),
            pending_tags: Vec::new(),
        }
    }

    /// Feeds bytes that arrived on stream `tag`; returns what can be shown
    /// now, as runs of (tag, bytes) in order. A secret found across streams
    /// is replaced in the stream where it began.
    pub fn feed(&mut self, tag: u8, chunk: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.pending.extend_from_slice(chunk);
        self.pending_tags.resize(self.pending.len(), tag);
        self.scan(false)
    }

    /// Ends the stream: what was held back is shown (it was no secret), with
    /// any shorter secret inside it still replaced.
    pub fn finish(&mut self) -> Vec<(u8, Vec<u8>)> {
        self.scan(true)
    }

    /// Passes on what is known to hold no secret; at the end, a form that
    /// could still have continued counts as no match.
    fn scan(&mut self, at_end: bool) -> Vec<(u8, Vec<u8>)> {
        let mut buf = std::mem::take(&mut self.pending);
        let mut tags = std::mem::take(&mut self.pending_tags);
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut push = |tag: u8, bytes: &[u8]| match out.last_mut() {
            Some((t, run)) if *t == tag => run.extend_from_slice(bytes),
            _ => out.push((tag, bytes.to_vec())),
        };
        let mut i = 0;
        'scan: while i < buf.len() {
            if self.starts[buf[i] as usize] {
                let mut partial = false;
                for pattern in &self.patterns {
                    match pattern.at(&buf, i) {
                        // A longer form still matching wins over a shorter full one.
                        Match::Full(end) if !partial => {
                            push(tags[i], &pattern.mask);
                            i = end;
                            continue 'scan;
                        }
                        Match::Partial if !at_end => partial = true,
                        Match::Full(_) | Match::Partial | Match::No => {}
                    }
                }
                if partial {
                    self.pending = buf[i..].to_vec();
                    self.pending_tags = tags[i..].to_vec();
                    buf.zeroize();
                    tags.clear();
                    return out;
                }
            }
            // Pass on the run of bytes that cannot start a secret at once.
            let mut end = i + 1;
            while end < buf.len() && !self.starts[buf[end] as usize] && tags[end] == tags[i] {
                end += 1;
            }
            push(tags[i], &buf[i..end]);
            i = end;
        }
        buf.zeroize();
        out
    }

    /// Redacts one complete text, such as an error message. Call it before
    /// the text is formatted, escaped or cut.
    pub fn redact_text(&self, text: &str) -> String {
        let mut copy = Redactor {
            patterns: self
                .patterns
                .iter()
                .map(|p| Pattern {
                    bytes: p.bytes.clone(),
                    mask: p.mask.clone(),
                })
                .collect(),
            starts: self.starts,
            pending: Vec::new(),
            pending_tags: Vec::new(),
        };
        let mut out: Vec<u8> = copy
            .feed(0, text.as_bytes())
            .into_iter()
            .flat_map(|(_, b)| b)
            .collect();
        out.extend(copy.finish().into_iter().flat_map(|(_, b)| b));
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Redactor {
    fn drop(&mut self) {
        for p in &mut self.patterns {
            p.bytes.zeroize();
        }
        self.pending.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redactor() -> Redactor {
        Redactor::new(&[
            ("AUTH_PASSWORD".into(), SecretString::from("hunter2")),
            ("NEW_PASSWORD".into(), SecretString::from("hunter2-new")),
        ])
    }

    /// Everything shown, as one text, tags dropped.
    fn run(r: &mut Redactor, parts: &[(u8, &[u8])]) -> String {
        let mut out = Vec::new();
        for (tag, bytes) in parts {
            out.extend(r.feed(*tag, bytes).into_iter().flat_map(|(_, b)| b));
        }
        out.extend(r.finish().into_iter().flat_map(|(_, b)| b));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn replaces_a_secret_with_its_mask_name() {
        let r = redactor();
        assert_eq!(r.redact_text("pw=hunter2!"), "pw=[#AUTH_PASSWORD#]!");
        assert_eq!(r.redact_text("hunter2-new"), "[#NEW_PASSWORD#]");
        // A shorter secret inside held-back text is still found at the end.
        assert_eq!(r.redact_text("hunter2-ne"), "[#AUTH_PASSWORD#]-ne");
    }

    #[test]
    fn catches_a_secret_split_across_reads_at_every_point() {
        let text = b"echo hunter2; echo done hunter";
        for cut in 0..text.len() {
            let mut r = redactor();
            assert_eq!(
                run(&mut r, &[(0, &text[..cut]), (0, &text[cut..])]),
                "echo [#AUTH_PASSWORD#]; echo done hunter",
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn catches_a_secret_split_between_streams_with_an_escape_inside() {
        let mut r = redactor();
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let parts = [
            r.feed(0, b"pw: hun"),
            r.feed(1, b"\x1b[31mter2\x1b[0m done"),
            r.finish(),
        ];
        for (tag, bytes) in parts.into_iter().flatten() {
            match out.last_mut() {
                Some((t, run)) if *t == tag => run.extend(bytes),
                _ => out.push((tag, bytes)),
            }
        }
        // Replaced where it began (stdout); the rest of stderr stays stderr.
        assert_eq!(
            out,
            vec![
                (0, b"pw: [#AUTH_PASSWORD#]".to_vec()),
                (1, b"\x1b[0m done".to_vec())
            ]
        );
        // An OSC sequence between characters too.
        assert_eq!(
            redactor().redact_text("x hu\x1b]0;title\x07nter2 y"),
            "x [#AUTH_PASSWORD#] y"
        );
    }

    #[test]
    fn catches_the_common_encodings_of_a_secret() {
        let nasty = r#"Tr1cky-$ecret"pw\x'q"#;
        let r = Redactor::new(&[("AUTH_PASSWORD".into(), SecretString::from(nasty))]);
        use base64::Engine as _;
        for shown in [
            format!("last output: {nasty:?}"),
            serde_json::json!({ "error": nasty }).to_string(),
            format!("+ echo {}", crate::template::shell_quote(nasty)),
            base64::engine::general_purpose::STANDARD.encode(nasty),
        ] {
            let out = r.redact_text(&shown);
            assert!(out.contains("[#AUTH_PASSWORD#]"), "{shown} -> {out}");
            assert!(!out.contains("ecret"), "{shown} -> {out}");
        }
    }

    proptest! {
        /// Any secret, split anywhere across reads and streams, with escape
        /// sequences between its characters, never comes out whole.
        #[test]
        fn a_secret_never_comes_out_however_it_is_cut(
            secret in "[ -~]{4,24}",
            before in "[a-z ]{0,10}",
            after in "[a-z ]{0,10}",
            cuts in proptest::collection::vec(0usize..64, 0..4),
            escapes in proptest::collection::vec(0usize..24, 0..3),
        ) {
            let mut inner: Vec<u8> = Vec::new();
            for (i, b) in secret.bytes().enumerate() {
                if i > 0 && escapes.contains(&i) {
                    inner.extend_from_slice(b"\x1b[1;31m");
                }
                inner.push(b);
            }
            let mut text = before.clone().into_bytes();
            text.extend(&inner);
            text.extend(after.as_bytes());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort();
            let mut r = Redactor::new(&[("PASSWORD".into(), SecretString::from(secret.clone()))]);
            let mut out = Vec::new();
            let mut last = 0;
            for (n, cut) in cuts.into_iter().chain([text.len()]).enumerate() {
                for (_, b) in r.feed((n % 2) as u8, &text[last..cut]) {
                    out.extend(b);
                }
                last = cut;
            }
            for (_, b) in r.finish() {
                out.extend(b);
            }
            let shown = String::from_utf8_lossy(&out).into_owned();
            prop_assert!(shown.contains("[#PASSWORD#]"), "{shown:?}");
            let plain: Vec<u8> = out.iter().copied().filter(|b| *b != 0x1b).collect();
            prop_assert!(
                !plain.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{shown:?}"
            );
        }
    }
}
