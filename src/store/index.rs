//! Indexes over operations (schema version 2): by task, device and
//! requester, newest first, so a filtered history reads only matching
//! operations; and the set of operations that have not ended, so start-up
//! recovery and the Operations screen never walk the whole history.
//!
//! Both are written in the same transaction as the operation they index.

use super::{decode, Store, StoreResult};
use crate::domain::{Id, Operation};

/// Keys: field tag, name length (u32, big-endian), name, operation id (big-endian).
pub(super) const BY_TREE: &str = "operations_by";
/// Keys: operation id (big-endian) of each operation that has not ended.
pub(super) const OPEN_TREE: &str = "operations_open";

/// A field history can be narrowed by through the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpField {
    Task = 1,
    Device = 2,
    User = 3,
}

fn prefix(field: OpField, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + name.len() + 8);
    key.push(field as u8);
    key.extend((name.len() as u32).to_be_bytes());
    key.extend(name.as_bytes());
    key
}

fn by_key(field: OpField, name: &str, id: Id) -> Vec<u8> {
    let mut key = prefix(field, name);
    key.extend(id.key());
    key
}

/// One write to an index: its tree, the key, and the value (`None`: remove).
pub(super) type IndexWrite = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// The index writes that go with storing `op`.
pub(super) fn writes_for(op: &Operation) -> Vec<IndexWrite> {
    let mut writes: Vec<IndexWrite> = [
        (OpField::Task, op.task.as_str()),
        (OpField::Device, op.device.as_str()),
        (OpField::User, op.requested_by.as_str()),
    ]
    .into_iter()
    .map(|(field, name)| (BY_TREE, by_key(field, name, op.id), Some(Vec::new())))
    .collect();
    let open = (!op.state.is_final()).then(Vec::new);
    writes.push((OPEN_TREE, op.id.key().to_vec(), open));
    writes
}

/// Builds both indexes from the operations tree (the 1 → 2 migration).
pub(super) fn rebuild(db: &sled::Db) -> StoreResult<u64> {
    let operations = db.open_tree(super::OPERATIONS_TREE)?;
    let by = db.open_tree(BY_TREE)?;
    let open = db.open_tree(OPEN_TREE)?;
    by.clear()?;
    open.clear()?;
    let mut count = 0;
    for item in operations.iter() {
        let (_, value) = item?;
        let op: Operation = decode(super::OPERATIONS_TREE, &value)?;
        for (tree, key, value) in writes_for(&op) {
            let tree = if tree == BY_TREE { &by } else { &open };
            match value {
                Some(v) => tree.insert(key, v)?,
                None => tree.remove(key)?,
            };
        }
        count += 1;
    }
    Ok(count)
}

impl Store {
    /// Visits the ids of operations with `field == name`, newest first,
    /// below `before`, while `visit` says to go on.
    pub(super) fn visit_indexed(
        &self,
        field: OpField,
        name: &str,
        before: Option<Id>,
        mut visit: impl FnMut(Id) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let start = prefix(field, name);
        let end = match before {
            Some(id) => by_key(field, name, id),
            None => {
                let mut end = start.clone();
                end.extend([0xff; 8]);
                end.push(0xff);
                end
            }
        };
        let at = start.len();
        let range = super::kv::Range {
            from: start,
            to: Some(end),
            reverse: true,
            limit: None,
        };
        super::kv::scan(&*self.kv, BY_TREE, &range, |key, _| visit(id_at(key, at)))
    }

    /// Ids of the operations that have not ended, oldest first.
    pub(super) fn open_ids(&self) -> StoreResult<Vec<Id>> {
        let mut ids = Vec::new();
        super::kv::scan(&*self.kv, OPEN_TREE, &super::kv::Range::all(), |key, _| {
            ids.push(id_at(key, 0));
            Ok(true)
        })?;
        Ok(ids)
    }
}

fn id_at(key: &[u8], at: usize) -> Id {
    let bytes: [u8; 8] = key
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 8]);
    Id(u64::from_be_bytes(bytes))
}
