//! The embedded store: one sled tree per record kind, bincode values behind a
//! schema version byte, big-endian id keys, template revisions, the audit
//! chain, and secrets sealed with a key kept beside the store. Operation
//! output, which is most of the volume, is kept beside sled in a file per
//! operation ([`output`]).

mod audit;
mod backup;
mod cipher;
pub mod cluster;
mod codec;
mod copy;
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
pub use copy::CopySummary;
pub use index::OpField;
pub use output::OutputWriter;
pub use schema::SCHEMA_VERSION;

use crate::domain::{Id, Kind, Record, Template};
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
    #[error("the secret key {key} does not open {store}'s check value: every server of one store needs the same key file (copy it from the first server)")]
    WrongKey { key: PathBuf, store: String },
    #[error("store: schema version {found} is newer than this program knows ({known}); upgrade Gatehouse")]
    SchemaTooNew { found: u32, known: u32 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whether a PostgreSQL URL carries a password.
pub fn url_has_password(url: &str) -> bool {
    kv::split_root_cert(url)
        .0
        .parse::<tokio_postgres::Config>()
        .map(|c| c.get_password().is_some())
        .unwrap_or(false)
}

/// A shared store's URL. It may hold a password: it is never printed
/// (`Debug` shows it without one, as the store describes itself).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(pub String);

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match kv::split_root_cert(&self.0)
            .0
            .parse::<tokio_postgres::Config>()
        {
            Ok(c) => write!(
                f,
                "StoreUrl({:?}@{:?}/{:?})",
                c.get_user().unwrap_or(""),
                c.get_hosts().len(),
                c.get_dbname().unwrap_or("")
            ),
            Err(_) => f.write_str("StoreUrl(unreadable)"),
        }
    }
}

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

/// The store: records, requests, operations and the audit chain in a
/// backend ([`kv`]: sled in the data directory, or PostgreSQL shared by
/// several servers), secrets sealed with the key kept in the data
/// directory.
pub struct Store {
    kv: std::sync::Arc<dyn kv::Backend>,
    cipher: SecretCipher,
    dir: PathBuf,
    /// Output chunks: a file per operation beside sled, or rows in the
    /// shared database.
    outputs: output::Outputs,
    /// Commits wait while a backup copies the trees.
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
/// The schema version and the sealing key's check value.
const META_TREE: &str = "meta";
/// A value sealed with the store's key: a server holding another key
/// cannot open it, and refuses to start.
const KEY_CHECK: &[u8] = b"key_check";
const KEY_CHECK_PLAIN: &[u8] = b"gatehouse store key check v1";

/// The most memory sled's page cache takes.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The sled directory inside the data directory.
const DB_DIR: &str = "store";

impl Store {
    /// Opens (creating when empty) the embedded store in `dir`, migrating
    /// an older schema.
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
        let outputs = output::Outputs::Files(output::OutputFiles::open(dir)?);
        Store::with_backend(std::sync::Arc::new(kv::Sled::new(db)), cipher, dir, outputs)
    }

    /// Opens the store in the PostgreSQL database at `url`, shared with
    /// the other servers that name it; `dir` keeps this server's own files
    /// (the sealing key, which must be the same on every server, its
    /// socket and logs).
    pub fn open_shared(dir: &Path, url: &str) -> StoreResult<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cipher = SecretCipher::load_or_create(&crate::paths::key_in(dir))?;
        let backend = kv::Postgres::connect(url)?;
        schema::check_shared(&backend)?;
        Store::with_backend(
            std::sync::Arc::new(backend),
            cipher,
            dir,
            output::Outputs::Database,
        )
    }

    fn with_backend(
        kv: std::sync::Arc<dyn kv::Backend>,
        cipher: SecretCipher,
        dir: &Path,
        outputs: output::Outputs,
    ) -> StoreResult<Store> {
        let store = Store {
            kv,
            cipher,
            dir: dir.to_path_buf(),
            outputs,
            gate: Mutex::new(()),
        };
        store.check_key()?;
        Ok(store)
    }

    /// Opens the key check value with this server's key (writing it when
    /// the store has none yet): another key is refused here, not found
    /// out at the first secret.
    fn check_key(&self) -> StoreResult<()> {
        match self.kv.get(META_TREE, KEY_CHECK)? {
            Some(sealed) => {
                let sealed: crate::domain::Sealed = decode(META_TREE, &sealed)?;
                match self.cipher.open(&sealed) {
                    Ok(plain) if plain.as_slice() == KEY_CHECK_PLAIN => Ok(()),
                    _ => Err(StoreError::WrongKey {
                        key: crate::paths::key_in(&self.dir),
                        store: self.kv.describe(),
                    }),
                }
            }
            None => {
                let sealed = self.cipher.seal(KEY_CHECK_PLAIN);
                self.kv
                    .apply(vec![kv::Write::put(META_TREE, KEY_CHECK, encode(&sealed)?)])
            }
        }
    }

    /// The schema version the store is at (after migrating on open).
    pub fn schema_version(&self) -> StoreResult<Option<u32>> {
        schema::version_in(&*self.kv)
    }

    /// The data directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the records are: sled, or the shared database's URL (no password).
    pub fn describe(&self) -> String {
        self.kv.describe()
    }

    /// The cipher that seals and opens secrets.
    pub fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }

    /// A fresh id, larger than every id handed out before.
    pub fn next_id(&self) -> StoreResult<Id> {
        Ok(Id(self.kv.next_id()?))
    }

    /// Every value of a tree, decoded, in key order.
    fn values<T: serde::de::DeserializeOwned>(&self, tree: &str) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        kv::scan(&*self.kv, tree, &kv::Range::all(), |_, v| {
            out.push(decode(tree, v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The value of one key, decoded.
    fn value<T: serde::de::DeserializeOwned>(
        &self,
        tree: &str,
        key: &[u8],
    ) -> StoreResult<Option<T>> {
        self.kv
            .get(tree, key)?
            .map(|v| decode(tree, &v))
            .transpose()
    }

    /// Values of a tree newest (last key) first that `keep` accepts, at most `limit`.
    fn newest_first<T: serde::de::DeserializeOwned>(
        &self,
        tree: &str,
        range: kv::Range,
        limit: usize,
        mut keep: impl FnMut(&T) -> bool,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        kv::scan(&*self.kv, tree, &range.reversed(), |_, v| {
            let item: T = decode(tree, v)?;
            if keep(&item) {
                out.push(item);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Every record of a kind, in id (creation) order.
    pub fn list(&self, kind: Kind) -> StoreResult<Vec<Record>> {
        self.values(kind.as_str())
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
        self.value(kind.as_str(), &id.key())
    }

    /// One saved revision of a template.
    pub fn template_revision(&self, id: Id, revision: u32) -> StoreResult<Option<Template>> {
        self.value(REVISIONS_TREE, &revision_key(id, revision))
    }

    /// Every saved revision of a template, oldest first.
    pub fn template_revisions(&self, id: Id) -> StoreResult<Vec<Template>> {
        let mut out = Vec::new();
        kv::scan(
            &*self.kv,
            REVISIONS_TREE,
            &kv::Range::prefix(&id.key()),
            |_, v| {
                out.push(decode(REVISIONS_TREE, v)?);
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// The writes that store these changes.
    fn writes_of(changes: &[Change]) -> StoreResult<Vec<kv::Write>> {
        let mut writes = Vec::new();
        for change in changes {
            match change {
                Change::Put(record) => {
                    let id = record.meta().id;
                    writes.push(kv::Write::put(
                        record.kind().as_str(),
                        id.key(),
                        encode(record)?,
                    ));
                    if let Record::Template(t) = &**record {
                        writes.push(kv::Write::put(
                            REVISIONS_TREE,
                            revision_key(id, t.meta.revision),
                            encode(t)?,
                        ));
                    }
                }
                Change::Delete(kind, id) => writes.push(kv::Write::delete(kind.as_str(), id.key())),
                Change::PutRequest(r) => {
                    writes.push(kv::Write::put(REQUESTS_TREE, r.id.key(), encode(r)?))
                }
                Change::PutJit(g) => writes.push(kv::Write::put(JIT_TREE, g.id.key(), encode(g)?)),
                Change::PutSecretState(s) => {
                    writes.push(kv::Write::put(SECRETS_TREE, s.credential.key(), encode(s)?))
                }
                Change::PutReview(r) => {
                    writes.push(kv::Write::put(REVIEWS_TREE, r.request.key(), encode(r)?))
                }
                Change::PutSession(s) => {
                    writes.push(kv::Write::put(SESSIONS_TREE, s.id.key(), encode(s)?))
                }
                Change::PutOperation(op) => {
                    writes.push(kv::Write::put(OPERATIONS_TREE, op.id.key(), encode(op)?));
                    writes.extend(index::writes_for(op).into_iter().map(|(tree, key, value)| {
                        match value {
                            Some(v) => kv::Write::put(tree, key, v),
                            None => kv::Write::delete(tree, key),
                        }
                    }));
                }
            }
        }
        Ok(writes)
    }

    /// Applies record changes and appends their audit events in one
    /// batch: when this returns, both are on disk (or committed in the
    /// shared database, the chain's head locked meanwhile, so that every
    /// server appends to one chain).
    pub async fn commit(
        &self,
        changes: Vec<Change>,
        events: Vec<NewAuditEvent>,
    ) -> StoreResult<Vec<AuditEvent>> {
        // Everything is encoded first: the append below may be asked to
        // compute its batch again and must only write.
        let writes = Store::writes_of(&changes)?;
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if events.is_empty() {
            self.kv.apply(writes)?;
            return Ok(Vec::new());
        }
        let mut sealed_events = Vec::new();
        self.kv.append_locked(AUDIT_TREE, &mut |last| {
            let head = match last {
                Some((_, v)) => {
                    let last: AuditEvent = decode(AUDIT_TREE, &v)?;
                    audit::Head {
                        next_seq: last.seq + 1,
                        last_hash: last.hash,
                    }
                }
                None => audit::Head {
                    next_seq: 1,
                    last_hash: [0; 32],
                },
            };
            let (sealed, _) = head.chain(events.clone());
            let mut batch = writes.clone();
            for e in &sealed {
                batch.push(kv::Write::put(AUDIT_TREE, e.seq.to_be_bytes(), encode(e)?));
            }
            sealed_events = sealed;
            Ok(batch)
        })?;
        Ok(sealed_events)
    }

    /// Appends audit events that change no record (a login, a refusal, a run).
    pub async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<Vec<AuditEvent>> {
        self.commit(Vec::new(), events).await
    }

    /// Audit events with `seq >= from`, in order, at most `limit`.
    pub fn audit_events(&self, from: u64, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        self.kv
            .range(
                AUDIT_TREE,
                &kv::Range::from(&from.to_be_bytes()).limit(limit),
            )?
            .iter()
            .map(|(_, v)| decode(AUDIT_TREE, v))
            .collect()
    }

    /// The newest `limit` audit events, in order.
    pub fn audit_tail(&self, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let mut events: Vec<AuditEvent> = self
            .kv
            .range(AUDIT_TREE, &kv::Range::all().reversed().limit(limit))?
            .iter()
            .map(|(_, v)| decode(AUDIT_TREE, v))
            .collect::<StoreResult<_>>()?;
        events.reverse();
        Ok(events)
    }

    /// How many audit events there are (the last one's sequence number).
    pub fn audit_len(&self) -> StoreResult<u64> {
        let last = self
            .kv
            .range(AUDIT_TREE, &kv::Range::all().reversed().limit(1))?;
        Ok(last
            .into_iter()
            .next()
            .and_then(|(k, _)| k.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Walks the whole audit chain; returns how many events verified, or the
    /// first event where the chain breaks and why.
    pub fn verify_audit(&self) -> StoreResult<Result<u64, AuditBreak>> {
        // A page at a time: the verifier sees one stream of entries.
        let mut verdict = None;
        let mut state = audit::Verifier::default();
        kv::scan(
            &*self.kv,
            AUDIT_TREE,
            &kv::Range::all(),
            |k, v| match state.next(k, v) {
                Ok(()) => Ok(true),
                Err(broken) => {
                    verdict = Some(broken);
                    Ok(false)
                }
            },
        )?;
        Ok(match verdict {
            Some(broken) => Err(broken),
            None => Ok(state.verified()),
        })
    }

    /// Whether other servers use this store too (a shared database).
    pub fn shared(&self) -> bool {
        self.kv.shared()
    }

    /// Tells the other servers of a shared store something.
    pub fn notify(&self, message: String) {
        self.kv.notify(message)
    }

    /// What the other servers of a shared store tell, from now on.
    pub fn listen(&self, to: tokio::sync::mpsc::UnboundedSender<String>) {
        self.kv.listen(to)
    }

    /// The backend underneath, for tests that tamper with it on purpose.
    #[doc(hidden)]
    pub fn backend_for_tests(&self) -> &dyn kv::Backend {
        &*self.kv
    }

    /// Flushes everything written so far.
    pub async fn flush(&self) -> StoreResult<()> {
        self.kv.flush()
    }
}

fn revision_key(id: Id, revision: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&id.key());
    key[8..].copy_from_slice(&revision.to_be_bytes());
    key
}
