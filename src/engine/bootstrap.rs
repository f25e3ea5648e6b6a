//! What an empty store starts with.

use super::{Engine, EngineError};
use crate::access::builtin_roles;
use crate::domain::{Kind, Meta, Record, Timestamp, User, SUPERUSER_ROLE};
use crate::store::{Change, NewAuditEvent};

impl Engine {
    /// Adds missing built-in roles; on a store without users, makes the
    /// owner and `root` Superusers. `root` is re-added as Superuser if lost.
    pub(super) async fn bootstrap(&self) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let mut changes = Vec::new();
        let mut events = Vec::new();
        let existing_roles = self.store.list(Kind::Role)?;
        for mut role in builtin_roles() {
            if existing_roles.iter().any(|r| r.name() == role.meta.name) {
                continue;
            }
            stamp(&mut role.meta, self.store.next_id()?, now);
            events.push(NewAuditEvent::new(
                "gatehouse",
                "role.create",
                format!("role {}", role.meta.name),
                "built-in role",
            ));
            changes.push(Change::Put(Box::new(Record::Role(role))));
        }
        let users = self.store.list(Kind::User)?;
        let mut logins = vec!["root".to_string()];
        if users.is_empty() && self.owner != "root" {
            logins.push(self.owner.clone());
        }
        for login in logins {
            let existing = users
                .iter()
                .filter_map(super::as_user)
                .find(|u| u.meta.name == login);
            if existing.is_some_and(|u| u.roles.iter().any(|r| r == SUPERUSER_ROLE)) {
                continue;
            }
            let mut user = existing.cloned().unwrap_or_else(|| User {
                meta: Meta::named(&login),
                display_name: login.clone(),
                roles: Vec::new(),
                totp_secret: None,
            });
            if existing.is_none() {
                stamp(&mut user.meta, self.store.next_id()?, now);
            } else {
                user.meta.revision += 1;
                user.meta.updated_at = now;
            }
            user.roles.push(SUPERUSER_ROLE.to_string());
            events.push(NewAuditEvent::new(
                "gatehouse",
                if existing.is_none() {
                    "user.create"
                } else {
                    "user.update"
                },
                format!("user {login}"),
                "Superuser on an empty store (root always is)",
            ));
            changes.push(Change::Put(Box::new(Record::User(user))));
        }
        if !changes.is_empty() {
            self.store.commit(changes, events).await?;
        }
        Ok(())
    }
}

fn stamp(meta: &mut Meta, id: crate::domain::Id, now: Timestamp) {
    meta.id = id;
    meta.created_by = "gatehouse".into();
    meta.updated_by = "gatehouse".into();
    meta.created_at = now;
    meta.updated_at = now;
    meta.revision = 1;
}
