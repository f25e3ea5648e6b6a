//! The schema version of the stored values and the migrations between them.

use super::{StoreError, StoreResult};
use std::path::Path;

/// The schema version this program writes.
///
/// 1: records, revisions, operations, output, requests, JIT grants, the audit chain.
/// 2: adds the operation indexes (by task, device and requester; open operations).
/// 3: output chunks move from the `output` tree to a file per operation.
pub const SCHEMA_VERSION: u32 = 3;

const VERSION_KEY: &[u8] = b"schema_version";

/// A step from one schema version to the next, run once on start.
/// It gets the database and the data directory it lives in.
type Migration = fn(&sled::Db, &Path) -> StoreResult<()>;

/// `MIGRATIONS[n]` takes a store from version n to n + 1. Version 0 is a
/// store from before values carried a version; it had no records to convert.
const MIGRATIONS: [Migration; 3] = [
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
];

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
