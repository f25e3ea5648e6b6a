//! Copying a whole store from one backend to another (`gatehouse store
//! copy`): how one jump host's embedded store becomes the shared database
//! of several, and back. Every tree is copied as it is stored (sealed
//! secrets stay sealed: the key file goes with the store), output through
//! the output API (files become rows and rows files), ids are moved past
//! the copied ones, and the audit chain is verified on arrival.

use super::{kv, Store, StoreError, StoreResult};

/// What a copy moved.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopySummary {
    pub trees: u64,
    pub entries: u64,
    pub operations_with_output: u64,
    pub chunks: u64,
    /// Audit events verified at the destination.
    pub audit_events: u64,
}

/// How many entries go in one batch.
const BATCH: usize = 500;

impl Store {
    /// Whether the store holds nothing yet but what opening it wrote (its
    /// schema version and key check).
    pub fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.kv.tree_names()?.iter().all(|t| t == super::META_TREE))
    }

    /// Copies everything in this store into `dst`, which must be empty;
    /// `progress` hears about each tree as it goes.
    pub fn copy_into(
        &self,
        dst: &Store,
        mut progress: impl FnMut(&str),
    ) -> StoreResult<CopySummary> {
        if !dst.is_empty()? {
            return Err(StoreError::Corrupt {
                tree: dst.describe(),
                message: "the destination already holds a store: copy into an empty one".into(),
            });
        }
        let mut summary = CopySummary::default();
        let all = kv::Range::all();
        for tree in self.kv.tree_names()? {
            if tree == super::output::CHUNKS_TREE
                || tree == super::OUTPUT_TREE
                || tree == super::recording::LINES_TREE
            {
                continue; // through the output and recording APIs below
            }
            let mut batch = Vec::with_capacity(BATCH);
            let mut copied = 0u64;
            kv::scan(&*self.kv, &tree, &all, |k, v| {
                batch.push(kv::Write::put(&tree, k.to_vec(), v.to_vec()));
                if batch.len() == BATCH {
                    dst.kv.apply(std::mem::take(&mut batch))?;
                }
                copied += 1;
                Ok(true)
            })?;
            dst.kv.apply(batch)?;
            progress(&format!("{tree}: {copied} entries"));
            summary.trees += 1;
            summary.entries += copied;
        }
        // Output, operation by operation.
        let mut ops = Vec::new();
        kv::scan(&*self.kv, super::OPERATIONS_TREE, &all, |k, _| {
            ops.push(crate::domain::Id::from_key(k).unwrap_or(crate::domain::Id(0)));
            Ok(true)
        })?;
        for op in ops {
            let mut from = 0;
            let mut writer: Option<super::OutputWriter> = None;
            loop {
                let chunks = self.output(op, from, 5000)?;
                let Some(last) = chunks.last().map(|c| c.seq) else {
                    break;
                };
                if writer.is_none() {
                    writer = Some(dst.output_writer(op)?);
                }
                if let Some(w) = writer.as_mut() {
                    for c in &chunks {
                        w.append(c)?;
                        summary.chunks += 1;
                    }
                }
                from = last + 1;
            }
            if let Some(w) = writer {
                w.sync()?;
                summary.operations_with_output += 1;
            }
        }
        progress(&format!(
            "output: {} chunks of {} operations",
            summary.chunks, summary.operations_with_output
        ));
        // Session recordings: files become rows and rows files.
        let mut sessions = Vec::new();
        kv::scan(&*self.kv, super::SESSIONS_TREE, &all, |k, _| {
            sessions.push(crate::domain::Id::from_key(k).unwrap_or(crate::domain::Id(0)));
            Ok(true)
        })?;
        let mut recordings = 0u64;
        for id in sessions {
            for track in [
                super::recording::Track::Output,
                super::recording::Track::Input,
            ] {
                if let Some(text) = self.recording(id, track)? {
                    dst.put_recording(id, track, &text)?;
                    recordings += 1;
                }
            }
        }
        progress(&format!("session recordings: {recordings}"));
        // No id handed out here is handed out there again.
        dst.kv.ids_above(self.kv.next_id()?)?;
        dst.kv.flush()?;
        summary.audit_events = match dst.verify_audit()? {
            Ok(n) => n,
            Err(broken) => {
                return Err(StoreError::Corrupt {
                    tree: "audit".into(),
                    message: format!("the copied audit chain does not verify: {broken}"),
                })
            }
        };
        let at_source = self.audit_len()?;
        if summary.audit_events != at_source {
            return Err(StoreError::Corrupt {
                tree: "audit".into(),
                message: format!(
                    "{} audit events arrived of the source's {at_source}",
                    summary.audit_events
                ),
            });
        }
        progress(&format!(
            "audit chain verified at the destination: {} events",
            summary.audit_events
        ));
        Ok(summary)
    }
}
