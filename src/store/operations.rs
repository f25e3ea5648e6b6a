//! Operations, their output, and when each schedule last fired.

use super::{decode, encode, OpField, Store, StoreResult};
use crate::domain::{ExecutionRequest, Id, JitGrant, Operation, OutputChunk, Timestamp};

use super::kv::{Range, Write};

/// How many index entries a narrowed history reads at a time.
const INDEX_PAGE: usize = 256;

impl Store {
    /// An operation by id.
    pub fn operation(&self, id: Id) -> StoreResult<Option<Operation>> {
        self.value(super::OPERATIONS_TREE, &id.key())
    }

    /// Writes an operation's new state without flushing (output progress);
    /// decisions go through [`Store::commit`].
    pub fn put_operation_unflushed(&self, op: &Operation) -> StoreResult<()> {
        // Its index entries already exist (it was committed when created);
        // only whether it is still open can change here.
        let mut writes = vec![Write::put(super::OPERATIONS_TREE, op.id.key(), encode(op)?)];
        for (tree, key, value) in super::index::writes_for(op) {
            if tree == super::index::OPEN_TREE {
                writes.push(match value {
                    Some(v) => Write::put(tree, key, v),
                    None => Write::delete(tree, key),
                });
            }
        }
        self.kv.apply_lazy(writes)
    }

    /// Operations newest first that pass `keep`, at most `limit`, starting
    /// below `before` when given (for paging back through history). With
    /// `narrow`, only operations whose field has that value are read, through
    /// the index; `keep` still decides.
    pub fn operations_newest_first(
        &self,
        before: Option<Id>,
        limit: usize,
        narrow: Option<(OpField, &str)>,
        mut keep: impl FnMut(&Operation) -> bool,
    ) -> StoreResult<Vec<Operation>> {
        let mut out = Vec::new();
        if let Some((field, name)) = narrow {
            // Ids from the index a page at a time, their operations read together.
            let mut below = before;
            loop {
                let ids = self.indexed_page(field, name, below)?;
                let Some(last) = ids.last().copied() else {
                    return Ok(out);
                };
                for op in self.operations_by_ids(&ids)? {
                    if keep(&op) {
                        out.push(op);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
                if ids.len() < INDEX_PAGE {
                    return Ok(out);
                }
                below = Some(last);
            }
        }
        let range = Range {
            to: before.map(|id| id.key().to_vec()),
            ..Range::all()
        };
        self.newest_first(super::OPERATIONS_TREE, range, limit, keep)
    }

    /// The operations whose `field` is `name` and whose id is above
    /// `after`, newest first: only those are read, through the index.
    pub fn indexed_after(
        &self,
        field: OpField,
        name: &str,
        after: Id,
    ) -> StoreResult<Vec<Operation>> {
        let mut out = Vec::new();
        let mut below = None;
        loop {
            let ids: Vec<Id> = self
                .indexed_page(field, name, below)?
                .into_iter()
                .take_while(|id| id.0 > after.0)
                .collect();
            let Some(last) = ids.last().copied() else {
                return Ok(out);
            };
            out.extend(self.operations_by_ids(&ids)?);
            if ids.len() < INDEX_PAGE {
                return Ok(out);
            }
            below = Some(last);
        }
    }

    /// Up to a page of ids whose `field` is `name`, newest first, below `below`.
    fn indexed_page(&self, field: OpField, name: &str, below: Option<Id>) -> StoreResult<Vec<Id>> {
        let mut ids = Vec::with_capacity(INDEX_PAGE);
        self.visit_indexed(field, name, below, |id| {
            ids.push(id);
            Ok(ids.len() < INDEX_PAGE)
        })?;
        Ok(ids)
    }

    /// The operations with these ids, in their order (missing ones left out).
    fn operations_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<Operation>> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.key().to_vec()).collect();
        self.kv
            .get_many(super::OPERATIONS_TREE, &keys)?
            .into_iter()
            .flatten()
            .map(|v| decode("operations", &v))
            .collect()
    }

    /// Visits operations newest first while `visit` says to go on.
    pub fn visit_newest_first(&self, mut visit: impl FnMut(&Operation) -> bool) -> StoreResult<()> {
        super::kv::scan(
            &*self.kv,
            super::OPERATIONS_TREE,
            &Range::all().reversed(),
            |_, v| {
                let op: Operation = decode("operations", v)?;
                Ok(visit(&op))
            },
        )
    }

    /// Every operation that has not ended, oldest first (read through the
    /// index of open operations, not the whole history).
    pub fn unfinished_operations(&self) -> StoreResult<Vec<Operation>> {
        let mut out = Vec::new();
        for id in self.open_ids()? {
            if let Some(op) = self.operation(id)? {
                if !op.state.is_final() {
                    out.push(op);
                }
            }
        }
        Ok(out)
    }

    /// Opens an operation's output for appending chunks; see
    /// [`super::OutputWriter`].
    pub fn output_writer(&self, op: Id) -> StoreResult<super::OutputWriter> {
        super::blocking(|| self.outputs.writer(&self.kv, op))
    }

    /// An operation's output chunks with `seq >= from`, at most `limit` and
    /// about 1 MiB (always one chunk, if there is one):
    /// read on from the last one's `seq + 1` until none come back.
    pub fn output(&self, op: Id, from: u64, limit: usize) -> StoreResult<Vec<OutputChunk>> {
        super::blocking(|| self.outputs.read(&*self.kv, op, from, limit))
    }

    /// When a task's schedule last fired.
    pub fn schedule_mark(&self, task: &str) -> StoreResult<Option<Timestamp>> {
        Ok(self.kv.get("schedules", task.as_bytes())?.and_then(|v| {
            v.as_slice()
                .try_into()
                .ok()
                .map(|b: [u8; 8]| Timestamp(i64::from_be_bytes(b)))
        }))
    }

    /// The request that authorises a task's schedule, if one does.
    pub fn schedule_authority(&self, task: &str) -> StoreResult<Option<Id>> {
        Ok(self
            .kv
            .get("schedule_authority", task.as_bytes())?
            .and_then(|v| {
                v.as_slice()
                    .try_into()
                    .ok()
                    .map(|b: [u8; 8]| Id(u64::from_be_bytes(b)))
            }))
    }

    /// Makes `request` the authority of a task's schedule (`None`: no
    /// authority), flushed before it returns.
    pub async fn set_schedule_authority(&self, task: &str, request: Option<Id>) -> StoreResult<()> {
        self.kv.apply(vec![match request {
            Some(id) => Write::put("schedule_authority", task.as_bytes(), id.0.to_be_bytes()),
            None => Write::delete("schedule_authority", task.as_bytes()),
        }])
    }
}

impl Store {
    /// The review of emergency request `id`, if it was reviewed.
    pub fn review(&self, id: Id) -> StoreResult<Option<crate::domain::EmergencyReview>> {
        self.value(super::REVIEWS_TREE, &id.key())
    }

    /// A request by id.
    pub fn request(&self, id: Id) -> StoreResult<Option<ExecutionRequest>> {
        self.value(super::REQUESTS_TREE, &id.key())
    }

    /// Requests newest first that pass `keep`, at most `limit`.
    pub fn requests_newest_first(
        &self,
        limit: usize,
        keep: impl FnMut(&ExecutionRequest) -> bool,
    ) -> StoreResult<Vec<ExecutionRequest>> {
        self.newest_first(super::REQUESTS_TREE, Range::all(), limit, keep)
    }
}

impl Store {
    /// Every JIT grant, oldest first.
    pub fn jit_grants(&self) -> StoreResult<Vec<JitGrant>> {
        self.values(super::JIT_TREE)
    }

    /// Where a credential's secret stands (none: never changed by Gatehouse).
    pub fn secret_state(&self, credential: Id) -> StoreResult<Option<crate::domain::SecretState>> {
        self.value(super::SECRETS_TREE, &credential.key())
    }

    /// Every credential's secret state.
    pub fn secret_states(&self) -> StoreResult<Vec<crate::domain::SecretState>> {
        self.values(super::SECRETS_TREE)
    }

    /// One session.
    pub fn session(&self, id: Id) -> StoreResult<Option<crate::domain::SessionRecord>> {
        self.value(super::SESSIONS_TREE, &id.key())
    }

    /// Sessions newest first that `keep` accepts, at most `limit`.
    pub fn sessions_newest_first(
        &self,
        limit: usize,
        keep: impl FnMut(&crate::domain::SessionRecord) -> bool,
    ) -> StoreResult<Vec<crate::domain::SessionRecord>> {
        self.newest_first(super::SESSIONS_TREE, Range::all(), limit, keep)
    }
}
