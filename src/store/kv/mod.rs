//! The store's backends: ordered trees of byte keys and values, written in
//! atomic, durable batches. Everything above (encoding, schema versions,
//! the audit chain, indexes, the engine) sees only this interface; sled
//! keeps a single jump host's store in its data directory, PostgreSQL one
//! shared by several.
//!
//! Keys are compared byte by byte (big-endian ids sort in id order in
//! both). A batch is applied whole or not at all and is on disk when
//! `apply` returns. `append_locked` serialises appenders to one tree across
//! every process using the backend (the audit chain's appends), reading the
//! tree's last entry and writing inside the same lock.

mod postgres;
mod sled_backend;

pub(crate) use postgres::split_root_cert;
pub use postgres::Postgres;
pub use sled_backend::Sled;

use super::StoreResult;

/// One write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put {
        tree: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        tree: String,
        key: Vec<u8>,
    },
}

impl Write {
    pub fn put(tree: &str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Write {
        Write::Put {
            tree: tree.to_string(),
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(tree: &str, key: impl Into<Vec<u8>>) -> Write {
        Write::Delete {
            tree: tree.to_string(),
            key: key.into(),
        }
    }

    pub fn tree(&self) -> &str {
        match self {
            Write::Put { tree, .. } | Write::Delete { tree, .. } => tree,
        }
    }
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Which entries of a tree a read takes: keys from `from` (inclusive) up
/// to `to` (exclusive, none: to the end), in key order or reversed, at
/// most `limit`.
#[derive(Clone, Debug, Default)]
pub struct Range {
    pub from: Vec<u8>,
    pub to: Option<Vec<u8>>,
    pub reverse: bool,
    pub limit: Option<usize>,
}

impl Range {
    /// Every entry.
    pub fn all() -> Range {
        Range::default()
    }

    /// Entries whose keys start with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Range {
        Range {
            from: prefix.to_vec(),
            to: after_prefix(prefix),
            ..Range::default()
        }
    }

    /// Keys from `from` on.
    pub fn from(from: &[u8]) -> Range {
        Range {
            from: from.to_vec(),
            ..Range::default()
        }
    }

    pub fn reversed(mut self) -> Range {
        self.reverse = true;
        self
    }

    pub fn limit(mut self, n: usize) -> Range {
        self.limit = Some(n);
        self
    }
}

/// The smallest key after every key that starts with `prefix` (none when
/// the prefix is all 0xff, or empty).
pub fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// What an appender computes from the tree's last entry: the writes of its
/// batch (the new entries and anything else that must change with them).
pub type Appender<'a> = dyn FnMut(Option<Entry>) -> StoreResult<Vec<Write>> + Send + 'a;

/// An ordered, durable key-value store of named trees.
pub trait Backend: Send + Sync {
    /// The value of `key` in `tree`.
    fn get(&self, tree: &str, key: &[u8]) -> StoreResult<Option<Vec<u8>>>;

    /// The values of several keys of `tree`, in the keys' order (a backend
    /// over a network reads them in one round trip).
    fn get_many(&self, tree: &str, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(tree, k)).collect()
    }

    /// The entries of `tree` that `range` takes.
    fn range(&self, tree: &str, range: &Range) -> StoreResult<Vec<Entry>>;

    /// Applies every write or none; durable when it returns.
    fn apply(&self, writes: Vec<Write>) -> StoreResult<()>;

    /// Applies every write or none; durable by the next `flush` or
    /// `apply` at the latest (progress that a crash may lose, such as
    /// output counters and cursors).
    fn apply_lazy(&self, writes: Vec<Write>) -> StoreResult<()>;

    /// Under a lock that every process using this backend respects: reads
    /// `tree`'s last entry, asks `append` for the batch, applies it.
    fn append_locked(&self, tree: &str, append: &mut Appender<'_>) -> StoreResult<()>;

    /// Under a lock on (`tree`, `key`) that every process using this
    /// backend respects: reads the key's value, asks `update` for the
    /// batch, applies it (a compare-and-set across servers).
    fn update_locked(&self, tree: &str, key: &[u8], update: &mut Appender<'_>) -> StoreResult<()>;

    /// A fresh id, larger than every id handed out before, unique among
    /// every process using this backend.
    fn next_id(&self) -> StoreResult<u64>;

    /// Makes every later `next_id` larger than `n` (a copied store's ids
    /// are not handed out again).
    fn ids_above(&self, n: u64) -> StoreResult<()>;

    /// The trees that hold at least one entry.
    fn tree_names(&self) -> StoreResult<Vec<String>>;

    /// Removes a tree and everything in it.
    fn drop_tree(&self, tree: &str) -> StoreResult<()>;

    /// Makes everything applied so far durable (apply already does).
    fn flush(&self) -> StoreResult<()>;

    /// Where the store is, for messages (a directory, or a URL without its password).
    fn describe(&self) -> String;

    /// Tells every other process using this backend something (a few
    /// hundred bytes); a single-process backend has nobody to tell.
    fn notify(&self, _message: String) {}

    /// Sends what the other processes tell (see `notify`) to `to`, from
    /// now on, for as long as `to` is open.
    fn listen(&self, _to: tokio::sync::mpsc::UnboundedSender<String>) {}

    /// Whether other processes may use this backend at the same time.
    fn shared(&self) -> bool {
        false
    }
}

/// How many entries a scan reads first; each full page doubles the next,
/// up to `MAX_PAGE`: a scan that stops early (a page of history) reads
/// little, a long one (a full scan on a database) few round trips.
const PAGE: usize = 512;
const MAX_PAGE: usize = 8192;

/// Visits the entries `range` takes, a page at a time (a tree of a million
/// entries is never in memory at once), while `visit` says to go on.
/// `range.limit` is ignored: the visitor decides when to stop.
pub fn scan(
    kv: &dyn Backend,
    tree: &str,
    range: &Range,
    mut visit: impl FnMut(&[u8], &[u8]) -> StoreResult<bool>,
) -> StoreResult<()> {
    let mut page = Range {
        limit: Some(PAGE),
        ..range.clone()
    };
    loop {
        let entries = kv.range(tree, &page)?;
        let full = Some(entries.len()) == page.limit;
        let Some(last) = entries.last().map(|(k, _)| k.clone()) else {
            return Ok(());
        };
        for (k, v) in &entries {
            if !visit(k, v)? {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
        page.limit = page.limit.map(|l| (l * 2).min(MAX_PAGE));
        if page.reverse {
            page.to = Some(last);
        } else {
            // The smallest key after `last`.
            let mut next = last;
            next.push(0);
            page.from = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::after_prefix;

    #[test]
    fn the_end_of_a_prefix_is_the_next_key_that_does_not_start_with_it() {
        assert_eq!(after_prefix(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(after_prefix(&[1, 0xff]), Some(vec![2]));
        assert_eq!(after_prefix(&[0xff, 0xff]), None);
        assert_eq!(after_prefix(b""), None);
    }
}
