//! Operations, their output, and when each schedule last fired.

use super::{decode, encode, OpField, Store, StoreResult};
use crate::domain::{ExecutionRequest, Id, JitGrant, Operation, OutputChunk, Timestamp};

impl Store {
    /// An operation by id.
    pub fn operation(&self, id: Id) -> StoreResult<Option<Operation>> {
        self.operations
            .get(id.key())?
            .map(|v| decode("operations", &v))
            .transpose()
    }

    /// Writes an operation's new state without flushing (output progress);
    /// decisions go through [`Store::commit`].
    pub fn put_operation_unflushed(&self, op: &Operation) -> StoreResult<()> {
        // Its index entries already exist (it was committed when created);
        // only whether it is still open can change here.
        self.operations.insert(op.id.key(), encode(op)?)?;
        for (tree, key, value) in super::index::writes_for(op) {
            if tree == super::index::OPEN_TREE {
                match value {
                    Some(v) => self.open_index.insert(key, v)?,
                    None => self.open_index.remove(key)?,
                };
            }
        }
        Ok(())
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
            for id in self.indexed_ids(field, name, before) {
                if let Some(op) = self.operation(id?)? {
                    if keep(&op) {
                        out.push(op);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
            }
            return Ok(out);
        }
        let iter = match before {
            Some(id) => self.operations.range(..id.key()),
            None => self.operations.iter(),
        };
        for item in iter.rev() {
            let (_, v) = item?;
            let op: Operation = decode("operations", &v)?;
            if keep(&op) {
                out.push(op);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
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
        for id in self.indexed_ids(field, name, None) {
            let id = id?;
            if id.0 <= after.0 {
                break;
            }
            if let Some(op) = self.operation(id)? {
                out.push(op);
            }
        }
        Ok(out)
    }

    /// Visits operations newest first while `visit` says to go on.
    pub fn visit_newest_first(&self, mut visit: impl FnMut(&Operation) -> bool) -> StoreResult<()> {
        for item in self.operations.iter().rev() {
            let (_, v) = item?;
            let op: Operation = decode("operations", &v)?;
            if !visit(&op) {
                break;
            }
        }
        Ok(())
    }

    /// Every operation that has not ended, oldest first (read through the
    /// index of open operations, not the whole history).
    pub fn unfinished_operations(&self) -> StoreResult<Vec<Operation>> {
        let mut out = Vec::new();
        for id in self.open_ids() {
            if let Some(op) = self.operation(id?)? {
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
        super::blocking(|| self.outputs.writer(op))
    }

    /// An operation's output chunks with `seq >= from`, at most `limit` and
    /// about 1 MiB (always one chunk, if there is one):
    /// read on from the last one's `seq + 1` until none come back.
    pub fn output(&self, op: Id, from: u64, limit: usize) -> StoreResult<Vec<OutputChunk>> {
        super::blocking(|| self.outputs.read(op, from, limit))
    }

    /// When a task's schedule last fired.
    pub fn schedule_mark(&self, task: &str) -> StoreResult<Option<Timestamp>> {
        let tree = self.db.open_tree("schedules")?;
        Ok(tree.get(task.as_bytes())?.and_then(|v| {
            v.as_ref()
                .try_into()
                .ok()
                .map(|b: [u8; 8]| Timestamp(i64::from_be_bytes(b)))
        }))
    }

    /// Records when a task's schedule fired.
    pub fn set_schedule_mark(&self, task: &str, at: Timestamp) -> StoreResult<()> {
        let tree = self.db.open_tree("schedules")?;
        tree.insert(task.as_bytes(), &at.0.to_be_bytes())?;
        Ok(())
    }

    /// The request that authorises a task's schedule, if one does.
    pub fn schedule_authority(&self, task: &str) -> StoreResult<Option<Id>> {
        let tree = self.db.open_tree("schedule_authority")?;
        Ok(tree.get(task.as_bytes())?.and_then(|v| {
            v.as_ref()
                .try_into()
                .ok()
                .map(|b: [u8; 8]| Id(u64::from_be_bytes(b)))
        }))
    }

    /// Makes `request` the authority of a task's schedule (`None`: no
    /// authority), flushed before it returns.
    pub async fn set_schedule_authority(&self, task: &str, request: Option<Id>) -> StoreResult<()> {
        let tree = self.db.open_tree("schedule_authority")?;
        match request {
            Some(id) => tree.insert(task.as_bytes(), &id.0.to_be_bytes())?,
            None => tree.remove(task.as_bytes())?,
        };
        self.flush().await
    }
}

impl Store {
    /// A request by id.
    /// The review of emergency request `id`, if it was reviewed.
    pub fn review(&self, id: Id) -> StoreResult<Option<crate::domain::EmergencyReview>> {
        self.db
            .open_tree(super::REVIEWS_TREE)?
            .get(id.key())?
            .map(|v| decode("reviews", &v))
            .transpose()
    }

    pub fn request(&self, id: Id) -> StoreResult<Option<ExecutionRequest>> {
        self.db
            .open_tree(super::REQUESTS_TREE)?
            .get(id.key())?
            .map(|v| decode("requests", &v))
            .transpose()
    }

    /// Requests newest first that pass `keep`, at most `limit`.
    pub fn requests_newest_first(
        &self,
        limit: usize,
        mut keep: impl FnMut(&ExecutionRequest) -> bool,
    ) -> StoreResult<Vec<ExecutionRequest>> {
        let mut out = Vec::new();
        for item in self.db.open_tree(super::REQUESTS_TREE)?.iter().rev() {
            let (_, v) = item?;
            let r: ExecutionRequest = decode("requests", &v)?;
            if keep(&r) {
                out.push(r);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Every JIT grant, oldest first.
    pub fn jit_grants(&self) -> StoreResult<Vec<JitGrant>> {
        self.db
            .open_tree(super::JIT_TREE)?
            .iter()
            .values()
            .map(|v| decode("jit", &v?))
            .collect()
    }

    /// Where a credential's secret stands (none: never changed by Gatehouse).
    pub fn secret_state(&self, credential: Id) -> StoreResult<Option<crate::domain::SecretState>> {
        self.db
            .open_tree(super::SECRETS_TREE)?
            .get(credential.key())?
            .map(|v| decode("secret_states", &v))
            .transpose()
    }

    /// Every credential's secret state.
    pub fn secret_states(&self) -> StoreResult<Vec<crate::domain::SecretState>> {
        self.db
            .open_tree(super::SECRETS_TREE)?
            .iter()
            .values()
            .map(|v| decode("secret_states", &v?))
            .collect()
    }

    /// One session.
    pub fn session(&self, id: Id) -> StoreResult<Option<crate::domain::SessionRecord>> {
        self.db
            .open_tree(super::SESSIONS_TREE)?
            .get(id.key())?
            .map(|v| decode("sessions", &v))
            .transpose()
    }

    /// Sessions newest first that `keep` accepts, at most `limit`.
    pub fn sessions_newest_first(
        &self,
        limit: usize,
        mut keep: impl FnMut(&crate::domain::SessionRecord) -> bool,
    ) -> StoreResult<Vec<crate::domain::SessionRecord>> {
        let mut out = Vec::new();
        for item in self.db.open_tree(super::SESSIONS_TREE)?.iter().rev() {
            let (_, v) = item?;
            let s: crate::domain::SessionRecord = decode("sessions", &v)?;
            if keep(&s) {
                out.push(s);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
