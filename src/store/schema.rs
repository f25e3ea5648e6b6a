//! The schema version of the stored values and the migrations between them.

use super::{StoreError, StoreResult};
use std::path::Path;

/// The schema version this program writes.
///
/// 1: records, revisions, operations, output, requests, JIT grants, the audit chain.
/// 2: adds the operation indexes (by task, device and requester; open operations).
/// 3: output chunks move from the `output` tree to a file per operation.
/// 4: requests pin their chained tasks and may authorise a schedule.
/// 5: devices pin several host keys, with algorithm options and a `via`;
///    environments have algorithm options, credentials a certificate and
///    rotation settings, templates an interpreter and a PTY, tasks
///    `idempotent`; secrets' lifecycles get their own tree.
/// 6: policies say what they cover (tasks, sessions, reveals) and may
///    choose credentials; a request may be for a reveal; sessions get
///    their own tree; roles may be held through OS groups.
/// 7: change freezes, a new kind of record in its own tree; reviews of
///    emergency runs in theirs; policies may require a comment with
///    every approval.
pub const SCHEMA_VERSION: u32 = 7;

const VERSION_KEY: &[u8] = b"schema_version";

/// A step from one schema version to the next, run once on start.
/// It gets the database and the data directory it lives in.
type Migration = fn(&sled::Db, &Path) -> StoreResult<()>;

/// `MIGRATIONS[n]` takes a store from version n to n + 1. Version 0 is a
/// store from before values carried a version; it had no records to convert.
const MIGRATIONS: [Migration; 7] = [
    |_db, _dir| Ok(()),
    |db, _dir| {
        let n = super::index::rebuild(db)?;
        tracing::info!(
            operations = n,
            "indexed operations by task, device and requester"
        );
        Ok(())
    },
    |db, dir| {
        let (operations, chunks) = super::output::move_from_tree(db, dir, super::OUTPUT_TREE)?;
        tracing::info!(
            operations,
            chunks,
            "moved output from the store to a file per operation"
        );
        Ok(())
    },
    |db, _dir| {
        let n = v3::upgrade_requests(db)?;
        tracing::info!(
            requests = n,
            "requests now pin chained tasks and may authorise schedules"
        );
        Ok(())
    },
    |db, _dir| {
        let n = v4::upgrade_records(db)?;
        tracing::info!(
            records = n,
            "devices pin several host keys; SSH options, via, certificates, interpreters"
        );
        Ok(())
    },
    |db, _dir| {
        let (policies, requests) = v5::upgrade(db)?;
        tracing::info!(
            policies,
            requests,
            "policies may cover credential reveals; requests may be reveals"
        );
        Ok(())
    },
    |db, _dir| {
        let n = v6::upgrade(db)?;
        tracing::info!(
            policies = n,
            "policies may require approval comments; freezes and reviews get their trees"
        );
        Ok(())
    },
];

/// Requests as schema version 3 stored them.
mod v3 {
    use super::v5::RequestV5;
    use crate::domain::{Decision, Id, Pinned, RequestState, Timestamp};
    use crate::store::codec::{decode, encode};
    use crate::store::StoreResult;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct PinnedV3 {
        task_revision: u32,
        template_id: Id,
        template_revision: u32,
        credential_revision: u32,
        devices: Vec<(String, u32)>,
    }

    #[derive(Deserialize)]
    struct RequestV3 {
        id: Id,
        task: String,
        devices: Vec<String>,
        variables: BTreeMap<String, String>,
        reason: Option<String>,
        justification: Option<String>,
        governance_id: Option<String>,
        requester: String,
        policy: Option<String>,
        window_start: Timestamp,
        window_end: Timestamp,
        state: RequestState,
        decisions: Vec<Decision>,
        pinned: PinnedV3,
        created_at: Timestamp,
        operations: Vec<Id>,
        void_reason: Option<String>,
    }

    /// Rewrites every stored request in the new layout, with no chained
    /// tasks pinned and no schedule. An old request of a task that has
    /// children is then stale at its next check (it cannot say what its
    /// children were) and must be made again.
    pub fn upgrade_requests(db: &sled::Db) -> StoreResult<usize> {
        let tree = db.open_tree(super::super::REQUESTS_TREE)?;
        let mut n = 0;
        for entry in tree.iter() {
            let (key, value) = entry?;
            let old: RequestV3 = decode("requests", &value)?;
            let new = RequestV5 {
                id: old.id,
                task: old.task,
                devices: old.devices,
                variables: old.variables,
                reason: old.reason,
                justification: old.justification,
                governance_id: old.governance_id,
                requester: old.requester,
                policy: old.policy,
                window_start: old.window_start,
                window_end: old.window_end,
                state: old.state,
                decisions: old.decisions,
                pinned: Pinned {
                    task_revision: old.pinned.task_revision,
                    template_id: old.pinned.template_id,
                    template_revision: old.pinned.template_revision,
                    credential_revision: old.pinned.credential_revision,
                    devices: old.pinned.devices,
                    children: Vec::new(),
                },
                created_at: old.created_at,
                operations: old.operations,
                void_reason: old.void_reason,
                schedule: None,
            };
            tree.insert(key, encode(&new)?)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Records as schema version 4 stored them: before devices pinned several
/// host keys and had algorithm options and a `via`, environments had
/// algorithm options, credentials a certificate and their rotation settings
/// (change and reconcile templates and logins, children, password policy,
/// maximum age), templates an interpreter and a PTY, and tasks `idempotent`.
mod v4 {
    use super::v5::PolicyV5;
    use crate::domain::{
        Credential, Device, Environment, ExecutionType, Executor, HostKey, Meta, Reason, Record,
        Role, Sealed, System, Task, Template, User, Variable,
    };
    use crate::store::codec::{decode, encode};
    use crate::store::StoreResult;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct EnvironmentV4 {
        meta: Meta,
    }

    #[derive(Deserialize)]
    struct DeviceV4 {
        meta: Meta,
        address: String,
        port: u16,
        product: String,
        tags: Vec<String>,
        environment: String,
        system: String,
        host_key: Option<HostKey>,
    }

    #[derive(Deserialize)]
    struct CredentialV4 {
        meta: Meta,
        username: String,
        device: Option<String>,
        password: Option<Sealed>,
        private_key: Option<Sealed>,
        passphrase: Option<Sealed>,
        jit_grant_template: Option<String>,
        jit_revoke_template: Option<String>,
    }

    #[derive(Deserialize)]
    struct TemplateV4 {
        meta: Meta,
        description: String,
        executor: Executor,
        execution_type: ExecutionType,
        content: String,
        variables: Vec<Variable>,
    }

    #[derive(Deserialize)]
    struct TaskV4 {
        meta: Meta,
        description: String,
        template: String,
        environment: String,
        system: String,
        devices: Vec<String>,
        credential: String,
        variables: BTreeMap<String, String>,
        schedule: Option<String>,
        timeout_secs: u64,
        retries: u32,
        retry_on_failure: bool,
        parallelism: u32,
        children: Vec<String>,
    }

    /// The record enum in version 4, variant for variant.
    #[derive(Deserialize)]
    enum RecordV4 {
        Environment(EnvironmentV4),
        System(System),
        Device(DeviceV4),
        Credential(CredentialV4),
        Reason(Reason),
        Template(TemplateV4),
        Task(TaskV4),
        User(User),
        Role(Role),
        Policy(PolicyV5),
    }

    fn template(t: TemplateV4) -> Template {
        Template {
            meta: t.meta,
            description: t.description,
            executor: t.executor,
            execution_type: t.execution_type,
            content: t.content,
            variables: t.variables,
            interpreter: String::new(),
            pty: false,
        }
    }

    fn upgrade(old: RecordV4) -> Record {
        match old {
            RecordV4::Environment(e) => Record::Environment(Environment {
                meta: e.meta,
                ..Environment::default()
            }),
            RecordV4::System(s) => Record::System(s),
            RecordV4::Device(d) => Record::Device(Device {
                meta: d.meta,
                address: d.address,
                port: d.port,
                product: d.product,
                tags: d.tags,
                environment: d.environment,
                system: d.system,
                host_keys: d.host_key.into_iter().collect(),
                ssh_options: Default::default(),
                via: None,
            }),
            RecordV4::Credential(c) => Record::Credential(Credential {
                meta: c.meta,
                username: c.username,
                device: c.device,
                password: c.password,
                private_key: c.private_key,
                passphrase: c.passphrase,
                certificate: None,
                jit_grant_template: c.jit_grant_template,
                jit_revoke_template: c.jit_revoke_template,
                ..Credential::default()
            }),
            RecordV4::Reason(r) => Record::Reason(r),
            RecordV4::Template(t) => Record::Template(template(t)),
            RecordV4::Task(t) => Record::Task(Task {
                meta: t.meta,
                description: t.description,
                template: t.template,
                environment: t.environment,
                system: t.system,
                devices: t.devices,
                credential: t.credential,
                variables: t.variables,
                schedule: t.schedule,
                timeout_secs: t.timeout_secs,
                retries: t.retries,
                retry_on_failure: t.retry_on_failure,
                idempotent: false,
                parallelism: t.parallelism,
                children: t.children,
            }),
            RecordV4::User(u) => Record::User(u),
            RecordV4::Role(r) => Record::Role(r),
            RecordV4::Policy(p) => Record::Policy(p.into()),
        }
    }

    /// Rewrites the records of the changed kinds, and every template
    /// revision, in the new layout; revisions keep their numbers, so
    /// requests that pinned them still match.
    pub fn upgrade_records(db: &sled::Db) -> StoreResult<usize> {
        let mut n = 0;
        for tree in ["environment", "device", "credential", "template", "task"] {
            let tree = db.open_tree(tree)?;
            for entry in tree.iter() {
                let (key, value) = entry?;
                let old: RecordV4 = decode("records", &value)?;
                tree.insert(key, encode(&upgrade(old))?)?;
                n += 1;
            }
        }
        let revisions = db.open_tree(super::super::REVISIONS_TREE)?;
        for entry in revisions.iter() {
            let (key, value) = entry?;
            let old: TemplateV4 = decode("template_revisions", &value)?;
            revisions.insert(key, encode(&template(old))?)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Policies and requests as schema version 5 stored them: before a policy
/// could name the credentials whose reveals it covers, and before a request
/// could be for a reveal.
mod v5 {
    use crate::domain::{
        Approver, Credential, Decision, Device, Environment, ExecutionRequest, Id, Meta, Pinned,
        Policy, Reason, Record, RequestState, Role, System, Task, Template, Timestamp, User,
        Window,
    };
    use crate::store::codec::{decode, encode};
    use crate::store::StoreResult;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    pub struct RoleV5 {
        meta: Meta,
        description: String,
        builtin: bool,
        grants: Vec<crate::domain::Grant>,
        resources: Vec<crate::domain::ResourceGrant>,
    }

    impl From<RoleV5> for Role {
        fn from(r: RoleV5) -> Role {
            Role {
                meta: r.meta,
                description: r.description,
                builtin: r.builtin,
                grants: r.grants,
                resources: r.resources,
                os_groups: Vec::new(),
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct PolicyV5 {
        meta: Meta,
        description: String,
        requires_justification: bool,
        requires_governance_id: bool,
        requires_approval: bool,
        requires_mfa: bool,
        requires_reason: bool,
        emergency_access: bool,
        devices: Vec<String>,
        environments: Vec<String>,
        systems: Vec<String>,
        users: Vec<String>,
        approvers: Vec<Approver>,
        windows: Vec<Window>,
    }

    impl From<PolicyV5> for Policy {
        fn from(p: PolicyV5) -> Policy {
            Policy {
                meta: p.meta,
                description: p.description,
                requires_justification: p.requires_justification,
                requires_governance_id: p.requires_governance_id,
                requires_approval: p.requires_approval,
                requires_mfa: p.requires_mfa,
                requires_reason: p.requires_reason,
                emergency_access: p.emergency_access,
                devices: p.devices,
                environments: p.environments,
                systems: p.systems,
                users: p.users,
                approvers: p.approvers,
                windows: p.windows,
                covers: Default::default(),
                credentials: Vec::new(),
                requires_change: false,
                deny_commands: Vec::new(),
                products: Vec::new(),
                device_tags: Vec::new(),
                usernames: Vec::new(),
                timezone: None,
                requires_approval_comment: false,
            }
        }
    }

    impl From<PolicyV5> for super::v6::PolicyV6 {
        /// Version 5's policy as version 6 stored it.
        fn from(p: PolicyV5) -> super::v6::PolicyV6 {
            super::v6::PolicyV6::of(Policy::from(p))
        }
    }

    /// The record enum in version 5, variant for variant: only policies
    /// are read, the others hold their variant's place.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum RecordV5 {
        Environment(Environment),
        System(System),
        Device(Device),
        Credential(Credential),
        Reason(Reason),
        Template(Template),
        Task(Task),
        User(User),
        Role(RoleV5),
        Policy(PolicyV5),
    }

    #[derive(Serialize, Deserialize)]
    pub struct RequestV5 {
        pub id: Id,
        pub task: String,
        pub devices: Vec<String>,
        pub variables: BTreeMap<String, String>,
        pub reason: Option<String>,
        pub justification: Option<String>,
        pub governance_id: Option<String>,
        pub requester: String,
        pub policy: Option<String>,
        pub window_start: Timestamp,
        pub window_end: Timestamp,
        pub state: RequestState,
        pub decisions: Vec<Decision>,
        pub pinned: Pinned,
        pub created_at: Timestamp,
        pub operations: Vec<Id>,
        pub void_reason: Option<String>,
        pub schedule: Option<String>,
    }

    /// Rewrites every policy (naming no credentials) and every request (a
    /// task's, none a reveal) in the new layout.
    pub fn upgrade(db: &sled::Db) -> StoreResult<(usize, usize)> {
        let mut np = 0;
        for name in ["policy", "role"] {
            let tree = db.open_tree(name)?;
            for entry in tree.iter() {
                let (key, value) = entry?;
                // Written as version 6 stored them: the step to 7 reads that.
                let new = match decode::<RecordV5>("records", &value)? {
                    RecordV5::Policy(old) => encode(&super::v6::RecordV6::Policy(old.into()))?,
                    RecordV5::Role(old) => encode(&Record::Role(old.into()))?,
                    _ => continue,
                };
                tree.insert(key, new)?;
                np += 1;
            }
        }
        let requests = db.open_tree(super::super::REQUESTS_TREE)?;
        let mut nr = 0;
        for entry in requests.iter() {
            let (key, value) = entry?;
            let old: RequestV5 = decode("requests", &value)?;
            let new = ExecutionRequest {
                id: old.id,
                task: old.task,
                devices: old.devices,
                variables: old.variables,
                reason: old.reason,
                justification: old.justification,
                governance_id: old.governance_id,
                requester: old.requester,
                policy: old.policy,
                window_start: old.window_start,
                window_end: old.window_end,
                state: old.state,
                decisions: old.decisions,
                pinned: old.pinned,
                created_at: old.created_at,
                operations: old.operations,
                void_reason: old.void_reason,
                schedule: old.schedule,
                kind: crate::domain::RequestKind::Task,
                change: None,
            };
            requests.insert(key, encode(&new)?)?;
            nr += 1;
        }
        Ok((np, nr))
    }
}

/// Version 6's policies (before `requires_approval_comment`).
mod v6 {
    use crate::domain::{
        Approver, Covers, Credential, Device, Environment, Meta, Policy, Reason, Record, Role,
        System, Task, Template, User, Window,
    };
    use crate::store::codec::{decode, encode};
    use crate::store::StoreResult;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct PolicyV6 {
        meta: Meta,
        description: String,
        requires_justification: bool,
        requires_governance_id: bool,
        requires_approval: bool,
        requires_mfa: bool,
        requires_reason: bool,
        emergency_access: bool,
        devices: Vec<String>,
        environments: Vec<String>,
        systems: Vec<String>,
        users: Vec<String>,
        approvers: Vec<Approver>,
        windows: Vec<Window>,
        covers: Covers,
        credentials: Vec<String>,
        requires_change: bool,
        deny_commands: Vec<String>,
        products: Vec<String>,
        device_tags: Vec<String>,
        usernames: Vec<String>,
        timezone: Option<String>,
    }

    impl PolicyV6 {
        /// A current policy as version 6 stored it (the new field dropped:
        /// only the step from version 5 writes these, with its default).
        pub fn of(p: Policy) -> PolicyV6 {
            PolicyV6 {
                meta: p.meta,
                description: p.description,
                requires_justification: p.requires_justification,
                requires_governance_id: p.requires_governance_id,
                requires_approval: p.requires_approval,
                requires_mfa: p.requires_mfa,
                requires_reason: p.requires_reason,
                emergency_access: p.emergency_access,
                devices: p.devices,
                environments: p.environments,
                systems: p.systems,
                users: p.users,
                approvers: p.approvers,
                windows: p.windows,
                covers: p.covers,
                credentials: p.credentials,
                requires_change: p.requires_change,
                deny_commands: p.deny_commands,
                products: p.products,
                device_tags: p.device_tags,
                usernames: p.usernames,
                timezone: p.timezone,
            }
        }
    }

    impl From<PolicyV6> for Policy {
        fn from(p: PolicyV6) -> Policy {
            Policy {
                meta: p.meta,
                description: p.description,
                requires_justification: p.requires_justification,
                requires_governance_id: p.requires_governance_id,
                requires_approval: p.requires_approval,
                requires_mfa: p.requires_mfa,
                requires_reason: p.requires_reason,
                emergency_access: p.emergency_access,
                devices: p.devices,
                environments: p.environments,
                systems: p.systems,
                users: p.users,
                approvers: p.approvers,
                windows: p.windows,
                covers: p.covers,
                credentials: p.credentials,
                requires_change: p.requires_change,
                deny_commands: p.deny_commands,
                products: p.products,
                device_tags: p.device_tags,
                usernames: p.usernames,
                timezone: p.timezone,
                requires_approval_comment: false,
            }
        }
    }

    /// The record enum in version 6, variant for variant (no freezes yet).
    #[derive(Serialize, Deserialize)]
    #[allow(dead_code)]
    pub enum RecordV6 {
        Environment(Environment),
        System(System),
        Device(Device),
        Credential(Credential),
        Reason(Reason),
        Template(Template),
        Task(Task),
        User(User),
        Role(Role),
        Policy(PolicyV6),
    }

    /// Rewrites every policy in the new layout (no comment required).
    pub fn upgrade(db: &sled::Db) -> StoreResult<usize> {
        let tree = db.open_tree("policy")?;
        let mut n = 0;
        for entry in tree.iter() {
            let (key, value) = entry?;
            if let RecordV6::Policy(old) = decode::<RecordV6>("records", &value)? {
                tree.insert(key, encode(&Record::Policy(old.into()))?)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The schema version a sled store's data is at (the migrations' tests).
#[cfg(test)]
fn version(db: &sled::Db) -> StoreResult<Option<u32>> {
    let meta = db.open_tree("meta")?;
    Ok(meta
        .get(VERSION_KEY)?
        .and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes)))
}

/// The schema version a store's data is at, through its backend.
pub fn version_in(kv: &dyn super::kv::Backend) -> StoreResult<Option<u32>> {
    Ok(kv
        .get("meta", VERSION_KEY)?
        .and_then(|v| v.as_slice().try_into().ok().map(u32::from_be_bytes)))
}

/// A shared store (PostgreSQL) at start: an empty one is made at
/// [`SCHEMA_VERSION`]; one of a newer program is refused. Shared stores
/// begin at version 7 (they are made new, or copied from a migrated sled
/// store), so there is nothing older to migrate yet.
pub fn check_shared(kv: &dyn super::kv::Backend) -> StoreResult<()> {
    match version_in(kv)? {
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        }),
        Some(found) if found < SCHEMA_VERSION => Err(StoreError::Postgres(format!(
            "the shared store is at schema version {found}, older than this program's \
             {SCHEMA_VERSION}, and shared stores are not migrated in place yet"
        ))),
        Some(_) => Ok(()),
        None => {
            let holds = kv.tree_names()?;
            if holds.iter().any(|t| t != "meta") {
                return Err(StoreError::Corrupt {
                    tree: "meta".into(),
                    message: format!(
                        "the database holds Gatehouse data ({}) but no schema version",
                        holds.join(", ")
                    ),
                });
            }
            kv.apply(vec![super::kv::Write::put(
                "meta",
                VERSION_KEY,
                SCHEMA_VERSION.to_be_bytes(),
            )])
        }
    }
}

/// Brings a store to [`SCHEMA_VERSION`], or refuses one written by a newer program.
pub fn migrate(db: &sled::Db, dir: &Path) -> StoreResult<()> {
    let meta = db.open_tree("meta")?;
    let found = match meta.get(VERSION_KEY)? {
        Some(v) => u32::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            tree: "meta".into(),
            message: "schema version is not 4 bytes".into(),
        })?),
        None if db.tree_names().len() <= 2 => SCHEMA_VERSION, // a new, empty store
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for version in found..SCHEMA_VERSION {
        tracing::info!(from = version, to = version + 1, "migrating the store");
        MIGRATIONS[version as usize](db, dir)?;
        meta.insert(VERSION_KEY, &(version + 1).to_be_bytes())?;
    }
    meta.insert(VERSION_KEY, &SCHEMA_VERSION.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExecutionRequest, Record};
    use crate::store::codec::decode;

    /// The bytes schema version 5 wrote for a policy and a request (the
    /// golden samples of that version, kept as fixtures), migrated: every
    /// field kept, no credentials named, no reveal.
    #[test]
    fn version_5_policies_and_requests_are_migrated() {
        let bytes = |text: &str| hex::decode(text.trim()).unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let dir = tempfile::tempdir().unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(VERSION_KEY, &5u32.to_be_bytes())
            .unwrap();
        db.open_tree("policy")
            .unwrap()
            .insert(
                1u64.to_be_bytes(),
                bytes(include_str!("../../tests/fixtures/schema-v5/policy.hex")),
            )
            .unwrap();
        db.open_tree(super::super::REQUESTS_TREE)
            .unwrap()
            .insert(
                11u64.to_be_bytes(),
                bytes(include_str!("../../tests/fixtures/schema-v5/request.hex")),
            )
            .unwrap();
        // Positive control: the new layout does not read the old bytes.
        assert!(decode::<ExecutionRequest>(
            "requests",
            &bytes(include_str!("../../tests/fixtures/schema-v5/request.hex"))
        )
        .is_err());

        migrate(&db, dir.path()).unwrap();

        let value = db.open_tree("policy").unwrap().get(1u64.to_be_bytes());
        let Record::Policy(p) = decode("policy", &value.unwrap().unwrap()).unwrap() else {
            panic!("not a policy");
        };
        assert_eq!(p.meta.name, "prod");
        assert_eq!(p.users, vec!["alice".to_string()]);
        assert_eq!(p.approvers[0].user, "bob");
        assert_eq!(p.windows[0].to_minute, 1080);
        assert!(p.credentials.is_empty());
        assert_eq!(p.covers, crate::domain::Covers::default());
        assert!(p.covers.tasks && !p.covers.sessions && !p.covers.reveals);
        let value = db
            .open_tree(super::super::REQUESTS_TREE)
            .unwrap()
            .get(11u64.to_be_bytes());
        let r: ExecutionRequest = decode("requests", &value.unwrap().unwrap()).unwrap();
        assert_eq!(r.task, "restart-web");
        assert_eq!(r.schedule.as_deref(), Some("0 3 * * *"));
        assert_eq!(r.pinned.children[0].task, "after");
        assert_eq!(r.kind, crate::domain::RequestKind::Task);
        assert_eq!(version(&db).unwrap(), Some(SCHEMA_VERSION));
    }

    /// The bytes schema version 6 wrote for a policy (its golden sample),
    /// migrated: every field kept, no approval comment required.
    #[test]
    fn version_6_policies_are_migrated() {
        let bytes =
            hex::decode(include_str!("../../tests/fixtures/schema-v6/policy.hex").trim()).unwrap();
        // Positive control: the new layout does not read the old bytes.
        assert!(decode::<Record>("policy", &bytes).is_err());
        let db = sled::Config::new().temporary(true).open().unwrap();
        let dir = tempfile::tempdir().unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(VERSION_KEY, &6u32.to_be_bytes())
            .unwrap();
        db.open_tree("policy")
            .unwrap()
            .insert(7u64.to_be_bytes(), bytes)
            .unwrap();
        migrate(&db, dir.path()).unwrap();
        let value = db.open_tree("policy").unwrap().get(7u64.to_be_bytes());
        let Record::Policy(p) = decode("policy", &value.unwrap().unwrap()).unwrap() else {
            panic!("not a policy");
        };
        assert_eq!(p.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(p.usernames, vec!["svc-*".to_string()]);
        assert_eq!(p.device_tags, vec!["pci".to_string()]);
        assert!(!p.requires_approval_comment);
        assert_eq!(version(&db).unwrap(), Some(SCHEMA_VERSION));
    }
}
