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
            if let Some(Record::Role(stored)) =
                existing_roles.iter().find(|r| r.name() == role.meta.name)
            {
                if let Some(updated) = own_executions_only(stored, &role, now) {
                    events.push(NewAuditEvent::new(
                        "gatehouse",
                        "role.update",
                        format!("role {}", role.meta.name),
                        "built-in role: its holders see their own executions only (view-executions removed; grant it where others' are to be seen)",
                    ));
                    changes.push(Change::Put(Box::new(Record::Role(updated))));
                } else if let Some(updated) = auditor_explains(stored, &role, now) {
                    events.push(NewAuditEvent::new(
                        "gatehouse",
                        "role.update",
                        format!("role {}", role.meta.name),
                        "built-in role: view-policies added (its holders may ask how the policies judge anyone)",
                    ));
                    changes.push(Change::Put(Box::new(Record::Role(updated))));
                }
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
            self.journal.commit(changes, events).await?;
        }
        Ok(())
    }
}

/// Stores made before the built-in User role stopped granting
/// view-executions (which showed every user's runs to everyone): the grant
/// goes, unless an administrator changed the role since.
fn own_executions_only(
    stored: &crate::domain::Role,
    builtin: &crate::domain::Role,
    now: Timestamp,
) -> Option<crate::domain::Role> {
    use crate::domain::Permission;
    let old_grant = stored
        .grants
        .iter()
        .any(|g| g.action == Permission::ViewExecutions && g.environments.is_empty());
    let unchanged_otherwise = stored.builtin
        && stored.description == builtin.description
        && stored.grants.len() == builtin.grants.len() + 1
        && builtin.grants.iter().all(|g| stored.grants.contains(g));
    if !(builtin.meta.name == "User" && old_grant && unchanged_otherwise) {
        return None;
    }
    let mut updated = stored.clone();
    updated
        .grants
        .retain(|g| g.action != Permission::ViewExecutions);
    updated.meta.revision += 1;
    updated.meta.updated_by = "gatehouse".into();
    updated.meta.updated_at = now;
    Some(updated)
}

/// The built-in Auditor of a store made before view-policies existed,
/// as stored (nobody changed it since), gains it.
fn auditor_explains(
    stored: &crate::domain::Role,
    builtin: &crate::domain::Role,
    now: Timestamp,
) -> Option<crate::domain::Role> {
    use crate::domain::Permission;
    let lacks = !stored
        .grants
        .iter()
        .any(|g| g.action == Permission::ViewPolicies);
    let unchanged_otherwise = stored.builtin
        && stored.description == builtin.description
        && stored.grants.len() + 1 == builtin.grants.len()
        && stored.grants.iter().all(|g| builtin.grants.contains(g));
    if !(builtin.meta.name == "Auditor" && lacks && unchanged_otherwise) {
        return None;
    }
    let mut updated = stored.clone();
    updated.grants = builtin.grants.clone();
    updated.meta.revision += 1;
    updated.meta.updated_by = "gatehouse".into();
    updated.meta.updated_at = now;
    Some(updated)
}

fn stamp(meta: &mut Meta, id: crate::domain::Id, now: Timestamp) {
    meta.id = id;
    meta.created_by = "gatehouse".into();
    meta.updated_by = "gatehouse".into();
    meta.created_at = now;
    meta.updated_at = now;
    meta.revision = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Permission;

    fn auditor() -> crate::domain::Role {
        builtin_roles()
            .into_iter()
            .find(|r| r.meta.name == "Auditor")
            .unwrap()
    }

    #[test]
    fn an_auditor_from_before_view_policies_gains_it_and_a_changed_one_does_not() {
        let now = Timestamp(1);
        let mut old = auditor();
        old.grants.retain(|g| g.action != Permission::ViewPolicies);
        let updated = auditor_explains(&old, &auditor(), now).unwrap();
        assert!(updated
            .grants
            .iter()
            .any(|g| g.action == Permission::ViewPolicies));
        assert_eq!(updated.meta.revision, old.meta.revision + 1);
        // Already up to date: nothing.
        assert!(auditor_explains(&auditor(), &auditor(), now).is_none());
        // Someone changed its grants: left as they made it.
        let mut changed = old.clone();
        changed.grants.pop();
        assert!(auditor_explains(&changed, &auditor(), now).is_none());
    }
}
