//! What a second factor needs besides the sealed secret on the user record:
//! the last time step used (no code twice), hashed recovery codes (each used
//! once), and notices a user must read at their next command.

use super::kv::Write;
use super::{decode, encode, Store, StoreResult};

const USED: &str = "totp_used";
const RECOVERY: &str = "totp_recovery";
const NOTICES: &str = "notices";
/// Notices kept per user; older ones give way (each fits in a hello).
const MAX_NOTICES: usize = 4;

impl Store {
    /// The TOTP time step a user's last accepted code belonged to.
    pub fn totp_last_step(&self, login: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .kv
            .get(USED, login.as_bytes())?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes)))
    }

    /// Records the step of an accepted code (flushed with the decision it allowed).
    pub fn set_totp_last_step(&self, login: &str, step: u64) -> StoreResult<()> {
        self.kv
            .apply_lazy(vec![Write::put(USED, login.as_bytes(), step.to_be_bytes())])
    }

    /// The SHA-256 hashes of a user's unused recovery codes.
    pub fn recovery_hashes(&self, login: &str) -> StoreResult<Vec<[u8; 32]>> {
        match self.kv.get(RECOVERY, login.as_bytes())? {
            Some(v) => decode(RECOVERY, &v),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces a user's recovery code hashes (empty: none left) and flushes.
    pub async fn set_recovery_hashes(&self, login: &str, hashes: &[[u8; 32]]) -> StoreResult<()> {
        self.kv.apply(vec![if hashes.is_empty() {
            Write::delete(RECOVERY, login.as_bytes())
        } else {
            Write::put(RECOVERY, login.as_bytes(), encode(&hashes.to_vec())?)
        }])
    }

    /// Leaves a notice for a user's next connection, and flushes.
    pub async fn add_notice(&self, login: &str, notice: &str) -> StoreResult<()> {
        let mut notices: Vec<String> = match self.kv.get(NOTICES, login.as_bytes())? {
            Some(v) => decode(NOTICES, &v)?,
            None => Vec::new(),
        };
        notices.push(notice.to_string());
        let excess = notices.len().saturating_sub(MAX_NOTICES);
        notices.drain(..excess);
        self.kv.apply(vec![Write::put(
            NOTICES,
            login.as_bytes(),
            encode(&notices)?,
        )])
    }

    /// Takes a user's notices (they are said once), and flushes.
    pub async fn take_notices(&self, login: &str) -> StoreResult<Vec<String>> {
        let Some(v) = self.kv.get(NOTICES, login.as_bytes())? else {
            return Ok(Vec::new());
        };
        let notices = decode(NOTICES, &v)?;
        self.kv
            .apply(vec![Write::delete(NOTICES, login.as_bytes())])?;
        Ok(notices)
    }
}
