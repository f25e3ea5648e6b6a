//! Second factors: enrolling, resetting, and checking codes. Codes are
//! throttled per user (a run of wrong codes locks the user out for a time
//! that doubles), so the code space cannot be searched, and a lockout is one
//! audit event however many codes were tried.

use super::{Engine, EngineError, Response};
use crate::access::{mfa, Principal};
use crate::domain::{Kind, Permission, Record, Timestamp};
use crate::store::{Change, NewAuditEvent};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong codes in a row before a lockout.
pub const WRONG_CODES_BEFORE_LOCKOUT: u32 = 5;
/// The first lockout; each one after it lasts twice as long as the one before.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
const LONGEST_LOCKOUT: Duration = Duration::from_secs(3600);
/// Recovery codes made at each enrolment.
const RECOVERY_CODES: usize = 8;

/// Wrong codes per user, in the server's memory.
#[derive(Default)]
pub(super) struct MfaThrottle {
    users: Mutex<HashMap<String, Tries>>,
}

#[derive(Default)]
struct Tries {
    wrong: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
    refused_while_locked: u64,
}

/// What a wrong code led to.
enum Wrong {
    /// Fewer than the limit so far.
    Counted,
    /// This one started a lockout (audited once, with the counts).
    LockedOut {
        duration: Duration,
        refused_before: u64,
    },
}

impl MfaThrottle {
    /// Seconds left of a user's lockout, counting the attempt it refuses.
    fn locked(&self, login: &str, now: Instant) -> Option<u64> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let tries = users.get_mut(login)?;
        let until = tries.locked_until?;
        if until <= now {
            tries.locked_until = None;
            return None;
        }
        tries.refused_while_locked += 1;
        Some((until - now).as_secs().max(1))
    }

    fn wrong(&self, login: &str, now: Instant) -> Wrong {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let tries = users.entry(login.to_string()).or_default();
        tries.wrong += 1;
        if tries.wrong < WRONG_CODES_BEFORE_LOCKOUT {
            return Wrong::Counted;
        }
        let duration = FIRST_LOCKOUT
            .saturating_mul(1 << tries.lockouts.min(16))
            .min(LONGEST_LOCKOUT);
        tries.wrong = 0;
        tries.lockouts += 1;
        tries.locked_until = Some(now + duration);
        Wrong::LockedOut {
            duration,
            refused_before: std::mem::take(&mut tries.refused_while_locked),
        }
    }

    fn forget(&self, login: &str) {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(login);
    }
}

/// A new recovery code: 12 characters of base32 in three groups (60 bits).
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A recovery code as typed, normalised; `None` when it cannot be one.
fn normalise_recovery(code: &str) -> Option<String> {
    let plain: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (plain.len() == 12
        && plain
            .chars()
            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)))
    .then_some(plain)
}

fn recovery_hash(login: &str, normalised: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"gatehouse recovery code\0");
    h.update(login.as_bytes());
    h.update(b"\0");
    h.update(normalised.as_bytes());
    h.finalize().into()
}

impl Engine {
    /// A fresh TOTP secret and recovery codes for the caller, sealed in the
    /// store; shown once. Replacing an enrolled factor needs a current code
    /// or a recovery code, so holding someone's OS session is not enough.
    pub(super) async fn totp_enroll(
        &self,
        who: &Principal<'_>,
        login: &str,
        code: Option<&str>,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let actor = who.user.meta.name.clone();
        self.authorize(who, crate::access::Effect::EnrolSecondFactor { login })?;
        let Some(Record::User(mut user)) = self.store.find(Kind::User, login)? else {
            return Err(EngineError::NotFound {
                kind: Kind::User,
                name: login.to_string(),
            });
        };
        let replacing = user.totp_secret.is_some();
        if replacing {
            if code.is_none() {
                return Err(EngineError::Denied(format!(
                    "'{login}' already has a second factor: give a current code or a recovery code (--totp) to replace it, or ask an administrator to reset it"
                )));
            }
            self.check_totp(login, code).await?;
        }
        let mut secret = zeroize::Zeroizing::new(vec![0u8; 20]);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let uri = mfa::enrollment_uri(&secret, login).map_err(EngineError::Denied)?;
        let recovery_codes: Vec<String> =
            (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<[u8; 32]> = recovery_codes
            .iter()
            .filter_map(|c| normalise_recovery(c))
            .map(|c| recovery_hash(login, &c))
            .collect();
        user.totp_secret = Some(self.store.cipher().seal(&secret));
        user.meta.revision += 1;
        user.meta.updated_by = actor.clone();
        user.meta.updated_at = Timestamp::now();
        // The codes first: a crash between the two leaves the old secret
        // with new codes the user has seen, never a secret without codes.
        self.store.set_recovery_hashes(login, &hashes).await?;
        self.journal
            .commit(
                vec![Change::Put(Box::new(Record::User(user)))],
                vec![NewAuditEvent::new(
                    &actor,
                    "user.totp-enroll",
                    format!("user {login}"),
                    if replacing {
                        format!("new TOTP secret and {RECOVERY_CODES} recovery codes, replacing the previous ones (confirmed with a code)")
                    } else {
                        format!("new TOTP secret and {RECOVERY_CODES} recovery codes")
                    },
                )],
            )
            .await?;
        self.mfa_tries.forget(login);
        Ok(Response::TotpEnrolled {
            uri,
            recovery_codes,
        })
    }

    /// Removes another user's second factor (a lost phone): audited, and the
    /// user is told at their next command. The administrator never sees a
    /// secret; the user enrols again themselves.
    pub(super) async fn totp_reset(
        &self,
        who: &Principal<'_>,
        login: &str,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let actor = who.user.meta.name.clone();
        self.authorize(who, crate::access::Effect::Use(Permission::ManageUsers))?;
        let Some(Record::User(mut user)) = self.store.find(Kind::User, login)? else {
            return Err(EngineError::NotFound {
                kind: Kind::User,
                name: login.to_string(),
            });
        };
        user.totp_secret = None;
        user.meta.revision += 1;
        user.meta.updated_by = actor.clone();
        user.meta.updated_at = Timestamp::now();
        self.store.set_recovery_hashes(login, &[]).await?;
        self.journal
            .commit(
                vec![Change::Put(Box::new(Record::User(user)))],
                vec![NewAuditEvent::new(
                    &actor,
                    "user.totp-reset",
                    format!("user {login}"),
                    "second factor and recovery codes removed",
                )],
            )
            .await?;
        self.store
            .add_notice(
                login,
                &format!(
                    "your second factor was removed by '{actor}' at {}: enrol again with `gatehouse user totp-enroll {login}`; if you did not ask for this, tell your security team",
                    Timestamp::now()
                ),
            )
            .await?;
        self.mfa_tries.forget(login);
        Ok(Response::Done)
    }

    /// What `login` must be told at once; said once.
    pub async fn take_notices(&self, login: &str) -> Result<Vec<String>, EngineError> {
        Ok(self.store.take_notices(login).await?)
    }

    /// Checks a user's TOTP code (or a recovery code) and spends it.
    /// Throttled: after a run of wrong codes nothing is checked until the
    /// lockout ends, and the lockout is audited once.
    pub(super) async fn check_totp(
        &self,
        login: &str,
        code: Option<&str>,
    ) -> Result<(), EngineError> {
        let denied = |m: String| EngineError::Denied(m);
        let code = code.ok_or_else(|| EngineError::MfaRequired {
            login: login.to_string(),
        })?;
        if let Some(seconds) = self.mfa_tries.locked(login, Instant::now()) {
            return Err(EngineError::MfaLocked {
                login: login.to_string(),
                seconds,
            });
        }
        let Some(Record::User(user)) = self.store.find(Kind::User, login)? else {
            return Err(denied(format!("no user '{login}'")));
        };
        let sealed = user
            .totp_secret
            .ok_or_else(|| EngineError::MfaNotEnrolled {
                login: login.to_string(),
            })?;
        if let Some(normalised) = normalise_recovery(code) {
            return self.spend_recovery_code(login, &normalised).await;
        }
        let secret = self.store.cipher().open(&sealed)?;
        let now = (Timestamp::now().0 / 1000).max(0) as u64;
        let last = self.store.totp_last_step(login)?;
        match mfa::verify(&secret, login, code, now, last) {
            Ok(step) => {
                self.store.set_totp_last_step(login, step)?;
                self.mfa_tries.forget(login);
                Ok(())
            }
            Err(mfa::Refusal::Wrong(message)) => {
                self.count_wrong_code(login).await?;
                Err(denied(message))
            }
            Err(mfa::Refusal::Other(message)) => Err(denied(message)),
        }
    }

    async fn spend_recovery_code(&self, login: &str, normalised: &str) -> Result<(), EngineError> {
        let given = recovery_hash(login, normalised);
        let mut hashes = self.store.recovery_hashes(login)?;
        // Compare with every stored hash, whichever matches.
        let mut found = None;
        for (i, h) in hashes.iter().enumerate() {
            if constant_time_eq::constant_time_eq(h, &given) {
                found = Some(i);
            }
        }
        let Some(i) = found else {
            self.count_wrong_code(login).await?;
            return Err(EngineError::Denied(
                "the recovery code is wrong or was already used".into(),
            ));
        };
        hashes.remove(i);
        self.store.set_recovery_hashes(login, &hashes).await?;
        self.mfa_tries.forget(login);
        self.audit(vec![NewAuditEvent::new(
            login,
            "user.totp-recovery-code",
            format!("user {login}"),
            format!("a recovery code was used; {} left", hashes.len()),
        )])
        .await?;
        Ok(())
    }

    async fn count_wrong_code(&self, login: &str) -> Result<(), EngineError> {
        if let Wrong::LockedOut {
            duration,
            refused_before,
        } = self.mfa_tries.wrong(login, Instant::now())
        {
            let mut details = format!(
                "{WRONG_CODES_BEFORE_LOCKOUT} wrong second-factor codes in a row: no code is checked for {} s",
                duration.as_secs()
            );
            if refused_before > 0 {
                details.push_str(&format!(
                    "; {refused_before} attempts were refused during the lockout before"
                ));
            }
            self.audit(vec![NewAuditEvent::new(
                login,
                "user.totp-lockout",
                format!("user {login}"),
                details,
            )])
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_codes_lock_out_for_a_time_that_doubles() {
        let throttle = MfaThrottle::default();
        let t0 = Instant::now();
        for _ in 1..WRONG_CODES_BEFORE_LOCKOUT {
            assert!(matches!(throttle.wrong("bob", t0), Wrong::Counted));
            assert!(throttle.locked("bob", t0).is_none());
        }
        assert!(matches!(
            throttle.wrong("bob", t0),
            Wrong::LockedOut { duration, .. } if duration == FIRST_LOCKOUT
        ));
        assert_eq!(throttle.locked("bob", t0), Some(30));
        // Another user is not locked by bob's codes.
        assert!(throttle.locked("carol", t0).is_none());
        let t1 = t0 + FIRST_LOCKOUT;
        assert!(throttle.locked("bob", t1).is_none());
        for _ in 1..WRONG_CODES_BEFORE_LOCKOUT {
            throttle.wrong("bob", t1);
        }
        assert!(matches!(
            throttle.wrong("bob", t1),
            Wrong::LockedOut { duration, refused_before: 1 } if duration == FIRST_LOCKOUT * 2
        ));
        throttle.forget("bob");
        assert!(throttle.locked("bob", t1).is_none());
    }

    #[test]
    fn recovery_codes_are_sixty_bits_and_read_back_however_typed() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 14);
        let plain = normalise_recovery(&code).unwrap();
        assert_eq!(
            normalise_recovery(&code.to_uppercase()),
            Some(plain.clone())
        );
        assert_eq!(normalise_recovery(&plain), Some(plain));
        assert_eq!(normalise_recovery("123456"), None);
        assert_ne!(new_recovery_code(), new_recovery_code());
    }
}
