//! The append-only audit log: each event carries the hash of the one before,
//! so an edited, removed or reordered event breaks the chain where it happened.

use super::decode;
use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// An audit event before it has a place in the chain.
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Never a secret: callers pass redacted text only.
    pub details: String,
}

tokio::task_local! {
    /// While a command given with `--as` runs: (the Gatehouse login acted
    /// as, the OS account that acted).
    static ACTING: (String, String);
}

/// Runs `work` (one command) so that every audit event it makes for
/// `login` names the OS account that really acted: "gh-svc as gh-alice".
pub async fn acting_as<F: std::future::Future>(os_login: &str, login: &str, work: F) -> F::Output {
    if os_login == login {
        return work.await;
    }
    ACTING
        .scope((login.to_string(), os_login.to_string()), work)
        .await
}

impl NewAuditEvent {
    pub fn new(
        actor: &str,
        action: &str,
        target: impl Into<String>,
        details: impl Into<String>,
    ) -> Self {
        // An actor is real: under --as, both accounts are named.
        let actor = ACTING
            .try_with(|(login, os_login)| {
                (actor == login).then(|| format!("{os_login} as {login}"))
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| actor.to_string());
        NewAuditEvent {
            actor,
            action: action.to_string(),
            target: target.into(),
            details: details.into(),
        }
    }
}

/// A stored audit event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub time: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditEvent {
    /// The hash this event must carry: over every field and the previous hash.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"gatehouse-audit-v1");
        h.update(self.seq.to_be_bytes());
        h.update(self.time.0.to_be_bytes());
        for field in [&self.actor, &self.action, &self.target, &self.details] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        h.update(self.prev_hash);
        h.finalize().into()
    }

    /// The event's hash in hex, as exported and forwarded.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// The event as one JSON object, the form `audit export`, the JSON-lines
    /// forwarder and the syslog message body share, and that
    /// `audit verify --against` reads back.
    /// Whether it concerns request `id`: the request's own events, its
    /// runs and its operations' (each names `request ID`, as a whole number).
    pub fn concerns_request(&self, id: u64) -> bool {
        let word = format!("request {id}");
        [&self.target, &self.details].iter().any(|text| {
            text.match_indices(&word)
                .any(|(at, _)| !text[at + word.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "time": self.time.to_utc().to_rfc3339(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": hex::encode(self.prev_hash),
            "hash": self.hash_hex(),
        })
    }
}

/// Where the next event goes: its sequence number and the hash it follows.
#[derive(Clone, Copy)]
pub(super) struct Head {
    pub next_seq: u64,
    pub last_hash: [u8; 32],
}

impl Head {
    /// Places events after this head; returns them and the head after them.
    pub fn chain(&self, events: Vec<NewAuditEvent>) -> (Vec<AuditEvent>, Head) {
        let mut head = *self;
        let time = Timestamp::now();
        let sealed = events
            .into_iter()
            .map(|e| {
                let mut event = AuditEvent {
                    seq: head.next_seq,
                    time,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    details: e.details,
                    prev_hash: head.last_hash,
                    hash: [0; 32],
                };
                event.hash = event.compute_hash();
                head = Head {
                    next_seq: event.seq + 1,
                    last_hash: event.hash,
                };
                event
            })
            .collect();
        (sealed, head)
    }
}

/// Where and why the audit chain does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBreak {
    pub seq: u64,
    pub reason: String,
}

impl fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit event {}: {}", self.seq, self.reason)
    }
}

/// Verifies a chain one entry at a time, in key order.
pub(super) struct Verifier {
    expected_seq: u64,
    prev: [u8; 32],
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier {
            expected_seq: 1,
            prev: [0; 32],
        }
    }
}

impl Verifier {
    /// The next entry; where and why the chain breaks there, if it does.
    pub fn next(&mut self, key: &[u8], value: &[u8]) -> Result<(), AuditBreak> {
        let expected_seq = self.expected_seq;
        let key_seq = key.try_into().map(u64::from_be_bytes).unwrap_or(0);
        let event: AuditEvent = decode("audit", value).map_err(|e| AuditBreak {
            seq: key_seq,
            reason: format!("cannot be read ({e})"),
        })?;
        if key_seq != expected_seq || event.seq != expected_seq {
            let reason = if key_seq > expected_seq {
                format!(
                    "expected event {expected_seq} next: {} event(s) before this one were removed",
                    key_seq - expected_seq
                )
            } else {
                format!(
                    "is stored under sequence {key_seq} but says {}: moved or reordered",
                    event.seq
                )
            };
            return Err(AuditBreak {
                seq: key_seq,
                reason,
            });
        }
        if event.prev_hash != self.prev {
            return Err(AuditBreak {
                seq: event.seq,
                reason:
                    "does not follow the event before it (reordered, or one before it was replaced)"
                        .into(),
            });
        }
        if event.compute_hash() != event.hash {
            return Err(AuditBreak {
                seq: event.seq,
                reason: format!(
                    "was edited after it was written (actor {}, action {})",
                    event.actor, event.action
                ),
            });
        }
        self.prev = event.hash;
        self.expected_seq += 1;
        Ok(())
    }

    /// How many events verified so far.
    pub fn verified(&self) -> u64 {
        self.expected_seq - 1
    }
}
