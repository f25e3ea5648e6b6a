//! Where each forwarding target stands in the audit log: the sequence
//! number of the last event it has taken. Kept in the store so that a
//! collector that was down, or a server restart, resumes from there.

use super::{Store, StoreResult};

const FORWARD_TREE: &str = "forward";

impl Store {
    /// The last audit sequence number target `name` has taken (0: none).
    pub fn forward_cursor(&self, name: &str) -> StoreResult<u64> {
        Ok(self
            .kv
            .get(FORWARD_TREE, name.as_bytes())?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Records that target `name` has taken every event up to `seq`. Not
    /// flushed: after a crash a target may get a few events twice, never none.
    pub fn set_forward_cursor(&self, name: &str, seq: u64) -> StoreResult<()> {
        self.kv.apply_lazy(vec![super::kv::Write::put(
            FORWARD_TREE,
            name.as_bytes(),
            seq.to_be_bytes(),
        )])
    }
}
