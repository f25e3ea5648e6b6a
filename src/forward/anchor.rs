//! Checking the local audit log against a copy kept outside the box. A hash
//! chain alone shows an edited event, but not a log cut short or rolled back
//! to an earlier state and continued: both still chain. The forwarded copy
//! names, for each sequence number, the hash the event had when it left, so
//! an event missing here, or a different event under the same number, shows.

use std::collections::BTreeMap;

/// The events a copy holds: sequence number to hash, with the line each came from.
#[derive(Debug, Default)]
pub struct Anchors {
    by_seq: BTreeMap<u64, (String, usize)>,
    /// Lines that held no audit event (other syslog traffic, blank lines).
    pub ignored: usize,
}

/// Why the copy cannot be used, or what it shows about the local log.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("the file holds no Gatehouse audit events ({0} lines read)")]
    Empty(usize),
    #[error("line {line}: event {seq} has hash {hash}, but line {earlier} gives it {earlier_hash}: the copy contradicts itself")]
    Contradicts {
        line: usize,
        seq: u64,
        hash: String,
        earlier: usize,
        earlier_hash: String,
    },
    #[error("the local audit log ends at event {local_len}, but the copy holds events up to {newest} (line {line}): the local log was truncated or rolled back")]
    Truncated {
        local_len: u64,
        newest: u64,
        line: usize,
    },
    #[error("event {seq} differs from the copy (line {line}): here {local}, there {copy}; the local log was rolled back or rewritten from this event on")]
    Differs {
        seq: u64,
        line: usize,
        local: String,
        copy: String,
    },
}

impl Anchors {
    /// Reads every line that holds an audit event as JSON with `seq` and
    /// `hash`: a JSON-lines export, or a collector's file in which the JSON
    /// is the syslog message.
    pub fn parse(text: &str) -> Result<Anchors, AnchorError> {
        let mut anchors = Anchors::default();
        let mut lines = 0;
        for (index, line) in text.lines().enumerate() {
            lines += 1;
            let number = index + 1;
            let Some((seq, hash)) = event_in(line) else {
                anchors.ignored += 1;
                continue;
            };
            match anchors.by_seq.get(&seq) {
                Some((earlier_hash, earlier)) if *earlier_hash != hash => {
                    return Err(AnchorError::Contradicts {
                        line: number,
                        seq,
                        hash,
                        earlier: *earlier,
                        earlier_hash: earlier_hash.clone(),
                    })
                }
                // A target may send an event twice after a crash: same hash, fine.
                Some(_) => {}
                None => {
                    anchors.by_seq.insert(seq, (hash, number));
                }
            }
        }
        if anchors.by_seq.is_empty() {
            return Err(AnchorError::Empty(lines));
        }
        Ok(anchors)
    }

    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// The lowest and highest sequence numbers the copy holds.
    pub fn span(&self) -> (u64, u64) {
        let first = self.by_seq.keys().next().copied().unwrap_or(0);
        let last = self.by_seq.keys().next_back().copied().unwrap_or(0);
        (first, last)
    }

    /// Checks a local log of `local_len` events whose hashes `local` gives
    /// (in order, from the copy's first sequence number on).
    pub fn check(
        &self,
        local_len: u64,
        local: impl IntoIterator<Item = (u64, String)>,
    ) -> Result<(), AnchorError> {
        if let Some((&newest, (_, line))) = self.by_seq.iter().next_back() {
            if newest > local_len {
                return Err(AnchorError::Truncated {
                    local_len,
                    newest,
                    line: *line,
                });
            }
        }
        for (seq, hash) in local {
            if let Some((copy, line)) = self.by_seq.get(&seq) {
                if *copy != hash {
                    return Err(AnchorError::Differs {
                        seq,
                        line: *line,
                        local: hash,
                        copy: copy.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The sequence number and hash of the audit event a line holds, if any.
fn event_in(line: &str) -> Option<(u64, String)> {
    let start = line.find('{')?;
    let value: serde_json::Value = serde_json::from_str(line[start..].trim_end()).ok()?;
    let seq = value.get("seq")?.as_u64()?;
    let hash = value.get("hash")?.as_str()?;
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| (seq, hash.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> String {
        hex::encode([n; 32])
    }

    fn line(seq: u64, n: u8) -> String {
        format!(r#"{{"seq":{seq},"hash":"{}","actor":"a"}}"#, h(n))
    }

    #[test]
    fn reads_json_lines_and_syslog_lines_and_skips_the_rest() {
        let text = format!(
            "{}\nNov 26 jump1 gatehouse[1]: {}\nsomething else\n{}\n",
            line(1, 1),
            line(2, 2),
            line(2, 2)
        );
        let a = Anchors::parse(&text).unwrap();
        assert_eq!((a.len(), a.ignored, a.span()), (2, 1, (1, 2)));
    }

    #[test]
    fn a_copy_that_contradicts_itself_is_refused_naming_both_lines() {
        let text = format!("{}\n{}\n", line(1, 1), line(1, 9));
        assert!(matches!(
            Anchors::parse(&text),
            Err(AnchorError::Contradicts {
                line: 2,
                seq: 1,
                earlier: 1,
                ..
            })
        ));
        assert_eq!(Anchors::parse("x\n\n").unwrap_err(), AnchorError::Empty(2));
    }

    #[test]
    fn truncation_and_rollback_show() {
        let a =
            Anchors::parse(&format!("{}\n{}\n{}\n", line(1, 1), line(2, 2), line(3, 3))).unwrap();
        let local = |n: u8| (1..=n as u64).map(|s| (s, h(s as u8))).collect::<Vec<_>>();
        assert_eq!(a.check(3, local(3)), Ok(()));
        assert_eq!(
            a.check(4, local(4)),
            Ok(()),
            "events not forwarded yet are fine"
        );
        assert!(matches!(
            a.check(2, local(2)),
            Err(AnchorError::Truncated {
                local_len: 2,
                newest: 3,
                line: 3
            })
        ));
        let mut rolled = local(3);
        rolled[1].1 = h(7);
        assert!(matches!(
            a.check(3, rolled),
            Err(AnchorError::Differs {
                seq: 2,
                line: 2,
                ..
            })
        ));
    }
}
