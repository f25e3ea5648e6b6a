//! TOTP (RFC 6238) codes as a second factor: 6 digits, 30-second steps, one
//! step of clock skew either way, and no code accepted twice.

use totp_rs::{Algorithm, TOTP};

const STEP: u64 = 30;

fn totp(secret: &[u8], account: &str) -> Result<TOTP, String> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret.to_vec(),
        Some("Gatehouse".into()),
        account.to_string(),
    )
    .map_err(|e| format!("the TOTP secret is unusable: {e}"))
}

/// The `otpauth://` URI an authenticator app enrolls from.
pub fn enrollment_uri(secret: &[u8], account: &str) -> Result<String, String> {
    Ok(totp(secret, account)?.get_url())
}

/// Why a code was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A well-formed code that is not the current one: counts as a guess.
    Wrong(String),
    /// Malformed, reused, or an unusable secret: no guess was made.
    Other(String),
}

/// Checks `code` at `now` (Unix seconds) against the secret; returns the
/// time step it belongs to. A step at or before `last_used` is refused, so
/// a code works once. Every step in the skew window is compared, in
/// constant time, whichever matches.
pub fn verify(
    secret: &[u8],
    account: &str,
    code: &str,
    now: u64,
    last_used: Option<u64>,
) -> Result<u64, Refusal> {
    let code = code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(Refusal::Other("a TOTP code is 6 digits".into()));
    }
    let t = totp(secret, account).map_err(Refusal::Other)?;
    let current = now / STEP;
    let mut matched = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = t.generate(step * STEP);
        if constant_time_eq::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = matched.or(Some(step));
        }
    }
    let step = matched.ok_or_else(|| Refusal::Wrong("the TOTP code is wrong or expired".into()))?;
    if last_used.is_some_and(|last| step <= last) {
        return Err(Refusal::Other(
            "this TOTP code was already used; wait for the next one".into(),
        ));
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors_and_one_use_per_code() {
        // RFC 6238 appendix B, SHA-1, truncated to 6 digits.
        let t = totp(SECRET, "bob").unwrap();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(t.generate(1111111109), "081804");
        let step = verify(SECRET, "bob", "081804", 1111111109, None).unwrap();
        assert!(matches!(
            verify(SECRET, "bob", "081804", 1111111109, Some(step)),
            Err(Refusal::Other(m)) if m.contains("already used")
        ));
        assert!(matches!(
            verify(SECRET, "bob", "000000", 1111111109, None),
            Err(Refusal::Wrong(_))
        ));
        assert!(matches!(
            verify(SECRET, "bob", "08180", 1111111109, None),
            Err(Refusal::Other(m)) if m.contains("6 digits")
        ));
        // A code from the previous step is still accepted (clock skew).
        assert!(verify(SECRET, "bob", "081804", 1111111109 + 30, None).is_ok());
        assert!(verify(SECRET, "bob", "081804", 1111111109 + 90, None).is_err());
        assert!(enrollment_uri(SECRET, "bob")
            .unwrap()
            .starts_with("otpauth://totp/Gatehouse:bob?secret="));
    }
}
