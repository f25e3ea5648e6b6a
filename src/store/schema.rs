//! The schema version of the stored values and the migrations between them.

use super::{StoreError, StoreResult};
use std::path::Path;

/// The schema version this program writes.
///
/// 1: records, revisions, operations, output, requests, JIT grants, the audit chain.
/// 2: adds the operation indexes (by task, device and requester; open operations).
/// 3: output chunks move from the `output` tree to a file per operation.
/// 4: requests pin their chained tasks and may authorise a schedule.
pub const SCHEMA_VERSION: u32 = 4;

const VERSION_KEY: &[u8] = b"schema_version";

/// A step from one schema version to the next, run once on start.
/// It gets the database and the data directory it lives in.
type Migration = fn(&sled::Db, &Path) -> StoreResult<()>;

/// `MIGRATIONS[n]` takes a store from version n to n + 1. Version 0 is a
/// store from before values carried a version; it had no records to convert.
const MIGRATIONS: [Migration; 4] = [
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
];

/// Requests as schema version 3 stored them.
mod v3 {
    use crate::domain::{Decision, ExecutionRequest, Id, Pinned, RequestState, Timestamp};
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

/// The schema version a store's data is at.
pub fn version(db: &sled::Db) -> StoreResult<Option<u32>> {
    let meta = db.open_tree("meta")?;
    Ok(meta
        .get(VERSION_KEY)?
        .and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes)))
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
