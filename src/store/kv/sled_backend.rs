//! The embedded backend: sled, in the data directory, opened by one
//! process at a time (sled locks its files).

use super::{Appender, Backend, Entry, Range, Write};
use crate::store::{StoreError, StoreResult};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::sync::Mutex;

pub struct Sled {
    db: sled::Db,
    /// Appends take turns (one process holds the files: a mutex is the
    /// whole lock).
    append: Mutex<()>,
    /// Transactions and flushes take turns: sled 0.34 can deadlock when a
    /// transaction waits for readers while a concurrent flush waits for
    /// its log flusher.
    gate: Mutex<()>,
}

impl Sled {
    pub fn new(db: sled::Db) -> Sled {
        Sled {
            db,
            append: Mutex::new(()),
            gate: Mutex::new(()),
        }
    }

    /// The sled database underneath (the migrations of older layouts read it).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn apply_unlocked(&self, writes: &[Write]) -> StoreResult<()> {
        match writes {
            [] => return Ok(()),
            // One write is atomic by itself, without a transaction.
            [Write::Put { tree, key, value }] => {
                self.db
                    .open_tree(tree)?
                    .insert(key.as_slice(), value.as_slice())?;
                return Ok(());
            }
            [Write::Delete { tree, key }] => {
                self.db.open_tree(tree)?.remove(key.as_slice())?;
                return Ok(());
            }
            _ => {}
        }
        let mut names: Vec<&str> = writes.iter().map(Write::tree).collect();
        names.sort_unstable();
        names.dedup();
        let trees: Vec<sled::Tree> = names
            .iter()
            .map(|n| self.db.open_tree(n))
            .collect::<Result<_, _>>()?;
        // The closure may run more than once: it only writes what was
        // prepared before it.
        let result: Result<(), TransactionError<()>> = trees.as_slice().transaction(|tx| {
            for w in writes {
                let at = names.iter().position(|n| *n == w.tree()).unwrap_or(0);
                match w {
                    Write::Put { key, value, .. } => {
                        tx[at].insert(key.as_slice(), value.as_slice())?;
                    }
                    Write::Delete { key, .. } => {
                        tx[at].remove(key.as_slice())?;
                    }
                }
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(TransactionError::Abort(())) => {
                Err(StoreError::Encode("transaction aborted".into()))
            }
        }
    }
}

impl Backend for Sled {
    fn get(&self, tree: &str, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.db.open_tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    fn range(&self, tree: &str, range: &Range) -> StoreResult<Vec<Entry>> {
        let tree = self.db.open_tree(tree)?;
        let iter = match &range.to {
            Some(to) => tree.range(range.from.as_slice()..to.as_slice()),
            None => tree.range(range.from.as_slice()..),
        };
        let limit = range.limit.unwrap_or(usize::MAX);
        let pair = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(StoreError::from)
        };
        if range.reverse {
            iter.rev().take(limit).map(pair).collect()
        } else {
            iter.take(limit).map(pair).collect()
        }
    }

    fn apply(&self, writes: Vec<Write>) -> StoreResult<()> {
        crate::store::blocking(|| {
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.apply_unlocked(&writes)?;
            self.db.flush()?;
            Ok(())
        })
    }

    fn apply_lazy(&self, writes: Vec<Write>) -> StoreResult<()> {
        crate::store::blocking(|| {
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.apply_unlocked(&writes)
        })
    }

    fn append_locked(&self, tree: &str, append: &mut Appender<'_>) -> StoreResult<()> {
        crate::store::blocking(|| {
            let _turn = self.append.lock().unwrap_or_else(|p| p.into_inner());
            let last = self
                .db
                .open_tree(tree)?
                .last()?
                .map(|(k, v)| (k.to_vec(), v.to_vec()));
            let writes = append(last)?;
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.apply_unlocked(&writes)?;
            self.db.flush()?;
            Ok(())
        })
    }

    fn update_locked(&self, tree: &str, key: &[u8], update: &mut Appender<'_>) -> StoreResult<()> {
        crate::store::blocking(|| {
            let _turn = self.append.lock().unwrap_or_else(|p| p.into_inner());
            let now = self
                .db
                .open_tree(tree)?
                .get(key)?
                .map(|v| (key.to_vec(), v.to_vec()));
            let writes = update(now)?;
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.apply_unlocked(&writes)?;
            self.db.flush()?;
            Ok(())
        })
    }

    fn next_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    fn ids_above(&self, n: u64) -> StoreResult<()> {
        // sled's counter only counts up: it is run up to `n`.
        while self.db.generate_id()? + 1 < n {}
        Ok(())
    }

    fn tree_names(&self) -> StoreResult<Vec<String>> {
        let mut names = Vec::new();
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if name.starts_with("__sled__") {
                continue;
            }
            if !self.db.open_tree(&name)?.is_empty() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn drop_tree(&self, tree: &str) -> StoreResult<()> {
        self.db.drop_tree(tree)?;
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        crate::store::blocking(|| {
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.db.flush()?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        "sled".to_string()
    }
}
