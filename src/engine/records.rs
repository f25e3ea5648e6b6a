//! Creating, changing, disabling and deleting configuration records.

use super::api::{ImportItem, PlainSecrets};
use super::{Engine, EngineError, Response};
use crate::access::{self, Effect, Principal};
use crate::domain::{
    AccessLevel, FieldError, Kind, Meta, Record, Sealed, Timestamp, Validate, SUPERUSER_ROLE,
};
use crate::store::{Change, NewAuditEvent, SecretCipher};
use std::collections::BTreeMap;

/// The records of the store and of an import together, by kind and name.
struct Catalog {
    by_kind: BTreeMap<Kind, BTreeMap<String, Record>>,
}

impl Catalog {
    fn load(engine: &Engine) -> Result<Catalog, EngineError> {
        let mut by_kind = BTreeMap::new();
        for kind in Kind::ALL {
            let records = engine.store.list(kind)?;
            by_kind.insert(
                kind,
                records
                    .into_iter()
                    .map(|r| (r.name().to_string(), r))
                    .collect(),
            );
        }
        Ok(Catalog { by_kind })
    }

    fn get(&self, kind: Kind, name: &str) -> Option<&Record> {
        self.by_kind.get(&kind).and_then(|m| m.get(name))
    }
}

impl access::Facts for Catalog {
    fn executor_of(&self, template: &str) -> Option<crate::domain::Executor> {
        match self.get(Kind::Template, template) {
            Some(Record::Template(t)) => Some(t.executor),
            _ => None,
        }
    }
    fn task_parts(&self, task: &str) -> Option<(String, Vec<String>)> {
        match self.get(Kind::Task, task) {
            Some(Record::Task(t)) => Some((t.template.clone(), t.children.clone())),
            _ => None,
        }
    }
    fn device_environment(&self, device: &str) -> Option<String> {
        match self.get(Kind::Device, device) {
            Some(Record::Device(d)) => Some(d.environment.clone()),
            _ => None,
        }
    }
}

impl Catalog {
    /// Every record that names `kind`/`name`, as "kind 'name' (field)".
    fn users_of(&self, kind: Kind, name: &str) -> Vec<String> {
        self.by_kind
            .values()
            .flat_map(|m| m.values())
            .flat_map(|r| {
                r.references()
                    .into_iter()
                    .filter(|re| re.kind == kind && re.name == name)
                    // A role's access to the record is no use of it: it
                    // goes with the record (see `Engine::delete`).
                    .filter(move |re| !(r.kind() == Kind::Role && re.field == "resources.name"))
                    .map(move |re| format!("{} '{}' ({})", r.kind(), r.name(), re.field))
            })
            .collect()
    }

    /// The roles that grant access to `kind`/`name`, without those grants.
    fn roles_without_grants_on(&self, kind: Kind, name: &str) -> Vec<crate::domain::Role> {
        self.by_kind
            .get(&Kind::Role)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|r| match r {
                Record::Role(role)
                    if role
                        .resources
                        .iter()
                        .any(|g| g.kind == kind && g.name == name) =>
                {
                    let mut role = role.clone();
                    role.resources
                        .retain(|g| !(g.kind == kind && g.name == name));
                    Some(role)
                }
                _ => None,
            })
            .collect()
    }
}

fn invalid(record: &Record, line: usize, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        kind: record.kind(),
        name: record.name().to_string(),
        line,
        field: None,
        at: None,
        message: message.into(),
    }
}

/// Whether two versions of a record hold the same content (header aside,
/// except the enabled flag and the secrets).
fn same_content(a: &Record, b: &Record) -> bool {
    let strip = |r: &Record| {
        let mut r = r.clone();
        let enabled = r.meta().enabled;
        let name = r.name().to_string();
        *r.meta_mut() = Meta {
            name,
            enabled,
            ..Meta::default()
        };
        r
    };
    strip(a) == strip(b)
}

/// Seals the plain secrets into the record; keeps the stored ones that the
/// import leaves out. Returns the names of the secrets that changed.
fn apply_secrets(
    cipher: &SecretCipher,
    record: &mut Record,
    secrets: &PlainSecrets,
    existing: Option<&Record>,
) -> Result<Vec<&'static str>, EngineError> {
    let mut changed = Vec::new();
    let mut put = |name: &'static str,
                   slot: &mut Option<Sealed>,
                   plain: &Option<String>,
                   old: Option<&Option<Sealed>>|
     -> Result<(), EngineError> {
        let old = old.cloned().flatten();
        match plain {
            Some(value) => {
                let same = match &old {
                    Some(sealed) => cipher
                        .open(sealed)
                        .map(|p| p[..] == *value.as_bytes())
                        .unwrap_or(false),
                    None => false,
                };
                if same {
                    *slot = old;
                } else {
                    *slot = Some(cipher.seal(value.as_bytes()));
                    changed.push(name);
                }
            }
            None => *slot = old,
        }
        Ok(())
    };
    match record {
        Record::Credential(c) => {
            let old = match existing {
                Some(Record::Credential(o)) => Some(o),
                _ => None,
            };
            put(
                "password",
                &mut c.password,
                &secrets.password,
                old.map(|o| &o.password),
            )?;
            put(
                "private_key",
                &mut c.private_key,
                &secrets.private_key,
                old.map(|o| &o.private_key),
            )?;
            put(
                "passphrase",
                &mut c.passphrase,
                &secrets.passphrase,
                old.map(|o| &o.passphrase),
            )?;
            if c.certificate.is_some() && c.private_key.is_none() {
                return Err(EngineError::Invalid {
                    kind: Kind::Credential,
                    name: c.meta.name.clone(),
                    line: 0,
                    field: Some("certificate_file".into()),
                    at: None,
                    message: "a certificate is used with its private key, which the credential does not hold".into(),
                });
            }
        }
        Record::User(u) => {
            let old = match existing {
                Some(Record::User(o)) => Some(o),
                _ => None,
            };
            put(
                "totp_secret",
                &mut u.totp_secret,
                &secrets.totp_secret,
                old.map(|o| &o.totp_secret),
            )?;
        }
        _ => {}
    }
    Ok(changed)
}

/// The shortest password or passphrase Gatehouse stores: a shorter secret
/// would be found by chance in output and rewrite it everywhere.
pub const MIN_SECRET_CHARS: usize = 4;

/// Refuses secrets too short to redact without giving them away.
fn check_secrets(record: &Record, secrets: &PlainSecrets, line: usize) -> Result<(), EngineError> {
    for (field, value) in [
        ("password", &secrets.password),
        ("passphrase", &secrets.passphrase),
    ] {
        if let Some(v) = value {
            if !v.is_empty() && v.chars().count() < MIN_SECRET_CHARS {
                return Err(invalid_field(record, line, field, None, format!(
                        "shorter than {MIN_SECRET_CHARS} characters; a secret that short would be found by chance in output, so Gatehouse refuses it"
                    ),
                ));
            }
        }
    }
    // A key that cannot be read would fail at every run, with a message
    // about cryptography: it is refused here, naming what to fix.
    if let Some(key) = secrets
        .private_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    {
        if let Err(e) = russh::keys::decode_secret_key(key, secrets.passphrase.as_deref()) {
            let (field, why) = match &secrets.passphrase {
                None => (
                    "private_key",
                    format!("cannot be read ({e}); if it is encrypted, give its passphrase"),
                ),
                Some(_) => (
                    "passphrase",
                    format!("the private key cannot be read with it ({e})"),
                ),
            };
            return Err(invalid_field(record, line, field, None, why));
        }
    }
    if let Record::Credential(crate::domain::Credential {
        certificate: Some(text),
        ..
    }) = record
    {
        let certificate = russh::keys::Certificate::from_openssh(text).map_err(|e| {
            invalid_field(
                record,
                line,
                "certificate_file",
                None,
                format!("is not an OpenSSH certificate ({e})"),
            )
        })?;
        let key = secrets
            .private_key
            .as_deref()
            .and_then(|k| russh::keys::decode_secret_key(k, secrets.passphrase.as_deref()).ok());
        if let Some(key) = key {
            if certificate.public_key() != key.public_key().key_data() {
                return Err(invalid_field(
                    record,
                    line,
                    "certificate_file",
                    None,
                    "the certificate is for another key than the credential's private key",
                ));
            }
        }
    }
    Ok(())
}

/// A record invalid in one field (at a line and column of it, where known).
fn invalid_field(
    record: &Record,
    line: usize,
    field: &str,
    at: Option<(usize, usize)>,
    message: impl Into<String>,
) -> EngineError {
    EngineError::Invalid {
        kind: record.kind(),
        name: record.name().to_string(),
        line,
        field: Some(field.to_string()),
        at,
        message: message.into(),
    }
}

/// Checks a record's own fields and, for templates, the content.
fn check_record(record: &Record, line: usize) -> Result<(), EngineError> {
    record
        .validate()
        .map_err(|e: FieldError| invalid_field(record, line, &e.field, None, e.message))?;
    if let Record::Template(t) = record {
        crate::template::check(t.executor, &t.content, &t.variables).map_err(|e| {
            invalid_field(record, line, "content", Some((e.line, e.column)), e.message)
        })?;
    }
    Ok(())
}

impl Engine {
    /// Creates or updates records by name; one bad record and nothing is written.
    pub(super) async fn import(
        &self,
        who: &Principal<'_>,
        items: Vec<ImportItem>,
    ) -> Result<Response, EngineError> {
        self.import_from(who, items, None).await
    }

    /// An import; `cloned_from` names the record a clone copies (its
    /// create event says so).
    async fn import_from(
        &self,
        who: &Principal<'_>,
        items: Vec<ImportItem>,
        cloned_from: Option<&str>,
    ) -> Result<Response, EngineError> {
        let login = who.user.meta.name.clone();
        let _guard = self.write_lock.lock().await;
        let mut catalog = Catalog::load(self)?;
        let stored = Catalog::load(self)?;

        // Fields first, and names unique within the file.
        let mut seen: BTreeMap<(Kind, String), usize> = BTreeMap::new();
        for item in &items {
            check_record(&item.record, item.line)?;
            check_secrets(&item.record, &item.secrets, item.line)?;
            if let Record::User(u) = &item.record {
                if u.meta.name == "root" && !u.roles.iter().any(|r| r == SUPERUSER_ROLE) {
                    return Err(invalid_field(
                        &item.record,
                        item.line,
                        "roles",
                        None,
                        "root always holds the Superuser role",
                    ));
                }
            }
            let key = (item.record.kind(), item.record.name().to_string());
            if let Some(first) = seen.insert(key, item.line) {
                return Err(invalid(
                    &item.record,
                    item.line,
                    format!("is defined twice in this file (first on line {first})"),
                ));
            }
            let map = catalog.by_kind.entry(item.record.kind()).or_default();
            map.insert(item.record.name().to_string(), item.record.clone());
        }
        // Judged on the record as stored and as it will be; whether a task
        // runs locally is judged on the templates as they will be, and as
        // they are.
        for item in &items {
            let existing = stored.get(item.record.kind(), item.record.name());
            let judged = access::authorize(
                who,
                Effect::Change {
                    stored: existing,
                    incoming: &item.record,
                },
                &catalog,
            )
            .and_then(|()| match existing {
                Some(old) => access::authorize(
                    who,
                    Effect::Change {
                        stored: Some(old),
                        incoming: old,
                    },
                    &stored,
                ),
                None => Ok(()),
            });
            if let Err(denial) = judged {
                self.refused(&login, "records.import.refused", "import", &denial.message)
                    .await?;
                return Err(EngineError::Denied(denial.message));
            }
        }

        // Then references, against the file and the store together.
        for item in &items {
            for reference in item.record.references() {
                if catalog.get(reference.kind, &reference.name).is_none() {
                    return Err(invalid_field(
                        &item.record,
                        item.line,
                        reference.field,
                        None,
                        format!(
                            "names {} '{}', which is neither in this file nor in the store",
                            reference.kind, reference.name
                        ),
                    ));
                }
            }
            // Segmentation: a task's devices live in its environment and
            // system, so a policy for the task's labels is one for its devices.
            let mismatch = |task: &crate::domain::Task, device: &str| {
                match catalog
                .get(Kind::Device, device)
            {
                Some(Record::Device(d))
                    if d.environment != task.environment || d.system != task.system =>
                {
                    Some(format!(
                        "device '{device}' is in environment '{}' and system '{}', task '{}' in '{}' and '{}'; a task's devices must be in its environment and system",
                        d.environment, d.system, task.meta.name, task.environment, task.system
                    ))
                }
                _ => None,
            }
            };
            // A credential is the executor's to need: one that reaches
            // devices needs one; one that runs here does not.
            let remote = |template: &str| match catalog.get(Kind::Template, template) {
                Some(Record::Template(t)) => crate::exec::executor::of(t.executor).remote(),
                _ => true,
            };
            if let Record::Task(task) = &item.record {
                if task.credential.is_empty() && remote(&task.template) {
                    return Err(invalid_field(
                        &item.record,
                        item.line,
                        "credential",
                        None,
                        format!(
                            "template '{}' reaches devices: name the credential it logs in with",
                            task.template
                        ),
                    ));
                }
            }
            if let Record::Template(t) = &item.record {
                if crate::exec::executor::of(t.executor).remote() {
                    let without = catalog.by_kind.get(&Kind::Task).and_then(|tasks| {
                        tasks.values().find_map(|r| match r {
                            Record::Task(task)
                                if task.template == t.meta.name && task.credential.is_empty() =>
                            {
                                Some(task.meta.name.clone())
                            }
                            _ => None,
                        })
                    });
                    if let Some(task) = without {
                        return Err(invalid_field(
                            &item.record,
                            item.line,
                            "executor",
                            None,
                            format!(
                                "{} reaches devices, and task '{task}' uses this template without a credential",
                                t.executor.as_str()
                            ),
                        ));
                    }
                }
            }
            if let Record::Task(task) = &item.record {
                if let Some(why) = task.devices.iter().find_map(|d| mismatch(task, d)) {
                    return Err(invalid_field(&item.record, item.line, "devices", None, why));
                }
            }
            if let Record::Device(device) = &item.record {
                let tasks = catalog
                    .by_kind
                    .get(&Kind::Task)
                    .into_iter()
                    .flat_map(|m| m.values());
                for task in tasks {
                    if let Record::Task(task) = task {
                        if task.devices.contains(&device.meta.name) {
                            if let Some(why) = mismatch(task, &device.meta.name) {
                                return Err(invalid_field(
                                    &item.record,
                                    item.line,
                                    "environment",
                                    None,
                                    why,
                                ));
                            }
                        }
                    }
                }
            }
            if let Record::Task(task) = &item.record {
                if let Some(Record::Template(t)) = catalog.get(Kind::Template, &task.template) {
                    if let Some(unknown) = task
                        .variables
                        .keys()
                        .find(|k| !t.variables.iter().any(|v| &v.name == *k))
                    {
                        return Err(invalid_field(
                            &item.record,
                            item.line,
                            "variables",
                            None,
                            format!("template '{}' declares no variable {unknown}", t.meta.name),
                        ));
                    }
                }
            }
        }

        // Then build the changes.
        let now = Timestamp::now();
        let (mut created, mut updated, mut unchanged) = (Vec::new(), Vec::new(), 0usize);
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for item in items {
            let kind = item.record.kind();
            let name = item.record.name().to_string();
            let existing = stored.get(kind, &name);
            let mut record = item.record.clone();
            let secrets_changed =
                apply_secrets(self.store.cipher(), &mut record, &item.secrets, existing).map_err(
                    |e| match e {
                        EngineError::Invalid {
                            line: 0,
                            kind,
                            name,
                            field,
                            at,
                            message,
                        } => EngineError::Invalid {
                            kind,
                            name,
                            line: item.line,
                            field,
                            at,
                            message,
                        },
                        other => other,
                    },
                )?;
            // Whether a role is built in is the store's to say, not the file's.
            if let Record::Role(r) = &mut record {
                r.builtin = matches!(existing, Some(Record::Role(o)) if o.builtin);
            }
            match existing {
                Some(old) if secrets_changed.is_empty() && same_content(old, &record) => {
                    unchanged += 1
                }
                Some(old) => {
                    if kind == Kind::Role && name == SUPERUSER_ROLE {
                        return Err(EngineError::Denied(
                            "the built-in Superuser role cannot be changed".into(),
                        ));
                    }
                    let mut meta = old.meta().clone();
                    meta.enabled = record.meta().enabled;
                    meta.revision += 1;
                    meta.updated_by = login.clone();
                    meta.updated_at = now;
                    *record.meta_mut() = meta;
                    let mut details = format!("revision {}", record.meta().revision);
                    let changed = crate::recordfile::field_changes(old, &record);
                    if !changed.is_empty() {
                        details.push_str(&format!("; {}", changed.join("; ")));
                    }
                    if !secrets_changed.is_empty() {
                        details.push_str(&format!(
                            "; secrets changed: {}",
                            secrets_changed.join(", ")
                        ));
                    }
                    events.push(NewAuditEvent::new(
                        &login,
                        &format!("{kind}.update"),
                        format!("{kind} {name}"),
                        details,
                    ));
                    changes.push(Change::Put(Box::new(record)));
                    updated.push(format!("{kind} {name}"));
                }
                None => {
                    let enabled = record.meta().enabled;
                    *record.meta_mut() = Meta {
                        id: self.store.next_id()?,
                        name: name.clone(),
                        enabled,
                        created_by: login.clone(),
                        created_at: now,
                        updated_by: login.clone(),
                        updated_at: now,
                        revision: 1,
                    };
                    let mut details = "revision 1".to_string();
                    if let Some(from) = cloned_from {
                        details.push_str(&format!("; cloned from {kind} {from}"));
                    }
                    if !secrets_changed.is_empty() {
                        details.push_str(&format!("; secrets set: {}", secrets_changed.join(", ")));
                    }
                    events.push(NewAuditEvent::new(
                        &login,
                        &format!("{kind}.create"),
                        format!("{kind} {name}"),
                        details,
                    ));
                    changes.push(Change::Put(Box::new(record)));
                    created.push(format!("{kind} {name}"));
                }
            }
        }
        if !changes.is_empty() {
            // One event per kind (the journal's): a large import is a
            // reload, not a flood.
            self.journal.commit(changes, events).await?;
        }
        Ok(Response::Imported {
            created,
            updated,
            unchanged,
        })
    }

    fn find_for_change(
        &self,
        who: &Principal<'_>,
        kind: Kind,
        name: &str,
        level: AccessLevel,
    ) -> Result<Record, EngineError> {
        let record = self
            .store
            .find(kind, name)?
            .ok_or_else(|| EngineError::NotFound {
                kind,
                name: name.to_string(),
            })?;
        let effect = match level {
            AccessLevel::Delete => Effect::Delete(&record),
            _ => Effect::Toggle(&record),
        };
        self.authorize(who, effect)?;
        Ok(record)
    }

    /// Copies a record under a new name, through the same checks as an import.
    pub(super) async fn clone_record(
        &self,
        who: &Principal<'_>,
        kind: Kind,
        from: &str,
        to: &str,
    ) -> Result<Response, EngineError> {
        match kind {
            Kind::Role if from == SUPERUSER_ROLE => {
                return Err(EngineError::Denied(
                    "the built-in Superuser role cannot be cloned".into(),
                ))
            }
            Kind::User => {
                return Err(EngineError::Denied(
                    "a user is an OS account and is not cloned; import a new one".into(),
                ))
            }
            Kind::Credential => {
                return Err(EngineError::Denied(
                    "credentials are not cloned: a secret lives in one place".into(),
                ))
            }
            _ => {}
        }
        if self.store.find(kind, to)?.is_some() {
            return Err(EngineError::Denied(format!(
                "a {kind} named '{to}' already exists"
            )));
        }
        let mut record = self
            .store
            .find(kind, from)?
            .ok_or_else(|| EngineError::NotFound {
                kind,
                name: from.to_string(),
            })?;
        *record.meta_mut() = Meta {
            name: to.to_string(),
            enabled: record.meta().enabled,
            ..Meta::default()
        };
        self.import_from(
            who,
            vec![ImportItem {
                record,
                secrets: PlainSecrets::default(),
                line: 0,
            }],
            Some(from),
        )
        .await
    }

    /// Deletes a record, unless another record names it.
    pub(super) async fn delete(
        &self,
        who: &Principal<'_>,
        kind: Kind,
        name: &str,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let record = self.find_for_change(who, kind, name, AccessLevel::Delete)?;
        if kind == Kind::User && name == "root" {
            return Err(EngineError::Denied(
                "the user 'root' always exists as a Superuser".into(),
            ));
        }
        let catalog = Catalog::load(self)?;
        let used_by = catalog.users_of(kind, name);
        if !used_by.is_empty() {
            return Err(EngineError::InUse {
                kind,
                name: name.to_string(),
                used_by,
            });
        }
        let login = &who.user.meta.name;
        let mut changes = vec![Change::Delete(kind, record.meta().id)];
        let mut events = vec![NewAuditEvent::new(
            login,
            &format!("{kind}.delete"),
            format!("{kind} {name}"),
            format!("revision {}", record.meta().revision),
        )];
        // Grants on the record go with it, so that a record made later
        // under the same name inherits no one's access.
        let roles = catalog.roles_without_grants_on(kind, name);
        for mut role in roles.iter().cloned() {
            role.meta.revision += 1;
            role.meta.updated_by = login.clone();
            role.meta.updated_at = crate::domain::Timestamp::now();
            events.push(NewAuditEvent::new(
                login,
                "role.update",
                format!("role {}", role.meta.name),
                format!("its access to {kind} {name} went with the deleted record"),
            ));
            changes.push(Change::Put(Box::new(Record::Role(role))));
        }
        self.journal.commit(changes, events).await?;
        Ok(Response::Done)
    }

    /// Enables or disables a record; disabling is always allowed, even in use.
    pub(super) async fn set_enabled(
        &self,
        who: &Principal<'_>,
        kind: Kind,
        name: &str,
        enabled: bool,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let mut record = self.find_for_change(who, kind, name, AccessLevel::Write)?;
        if kind == Kind::User && name == "root" && !enabled {
            return Err(EngineError::Denied(
                "the user 'root' cannot be disabled".into(),
            ));
        }
        if record.meta().enabled == enabled {
            return Ok(Response::Done);
        }
        let login = who.user.meta.name.clone();
        let meta = record.meta_mut();
        meta.enabled = enabled;
        meta.revision += 1;
        meta.updated_by = login.clone();
        meta.updated_at = Timestamp::now();
        let action = format!("{kind}.{}", if enabled { "enable" } else { "disable" });
        self.journal
            .commit(
                vec![Change::Put(Box::new(record))],
                vec![NewAuditEvent::new(
                    &login,
                    &action,
                    format!("{kind} {name}"),
                    "",
                )],
            )
            .await?;
        Ok(Response::Done)
    }
}
