//! Replacing secret values with their mask names in a stream of output,
//! including a secret split across two reads.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

/// Redacts secrets from a byte stream. Bytes that might be the start of a
/// secret are held back until the next chunk shows whether they are.
pub struct Redactor {
    /// (secret bytes, replacement), longest secret first.
    secrets: Vec<(Vec<u8>, Vec<u8>)>,
    pending: Vec<u8>,
}

impl Redactor {
    /// A redactor for these (mask name, value) pairs; empty values are ignored.
    pub fn new(secrets: &[(String, SecretString)]) -> Redactor {
        let mut list: Vec<(Vec<u8>, Vec<u8>)> = secrets
            .iter()
            .filter(|(_, v)| !v.expose_secret().is_empty())
            .map(|(name, v)| {
                (
                    v.expose_secret().as_bytes().to_vec(),
                    format!("[#{name}#]").into_bytes(),
                )
            })
            .collect();
        list.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Redactor {
            secrets: list,
            pending: Vec::new(),
        }
    }

    /// Feeds a chunk; returns what can be shown now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.pending);
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'scan: while i < buf.len() {
            let rest = &buf[i..];
            for (secret, mask) in &self.secrets {
                if rest.starts_with(secret) {
                    out.extend_from_slice(mask);
                    i += secret.len();
                    continue 'scan;
                }
            }
            if self
                .secrets
                .iter()
                .any(|(secret, _)| rest.len() < secret.len() && secret.starts_with(rest))
            {
                // Might be a secret cut by the read: wait for more.
                self.pending = rest.to_vec();
                break;
            }
            out.push(buf[i]);
            i += 1;
        }
        out
    }

    /// Ends the stream: what was held back is shown (it was no secret).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// Redacts one complete text, such as an error message.
    pub fn redact_text(&self, text: &str) -> String {
        let mut copy = Redactor {
            secrets: self.secrets.clone(),
            pending: Vec::new(),
        };
        let mut out = copy.feed(text.as_bytes());
        out.extend(copy.finish());
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Redactor {
    fn drop(&mut self) {
        for (secret, _) in &mut self.secrets {
            secret.zeroize();
        }
        self.pending.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&[
            ("AUTH_PASSWORD".into(), SecretString::from("hunter2")),
            ("NEW_PASSWORD".into(), SecretString::from("hunter2-new")),
        ])
    }

    #[test]
    fn replaces_a_secret_with_its_mask_name() {
        let r = redactor();
        assert_eq!(r.redact_text("pw=hunter2!"), "pw=[#AUTH_PASSWORD#]!");
        assert_eq!(r.redact_text("hunter2-new"), "[#NEW_PASSWORD#]");
    }

    #[test]
    fn catches_a_secret_split_across_reads_at_every_point() {
        let text = b"echo hunter2; echo done hunter";
        for cut in 0..text.len() {
            let mut r = redactor();
            let mut out = r.feed(&text[..cut]);
            out.extend(r.feed(&text[cut..]));
            out.extend(r.finish());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "echo [#AUTH_PASSWORD#]; echo done hunter",
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn byte_by_byte_feeding_never_shows_the_secret() {
        let mut r = redactor();
        let mut out = Vec::new();
        for b in b"xx hunter2 yy" {
            out.extend(r.feed(&[*b]));
        }
        out.extend(r.finish());
        assert_eq!(out, b"xx [#AUTH_PASSWORD#] yy");
    }
}
