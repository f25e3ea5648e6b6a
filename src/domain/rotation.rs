//! A credential's secret over time: how new passwords are made, where a
//! change stands, and the sealed secrets it replaced.

use super::{Id, Sealed, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a generated password is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub length: u32,
    pub lower: bool,
    pub upper: bool,
    pub digits: bool,
    pub symbols: bool,
    /// Characters never used (what a device's shell or form mangles).
    pub avoid: String,
}

impl Default for PasswordPolicy {
    fn default() -> PasswordPolicy {
        PasswordPolicy {
            length: 24,
            lower: true,
            upper: true,
            digits: true,
            symbols: true,
            avoid: String::new(),
        }
    }
}

/// Symbols that survive every place a template puts a password: inside
/// double quotes in a shell, typed into a prompt, after `user:` for
/// `chpasswd`. No quote, backslash, `$`, backtick, `!` or blank.
pub const PASSWORD_SYMBOLS: &str = "%+,-./:=@^_~";

impl PasswordPolicy {
    pub const MIN_LENGTH: u32 = 12;
    pub const MAX_LENGTH: u32 = 128;

    /// The character classes in use, each with its characters left after `avoid`.
    fn classes(&self) -> Vec<Vec<char>> {
        let sets = [
            (self.lower, "abcdefghijklmnopqrstuvwxyz"),
            (self.upper, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            (self.digits, "0123456789"),
            (self.symbols, PASSWORD_SYMBOLS),
        ];
        sets.iter()
            .filter(|(on, _)| *on)
            .map(|(_, set)| set.chars().filter(|c| !self.avoid.contains(*c)).collect())
            .collect()
    }

    /// Why this policy cannot make passwords, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(Self::MIN_LENGTH..=Self::MAX_LENGTH).contains(&self.length) {
            return Err(format!(
                "length must be between {} and {}",
                Self::MIN_LENGTH,
                Self::MAX_LENGTH
            ));
        }
        let classes = self.classes();
        if classes.is_empty() {
            return Err("at least one of lower, upper, digits and symbols must be on".into());
        }
        if classes.iter().any(|c| c.is_empty()) {
            return Err("`avoid` leaves a class that is on with no character".into());
        }
        if classes.len() as u32 > self.length {
            return Err("too short for one character of each class".into());
        }
        Ok(())
    }

    /// A new password: `length` characters from the OS's random source,
    /// at least one of each class in use, in random order.
    pub fn generate(&self) -> Result<String, String> {
        use rand::rngs::OsRng;
        use rand::seq::SliceRandom;
        use rand::Rng;
        self.check()?;
        let classes = self.classes();
        let all: Vec<char> = classes.iter().flatten().copied().collect();
        let mut rng = OsRng;
        let mut chars: Vec<char> = classes
            .iter()
            .map(|class| class[rng.gen_range(0..class.len())])
            .collect();
        while chars.len() < self.length as usize {
            chars.push(all[rng.gen_range(0..all.len())]);
        }
        chars.shuffle(&mut rng);
        Ok(chars.into_iter().collect())
    }
}

/// Where a credential's secret stands.
/// Stored by variant index: a new variant goes last; anything else
/// needs a migration (tests/golden.rs, src/store/codec.rs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SecretStatus {
    /// The stored secret is the one in use, as far as Gatehouse knows.
    #[default]
    Ok,
    /// A change is running (its operations).
    Changing { ops: Vec<Id> },
    /// A change ran but the new secret could not be shown to work, or
    /// worked on some devices only: what the devices hold is not known for
    /// sure. Reconcile sets it again.
    OutOfSync { why: String },
    /// The change template failed: the old secret is still in use.
    ChangeFailed { why: String },
}

impl SecretStatus {
    /// One word for lists and filters.
    pub fn word(&self) -> &'static str {
        match self {
            SecretStatus::Ok => "ok",
            SecretStatus::Changing { .. } => "changing",
            SecretStatus::OutOfSync { .. } => "out-of-sync",
            SecretStatus::ChangeFailed { .. } => "change-failed",
        }
    }
}

impl fmt::Display for SecretStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretStatus::Ok => f.write_str("ok"),
            SecretStatus::Changing { ops } => write!(
                f,
                "changing (operation {})",
                ops.iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            SecretStatus::OutOfSync { why } => write!(f, "OUT OF SYNC: {why}"),
            SecretStatus::ChangeFailed { why } => write!(f, "change failed: {why}"),
        }
    }
}

/// Why a change was started, for the audit and the history.
/// Stored by variant index: a new variant goes last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeReason {
    /// Asked for by a person.
    Manual,
    /// The credential reached its maximum age (`rotate_every`).
    MaxAge,
    /// Its secret was revealed to someone (`rotate_after_view`).
    AfterView { by: String },
    /// Its parent credential's change succeeded.
    Parent { credential: String },
    /// The stored secret no longer works: set through `reconcile_with`.
    Reconcile,
    /// A run that logged in with it ended (`rotate_after_use`).
    AfterUse { operation: Id },
    /// A privileged session that logged in with it ended.
    AfterSession { session: Id },
}

impl fmt::Display for ChangeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeReason::Manual => f.write_str("asked for"),
            ChangeReason::MaxAge => f.write_str("maximum age reached"),
            ChangeReason::AfterView { by } => write!(f, "after a view by {by}"),
            ChangeReason::Parent { credential } => {
                write!(f, "its parent credential {credential} changed")
            }
            ChangeReason::Reconcile => f.write_str("reconcile"),
            ChangeReason::AfterUse { operation } => {
                write!(f, "after operation {operation} used it")
            }
            ChangeReason::AfterSession { session } => {
                write!(f, "after session {session} used it")
            }
        }
    }
}

/// A change under way: the new secrets, sealed, until they are verified.
/// Which it changes follows from its template's masks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingChange {
    /// For `[#NEW_PASSWORD#]`.
    pub password: Option<Sealed>,
    /// For `[#NEW_PUBLIC_KEY#]`: a new ed25519 key pair, OpenSSH format.
    pub private_key: Option<Sealed>,
    pub reason: ChangeReason,
    pub started_at: Timestamp,
    pub started_by: String,
}

/// Secrets a change replaced, kept sealed for recovery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub password: Option<Sealed>,
    pub private_key: Option<Sealed>,
    pub passphrase: Option<Sealed>,
    pub replaced_at: Timestamp,
}

/// How many replaced secrets a credential keeps.
pub const PREVIOUS_KEPT: usize = 5;

/// The lifecycle of one credential's secret, kept apart from the record:
/// a rotation is not an edit of the credential (it does not void requests
/// that pinned the credential's revision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct SecretState {
    pub credential: Id,
    pub status: SecretStatus,
    /// The running change's new secret, until it is verified or given up.
    pub pending: Option<PendingChange>,
    /// When the current secret was set by a verified change.
    pub changed_at: Option<Timestamp>,
    /// When a periodic check last logged in with the stored secret.
    pub verified_at: Option<Timestamp>,
    /// A change that waits for a check-out period to end (after a view):
    /// when, and who was shown the password.
    pub rotate_at: Option<(Timestamp, String)>,
    /// How many verified changes there were.
    pub changes: u32,
    pub previous: Vec<PreviousSecret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_follow_the_policy_and_differ() {
        let policy = PasswordPolicy {
            length: 16,
            avoid: "0O1lI".into(),
            ..Default::default()
        };
        let a = policy.generate().unwrap();
        let b = policy.generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.chars().count(), 16);
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| PASSWORD_SYMBOLS.contains(c)));
        assert!(!a.chars().any(|c| "0O1lI".contains(c)), "{a}");
        assert!(!a.chars().any(|c| "'\"\\$`! ".contains(c)), "{a}");
    }

    #[test]
    fn a_daily_window_may_run_over_midnight() {
        use crate::domain::DailyWindow;
        let night = DailyWindow {
            from: "22:00".into(),
            to: "06:00".into(),
        };
        let at = |h: u32, m: u32| h * 60 + m;
        assert!(night.contains(at(23, 0)) && night.contains(at(0, 0)) && night.contains(at(5, 59)));
        assert!(
            !night.contains(at(6, 0)) && !night.contains(at(12, 0)) && !night.contains(at(21, 59))
        );
        let day = DailyWindow {
            from: "09:00".into(),
            to: "17:30".into(),
        };
        assert!(day.contains(at(9, 0)) && day.contains(at(17, 29)));
        assert!(!day.contains(at(17, 30)) && !day.contains(at(8, 59)));
        let bad = DailyWindow {
            from: "25:00".into(),
            to: "06:00".into(),
        };
        assert_eq!(bad.minutes().unwrap_err().0, "from");
        assert!(!bad.contains(at(1, 0)), "an invalid window holds nothing");
    }

    #[test]
    fn a_policy_that_cannot_make_passwords_says_why() {
        let short = PasswordPolicy {
            length: 4,
            ..Default::default()
        };
        assert!(short.check().unwrap_err().contains("between 12"));
        let none = PasswordPolicy {
            lower: false,
            upper: false,
            digits: false,
            symbols: false,
            ..Default::default()
        };
        assert!(none.check().is_err());
        let emptied = PasswordPolicy {
            symbols: false,
            upper: false,
            lower: false,
            avoid: "0123456789".into(),
            ..Default::default()
        };
        assert!(emptied.check().unwrap_err().contains("avoid"));
        assert!(PasswordPolicy::default().check().is_ok());
    }
}
