//! Enrolling users in TOTP and checking their codes.

use super::{Engine, EngineError, Event, Response};
use crate::access::{mfa, Principal};
use crate::domain::{Action, Kind, Record, Timestamp};
use crate::store::{Change, NewAuditEvent};
use rand::RngCore;

impl Engine {
    /// A fresh TOTP secret for `login`, sealed in the store; the URI is shown once.
    pub(super) async fn totp_enroll(
        &self,
        who: &Principal<'_>,
        login: &str,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let actor = who.user.meta.name.clone();
        if actor != login && !who.may(Action::ManageUsers, None) {
            return Err(EngineError::Denied(format!(
                "'{actor}' may enroll only themselves (enrolling others needs manage-users)"
            )));
        }
        let Some(Record::User(mut user)) = self.store.find(Kind::User, login)? else {
            return Err(EngineError::NotFound {
                kind: Kind::User,
                name: login.to_string(),
            });
        };
        let mut secret = zeroize::Zeroizing::new(vec![0u8; 20]);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let uri = mfa::enrollment_uri(&secret, login).map_err(EngineError::Denied)?;
        user.totp_secret = Some(self.store.cipher().seal(&secret));
        user.meta.revision += 1;
        user.meta.updated_by = actor.clone();
        user.meta.updated_at = Timestamp::now();
        self.store
            .commit(
                vec![Change::Put(Box::new(Record::User(user)))],
                vec![NewAuditEvent::new(
                    &actor,
                    "user.totp-enroll",
                    format!("user {login}"),
                    "new TOTP secret",
                )],
            )
            .await?;
        self.publish(Event::RecordChanged {
            kind: Kind::User,
            name: login.to_string(),
        });
        Ok(Response::TotpUri(uri))
    }

    /// Checks a user's TOTP code and spends it.
    pub(super) async fn check_totp(
        &self,
        login: &str,
        code: Option<&str>,
    ) -> Result<(), EngineError> {
        let denied = |m: String| EngineError::Denied(m);
        let code = code.ok_or_else(|| {
            denied("the policy requires MFA: give a current TOTP code (--totp)".into())
        })?;
        let Some(Record::User(user)) = self.store.find(Kind::User, login)? else {
            return Err(denied(format!("no user '{login}'")));
        };
        let sealed = user.totp_secret.ok_or_else(|| {
            denied(format!(
                "the policy requires MFA and '{login}' has no TOTP secret: run `gatehouse user totp-enroll {login}`"
            ))
        })?;
        let secret = self.store.cipher().open(&sealed)?;
        let now = (Timestamp::now().0 / 1000).max(0) as u64;
        let last = self.store.totp_last_step(login)?;
        let step = mfa::verify(&secret, login, code, now, last).map_err(denied)?;
        self.store.set_totp_last_step(login, step)?;
        Ok(())
    }
}
