//! The embedded store: one sled tree per record kind, bincode values behind a
//! schema version byte, big-endian id keys, template revisions, the audit
//! chain, and secrets sealed with a key kept beside the store. Operation
//! output, which is most of the volume, is kept beside sled in a file per
//! operation ([`output`]).

mod audit;
mod backup;
mod cipher;
mod codec;
mod forward;
mod index;
pub mod kv;
mod mfa;
mod operations;
mod output;
pub mod recording;
mod schema;

pub use audit::{acting_as, AuditBreak, AuditEvent, NewAuditEvent};
pub use backup::BackupSummary;
pub use cipher::SecretCipher;
pub use codec::{decode, encode};
pub use index::OpField;
pub use output::OutputWriter;
pub use schema::SCHEMA_VERSION;

use crate::domain::{Id, Kind, Record, Template};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: cannot encode a value: {0}")]
    Encode(String),
    #[error("store: a stored value in `{tree}` cannot be read: {message}")]
    Corrupt { tree: String, message: String },
    #[error("store: {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store: the secret key file {0} is not 32 bytes; is it the right file?")]
    BadKeyFile(PathBuf),
    #[error("store: a secret cannot be opened with this key (wrong key file or damaged data)")]
    SecretOpen,
    #[error("store (PostgreSQL): {0}")]
    Postgres(String),
    #[error("store: schema version {found} is newer than this program knows ({known}); upgrade Gatehouse")]
    SchemaTooNew { found: u32, known: u32 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A change to one stored record.
pub enum Change {
    Put(Box<Record>),
    Delete(Kind, Id),
    /// Creates or updates an operation.
    PutOperation(Box<crate::domain::Operation>),
    /// Creates or updates an execution request.
    PutRequest(Box<crate::domain::ExecutionRequest>),
    /// Creates or updates a JIT grant.
    PutJit(Box<crate::domain::JitGrant>),
    /// Creates or updates where a credential's secret stands.
    PutSecretState(Box<crate::domain::SecretState>),
    /// Creates or updates a session.
    PutSession(Box<crate::domain::SessionRecord>),
    /// Records the review of an emergency request.
    PutReview(Box<crate::domain::EmergencyReview>),
}

/// The store. Opened by the server only (sled locks its files).
pub struct Store {
    db: sled::Db,
    cipher: SecretCipher,
    /// Template revisions, keyed by template id then revision, both big-endian.
    revisions: sled::Tree,
    audit: sled::Tree,
    /// Serialises audit appends so that sequence numbers and hashes chain.
    audit_head: Mutex<audit::Head>,
    dir: PathBuf,
    operations: sled::Tree,
    /// Output chunks, in a file per operation (see [`output`]).
    outputs: output::OutputFiles,
    /// Operations by task, device and requester (see [`index`]).
    by_index: sled::Tree,
    /// Operations that have not ended.
    open_index: sled::Tree,
    /// Transactions and explicit flushes take turns: sled 0.34 can deadlock
    /// when a transaction waits for readers while concurrent flushes wait
    /// for its log flusher.
    gate: Mutex<()>,
}

/// Runs blocking store work without stalling the async workers' other tasks.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

const REVISIONS_TREE: &str = "template_revisions";
const AUDIT_TREE: &str = "audit";
const OPERATIONS_TREE: &str = "operations";
/// Where output chunks were kept before schema version 3 (and the name of
/// their section in a backup).
const OUTPUT_TREE: &str = "output";
const REQUESTS_TREE: &str = "requests";
/// Reviews of emergency requests, keyed by request id.
const REVIEWS_TREE: &str = "reviews";
const JIT_TREE: &str = "jit";
/// Credentials' secret lifecycles, by credential id.
const SECRETS_TREE: &str = "secret_states";
const SESSIONS_TREE: &str = "sessions";

/// The most memory sled's page cache takes.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The sled directory inside the data directory.
const DB_DIR: &str = "store";

impl Store {
    /// Opens (creating when empty) the store in `dir`, migrating an older schema.
    pub fn open(dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cipher = SecretCipher::load_or_create(&crate::paths::key_in(dir))?;
        let db = sled::Config::new()
            .path(dir.join(DB_DIR))
            .flush_every_ms(Some(500))
            // sled's page cache, 1 GiB by default: a shared jump host's
            // server should not take that much for a large store.
            .cache_capacity(CACHE_BYTES)
            .open()?;
        schema::migrate(&db, dir)?;
        if db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == OUTPUT_TREE.as_bytes())
        {
            // Its chunks were moved to files and synced by the migration to
            // version 3; a crash before this line only leaves it to drop now.
            db.drop_tree(OUTPUT_TREE)?;
        }
        let outputs = output::OutputFiles::open(dir)?;
        let revisions = db.open_tree(REVISIONS_TREE)?;
        let audit = db.open_tree(AUDIT_TREE)?;
        let operations = db.open_tree(OPERATIONS_TREE)?;
        let by_index = db.open_tree(index::BY_TREE)?;
        let open_index = db.open_tree(index::OPEN_TREE)?;
        let head = audit::Head::load(&audit)?;
        Ok(Store {
            db,
            cipher,
            revisions,
            audit,
            audit_head: Mutex::new(head),
            dir: dir.to_path_buf(),
            operations,
            outputs,
            by_index,
            open_index,
            gate: Mutex::new(()),
        })
    }

    /// The schema version the store is at (after migrating on open).
    pub fn schema_version(&self) -> StoreResult<Option<u32>> {
        schema::version(&self.db)
    }

    /// The data directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cipher that seals and opens secrets.
    pub fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }

    /// A fresh id, larger than every id handed out before.
    pub fn next_id(&self) -> StoreResult<Id> {
        Ok(Id(self.db.generate_id()? + 1))
    }

    fn tree(&self, kind: Kind) -> StoreResult<sled::Tree> {
        Ok(self.db.open_tree(kind.as_str())?)
    }

    /// Every record of a kind, in id (creation) order.
    pub fn list(&self, kind: Kind) -> StoreResult<Vec<Record>> {
        let tree = self.tree(kind)?;
        tree.iter()
            .values()
            .map(|v| decode::<Record>(kind.as_str(), &v?))
            .collect()
    }

    /// The enabled credentials that belong to a device (`device = NAME`):
    /// its own logins, as `via` and sessions look for them.
    pub fn device_credentials(&self, device: &str) -> StoreResult<Vec<crate::domain::Credential>> {
        Ok(self
            .list(Kind::Credential)?
            .into_iter()
            .filter_map(|r| match r {
                Record::Credential(c) if c.meta.enabled && c.device.as_deref() == Some(device) => {
                    Some(c)
                }
                _ => None,
            })
            .collect())
    }

    /// The record of a kind with this name.
    pub fn find(&self, kind: Kind, name: &str) -> StoreResult<Option<Record>> {
        Ok(self.list(kind)?.into_iter().find(|r| r.name() == name))
    }

    /// A record by id.
    pub fn get(&self, kind: Kind, id: Id) -> StoreResult<Option<Record>> {
        self.tree(kind)?
            .get(id.key())?
            .map(|v| decode(kind.as_str(), &v))
            .transpose()
    }

    /// One saved revision of a template.
    pub fn template_revision(&self, id: Id, revision: u32) -> StoreResult<Option<Template>> {
        self.revisions
            .get(revision_key(id, revision))?
            .map(|v| decode("template_revisions", &v))
            .transpose()
    }

    /// Every saved revision of a template, oldest first.
    pub fn template_revisions(&self, id: Id) -> StoreResult<Vec<Template>> {
        self.revisions
            .scan_prefix(id.key())
            .values()
            .map(|v| decode("template_revisions", &v?))
            .collect()
    }

    /// Applies record changes and appends their audit events in one
    /// transaction, then flushes: when this returns, both are on disk.
    pub async fn commit(
        &self,
        changes: Vec<Change>,
        events: Vec<NewAuditEvent>,
    ) -> StoreResult<Vec<AuditEvent>> {
        // The transaction and its flush happen behind the gate, so that no
        // flush ever waits on the log while a transaction waits for readers
        // (sled 0.34 deadlocks there: see the `gate` field).
        blocking(|| {
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            let appended = self.commit_unflushed(changes, events)?;
            self.db.flush()?;
            Ok(appended)
        })
    }

    fn commit_unflushed(
        &self,
        changes: Vec<Change>,
        events: Vec<NewAuditEvent>,
    ) -> StoreResult<Vec<AuditEvent>> {
        // Everything is encoded before the transaction: its closure may run
        // more than once and must do nothing but write.
        let mut writes: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for change in &changes {
            match change {
                Change::Put(record) => {
                    let id = record.meta().id;
                    writes.push((
                        record.kind().as_str().to_string(),
                        id.key().to_vec(),
                        Some(encode(record)?),
                    ));
                    if let Record::Template(t) = &**record {
                        writes.push((
                            REVISIONS_TREE.to_string(),
                            revision_key(id, t.meta.revision).to_vec(),
                            Some(encode(t)?),
                        ));
                    }
                }
                Change::Delete(kind, id) => {
                    writes.push((kind.as_str().to_string(), id.key().to_vec(), None))
                }
                Change::PutRequest(r) => writes.push((
                    REQUESTS_TREE.to_string(),
                    r.id.key().to_vec(),
                    Some(encode(r)?),
                )),
                Change::PutJit(g) => {
                    writes.push((JIT_TREE.to_string(), g.id.key().to_vec(), Some(encode(g)?)))
                }
                Change::PutSecretState(s) => writes.push((
                    SECRETS_TREE.to_string(),
                    s.credential.key().to_vec(),
                    Some(encode(s)?),
                )),
                Change::PutReview(r) => writes.push((
                    REVIEWS_TREE.to_string(),
                    r.request.key().to_vec(),
                    Some(encode(r)?),
                )),
                Change::PutSession(s) => writes.push((
                    SESSIONS_TREE.to_string(),
                    s.id.key().to_vec(),
                    Some(encode(s)?),
                )),
                Change::PutOperation(op) => {
                    writes.push((
                        OPERATIONS_TREE.to_string(),
                        op.id.key().to_vec(),
                        Some(encode(op)?),
                    ));
                    writes.extend(
                        index::writes_for(op)
                            .into_iter()
                            .map(|(tree, key, value)| (tree.to_string(), key, value)),
                    );
                }
            }
        }
        let mut head = self.audit_head.lock().unwrap_or_else(|p| p.into_inner());
        let (sealed_events, new_head) = head.chain(events);
        for e in &sealed_events {
            writes.push((
                AUDIT_TREE.to_string(),
                e.seq.to_be_bytes().to_vec(),
                Some(encode(e)?),
            ));
        }
        let mut names: Vec<&str> = writes.iter().map(|(t, _, _)| t.as_str()).collect();
        names.sort();
        names.dedup();
        let trees: Vec<sled::Tree> = names
            .iter()
            .map(|n| self.db.open_tree(n))
            .collect::<Result<_, _>>()?;
        let result: Result<(), TransactionError<()>> = trees.as_slice().transaction(|tx| {
            for (tree, key, value) in &writes {
                let at = names.iter().position(|n| n == tree).unwrap_or(0);
                match value {
                    Some(v) => tx[at].insert(key.as_slice(), v.as_slice())?,
                    None => tx[at].remove(key.as_slice())?,
                };
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) => {
                *head = new_head;
                Ok(sealed_events)
            }
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(TransactionError::Abort(())) => {
                Err(StoreError::Encode("transaction aborted".into()))
            }
        }
    }

    /// Appends audit events that change no record (a login, a refusal, a run).
    pub async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<Vec<AuditEvent>> {
        self.commit(Vec::new(), events).await
    }

    /// Audit events with `seq >= from`, in order, at most `limit`.
    pub fn audit_events(&self, from: u64, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        self.audit
            .range(from.to_be_bytes()..)
            .values()
            .take(limit)
            .map(|v| decode("audit", &v?))
            .collect()
    }

    /// The newest `limit` audit events, in order.
    pub fn audit_tail(&self, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let mut events: Vec<AuditEvent> = self
            .audit
            .iter()
            .rev()
            .take(limit)
            .map(|item| decode("audit", &item?.1))
            .collect::<StoreResult<_>>()?;
        events.reverse();
        Ok(events)
    }

    /// How many audit events there are.
    pub fn audit_len(&self) -> u64 {
        self.audit_head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_seq
            - 1
    }

    /// Walks the whole audit chain; returns how many events verified, or the
    /// first event where the chain breaks and why.
    pub fn verify_audit(&self) -> StoreResult<Result<u64, AuditBreak>> {
        audit::verify(self.audit.iter().map(|item| {
            let (k, v) = item?;
            Ok((k.to_vec(), v.to_vec()))
        }))
    }

    /// The raw audit tree, for tests that tamper with it on purpose.
    #[doc(hidden)]
    pub fn audit_tree_for_tests(&self) -> &sled::Tree {
        &self.audit
    }

    /// Flushes everything written so far.
    pub async fn flush(&self) -> StoreResult<()> {
        blocking(|| {
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.db.flush()?;
            Ok(())
        })
    }
}

fn revision_key(id: Id, revision: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&id.key());
    key[8..].copy_from_slice(&revision.to_be_bytes());
    key
}
