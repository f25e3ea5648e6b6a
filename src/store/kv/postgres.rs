//! The shared backend: one PostgreSQL database for every jump host's
//! server. The trees are rows of one table keyed by (tree, key), bytea
//! keys comparing byte by byte as sled's do; ids come from a sequence;
//! appends to a tree take a transaction-scoped advisory lock, so that the
//! audit chain has one head across every server.
//!
//! The interface is synchronous (the store's callers are): the backend
//! keeps a small runtime of its own for the database's I/O and the caller
//! waits for each answer off the async workers (`store::blocking`).

use super::{Appender, Backend, Entry, Range, Write};
use crate::store::{StoreError, StoreResult};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use tokio_postgres::NoTls;

/// The version of this table layout; a database with a newer one is
/// refused (a newer Gatehouse made it).
const LAYOUT: u32 = 1;

/// The advisory lock that migrations take (any fixed number, ours).
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573;

/// The channel servers tell each other what changed on.
const CHANNEL: &str = "gatehouse_events";

pub struct Postgres {
    pool: Pool,
    /// For the listening connection, which lives outside the pool.
    config: tokio_postgres::Config,
    /// TLS, when the URL asks for it (`sslmode=require`).
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    shown: String,
}

fn pg(e: impl std::fmt::Display) -> StoreError {
    StoreError::Postgres(e.to_string())
}

impl Postgres {
    /// Connects to the database at `url` (`postgresql://user@host/db`,
    /// or `host=/run/postgresql dbname=…`), creating or checking its
    /// tables under a lock.
    pub fn connect(url: &str) -> StoreResult<Postgres> {
        let (url, ca_file) = split_root_cert(url);
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| pg(format!("the store URL cannot be read: {e}")))?;
        let tls = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Require => Some(tls_for(ca_file.as_deref())?),
            _ => None,
        };
        let shown = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gatehouse-postgres")
            .enable_all()
            .build()
            .map_err(|e| pg(format!("cannot start the database runtime: {e}")))?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            None => Manager::from_config(config.clone(), NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(pg)?;
        let this = Postgres {
            pool,
            config,
            tls,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            shown,
        };
        this.migrate()?;
        Ok(this)
    }

    /// Runs `work` on the backend's runtime and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = StoreResult<T>> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        crate::store::blocking(|| {
            rx.recv()
                .map_err(|_| pg("the database task ended without an answer"))?
        })
    }

    fn migrate(&self) -> StoreResult<()> {
        let pool = self.pool.clone();
        self.run(async move {
            let mut client = pool.get().await.map_err(pg)?;
            let tx = client.transaction().await.map_err(pg)?;
            tx.batch_execute("SET LOCAL client_min_messages = warning")
                .await
                .map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(pg)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS gatehouse_meta (name text PRIMARY KEY, value text NOT NULL);
                 CREATE TABLE IF NOT EXISTS gatehouse_kv (
                     tree text NOT NULL,
                     key bytea NOT NULL,
                     value bytea NOT NULL,
                     PRIMARY KEY (tree, key));
                 CREATE SEQUENCE IF NOT EXISTS gatehouse_ids;",
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO gatehouse_meta (name, value) VALUES ('layout', $1) ON CONFLICT DO NOTHING",
                &[&LAYOUT.to_string()],
            )
            .await
            .map_err(pg)?;
            let found: String = tx
                .query_one("SELECT value FROM gatehouse_meta WHERE name = 'layout'", &[])
                .await
                .map_err(pg)?
                .get(0);
            let found: u32 = found
                .parse()
                .map_err(|_| pg(format!("the database's table layout '{found}' is not a number")))?;
            if found > LAYOUT {
                return Err(StoreError::SchemaTooNew {
                    found,
                    known: LAYOUT,
                });
            }
            tx.commit().await.map_err(pg)?;
            Ok(())
        })
    }
}

/// What a locked batch reads first.
enum Read {
    /// A tree's last entry.
    Last(String),
    /// One key's entry.
    Key(String, Vec<u8>),
}

impl Postgres {
    /// Under the advisory lock `lock`, in one transaction: reads what
    /// `read` says, asks `compute` for the batch, applies it.
    fn locked(&self, lock: i64, read: Read, compute: &mut Appender<'_>) -> StoreResult<()> {
        // The transaction stays open on the runtime while the caller
        // computes the batch from the last entry it was sent.
        let (last_tx, last_rx) = std::sync::mpsc::sync_channel::<StoreResult<Option<Entry>>>(1);
        let (writes_tx, writes_rx) = tokio::sync::oneshot::channel::<Option<Vec<Write>>>();
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<StoreResult<()>>(1);
        let pool = self.pool.clone();
        self.handle.spawn(async move {
            // Owns `last_tx`: an error before the last entry is sent drops
            // it, and the caller reads the error on `done`.
            let work = async move {
                let mut client = pool.get().await.map_err(pg)?;
                let tx = client.transaction().await.map_err(pg)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
                    .await
                    .map_err(pg)?;
                let row = match &read {
                    Read::Last(tree) => {
                        tx.query_opt(
                            "SELECT key, value FROM gatehouse_kv WHERE tree = $1 ORDER BY key DESC LIMIT 1",
                            &[tree],
                        )
                        .await
                    }
                    Read::Key(tree, key) => {
                        tx.query_opt(
                            "SELECT key, value FROM gatehouse_kv WHERE tree = $1 AND key = $2",
                            &[tree, key],
                        )
                        .await
                    }
                };
                let last = row
                    .map_err(pg)?
                    .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)));
                if last_tx.send(Ok(last)).is_err() {
                    return Ok(());
                }
                // None: the caller gave up; the transaction rolls back.
                match writes_rx.await {
                    Ok(Some(writes)) => {
                        write_all(&tx, &writes).await?;
                        tx.commit().await.map_err(pg)
                    }
                    _ => Ok(()),
                }
            };
            let result: StoreResult<()> = work.await;
            let _ = done_tx.send(result);
        });
        crate::store::blocking(|| {
            let last = match last_rx.recv() {
                Ok(last) => last?,
                // The task ended before sending: its error is on `done`.
                Err(_) => {
                    return done_rx
                        .recv()
                        .map_err(|_| pg("the database task ended without an answer"))?;
                }
            };
            match compute(last) {
                Ok(writes) => {
                    let _ = writes_tx.send(Some(writes));
                    done_rx
                        .recv()
                        .map_err(|_| pg("the database task ended without an answer"))?
                }
                Err(e) => {
                    let _ = writes_tx.send(None);
                    let _ = done_rx.recv();
                    Err(e)
                }
            }
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Dropped from async code too: the runtime must not block there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The URL without its `sslrootcert` (which tokio-postgres does not read)
/// and the file it names: the CA certificate the database's must chain to.
pub(crate) fn split_root_cert(url: &str) -> (String, Option<std::path::PathBuf>) {
    let mut ca = None;
    if let Some((base, query)) = url.split_once('?').filter(|_| url.contains("://")) {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| match p.strip_prefix("sslrootcert=") {
                Some(path) => {
                    ca = Some(std::path::PathBuf::from(path));
                    false
                }
                None => true,
            })
            .collect();
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (url, ca);
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(path) => {
                ca = Some(std::path::PathBuf::from(path));
                false
            }
            None => true,
        })
        .collect();
    (kept.join(" "), ca)
}

/// TLS that trusts only the CA certificate in `ca_file` (PEM) and checks
/// the database's name against its certificate.
fn tls_for(
    ca_file: Option<&std::path::Path>,
) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let Some(path) = ca_file else {
        return Err(pg(
            "the store URL asks for TLS (sslmode=require): name the CA certificate the database's \
             certificate chains to with sslrootcert=FILE in the URL",
        ));
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pg(format!("sslrootcert {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| pg(format!("sslrootcert {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| pg(format!("sslrootcert {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(pg(format!(
            "sslrootcert {} holds no certificate",
            path.display()
        )));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| pg(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The URL as it may be shown: user, hosts and database, never a password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "postgresql://{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

const UPSERT: &str = "INSERT INTO gatehouse_kv (tree, key, value) VALUES ($1, $2, $3) \
                      ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM gatehouse_kv WHERE tree = $1 AND key = $2";

/// Rows per multi-row upsert.
const ROWS_PER_STATEMENT: usize = 300;

/// Applies writes in order inside `tx`: puts go in multi-row upserts (one
/// round trip for hundreds of rows; a key put twice keeps its last value),
/// deletes one by one where they fall.
async fn write_all(tx: &deadpool_postgres::Transaction<'_>, writes: &[Write]) -> StoreResult<()> {
    let delete = tx.prepare_cached(DELETE).await.map_err(pg)?;
    let mut puts: Vec<(&String, &Vec<u8>, &Vec<u8>)> = Vec::new();
    let mut at: std::collections::HashMap<(&String, &Vec<u8>), usize> = Default::default();
    for w in writes {
        match w {
            Write::Put { tree, key, value } => match at.get(&(tree, key)) {
                Some(i) => puts[*i] = (tree, key, value),
                None => {
                    at.insert((tree, key), puts.len());
                    puts.push((tree, key, value));
                }
            },
            Write::Delete { tree, key } => {
                upsert(tx, &puts).await?;
                puts.clear();
                at.clear();
                tx.execute(&delete, &[tree, key]).await.map_err(pg)?;
            }
        }
    }
    upsert(tx, &puts).await
}

async fn upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[(&String, &Vec<u8>, &Vec<u8>)],
) -> StoreResult<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        if chunk.len() == 1 {
            let one = tx.prepare_cached(UPSERT).await.map_err(pg)?;
            let (tree, key, value) = chunk[0];
            tx.execute(&one, &[tree, key, value]).await.map_err(pg)?;
            continue;
        }
        let mut sql = String::from("INSERT INTO gatehouse_kv (tree, key, value) VALUES ");
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(chunk.len() * 3);
        for (i, (tree, key, value)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3));
            params.push(*tree);
            params.push(*key);
            params.push(*value);
        }
        sql.push_str(" ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value");
        let statement = tx.prepare_cached(&sql).await.map_err(pg)?;
        tx.execute(&statement, &params).await.map_err(pg)?;
    }
    Ok(())
}

/// The lock key of appends to a tree.
fn append_lock(tree: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("gatehouse-append:{tree}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl Backend for Postgres {
    fn get(&self, tree: &str, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let (pool, tree, key) = (self.pool.clone(), tree.to_string(), key.to_vec());
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            let row = client
                .query_opt(
                    "SELECT value FROM gatehouse_kv WHERE tree = $1 AND key = $2",
                    &[&tree, &key],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn get_many(&self, tree: &str, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let (pool, tree, wanted) = (self.pool.clone(), tree.to_string(), keys.to_vec());
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            let rows = client
                .query(
                    "SELECT key, value FROM gatehouse_kv WHERE tree = $1 AND key = ANY($2)",
                    &[&tree, &wanted],
                )
                .await
                .map_err(pg)?;
            let mut found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect();
            Ok(wanted.iter().map(|k| found.remove(k)).collect())
        })
    }

    fn range(&self, tree: &str, range: &Range) -> StoreResult<Vec<Entry>> {
        let (pool, tree, range) = (self.pool.clone(), tree.to_string(), range.clone());
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            let order = if range.reverse { "DESC" } else { "ASC" };
            let limit = range
                .limit
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                .unwrap_or(i64::MAX);
            let rows = match &range.to {
                Some(to) => {
                    client
                        .query(
                            &format!(
                                "SELECT key, value FROM gatehouse_kv WHERE tree = $1 AND key >= $2 \
                                 AND key < $3 ORDER BY key {order} LIMIT $4"
                            ),
                            &[&tree, &range.from, to, &limit],
                        )
                        .await
                }
                None => {
                    client
                        .query(
                            &format!(
                                "SELECT key, value FROM gatehouse_kv WHERE tree = $1 AND key >= $2 \
                                 ORDER BY key {order} LIMIT $3"
                            ),
                            &[&tree, &range.from, &limit],
                        )
                        .await
                }
            }
            .map_err(pg)?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }

    fn apply(&self, writes: Vec<Write>) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        self.run(async move {
            let mut client = pool.get().await.map_err(pg)?;
            let tx = client.transaction().await.map_err(pg)?;
            write_all(&tx, &writes).await?;
            tx.commit().await.map_err(pg)
        })
    }

    fn apply_lazy(&self, writes: Vec<Write>) -> StoreResult<()> {
        // A commit is as cheap as it gets here; it is durable at once.
        self.apply(writes)
    }

    fn append_locked(&self, tree: &str, append: &mut Appender<'_>) -> StoreResult<()> {
        self.locked(append_lock(tree), Read::Last(tree.to_string()), append)
    }

    fn update_locked(&self, tree: &str, key: &[u8], update: &mut Appender<'_>) -> StoreResult<()> {
        let mut name = format!("{tree}\0").into_bytes();
        name.extend_from_slice(key);
        self.locked(
            append_lock(&String::from_utf8_lossy(&name)),
            Read::Key(tree.to_string(), key.to_vec()),
            update,
        )
    }

    fn next_id(&self) -> StoreResult<u64> {
        let pool = self.pool.clone();
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            let id: i64 = client
                .query_one("SELECT nextval('gatehouse_ids')", &[])
                .await
                .map_err(pg)?
                .get(0);
            u64::try_from(id).map_err(|_| pg(format!("the id sequence gave {id}")))
        })
    }

    fn ids_above(&self, n: u64) -> StoreResult<()> {
        let pool = self.pool.clone();
        let n = i64::try_from(n).map_err(|_| pg(format!("an id of {n} does not fit")))?;
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            client
                .execute(
                    "SELECT setval('gatehouse_ids', GREATEST($1, (SELECT last_value FROM gatehouse_ids)))",
                    &[&n],
                )
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn tree_names(&self) -> StoreResult<Vec<String>> {
        let pool = self.pool.clone();
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            let rows = client
                .query("SELECT DISTINCT tree FROM gatehouse_kv ORDER BY tree", &[])
                .await
                .map_err(pg)?;
            Ok(rows.into_iter().map(|r| r.get::<_, String>(0)).collect())
        })
    }

    fn drop_tree(&self, tree: &str) -> StoreResult<()> {
        let (pool, tree) = (self.pool.clone(), tree.to_string());
        self.run(async move {
            let client = pool.get().await.map_err(pg)?;
            client
                .execute("DELETE FROM gatehouse_kv WHERE tree = $1", &[&tree])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn flush(&self) -> StoreResult<()> {
        // A committed transaction is durable (synchronous_commit).
        Ok(())
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn shared(&self) -> bool {
        true
    }

    fn notify(&self, message: String) {
        let pool = self.pool.clone();
        // Fire and forget: a receiver reads the current state from the
        // store, so a late or reordered message does no harm.
        self.handle.spawn(async move {
            let sent = async {
                let client = pool.get().await.map_err(pg)?;
                client
                    .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &message])
                    .await
                    .map_err(pg)
            };
            if let Err(e) = sent.await {
                tracing::warn!(error = %e, "cannot tell the other servers about a change");
            }
        });
    }

    fn listen(&self, to: tokio::sync::mpsc::UnboundedSender<String>) {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        self.handle.spawn(async move {
            // Connected again after a failure, until nobody listens.
            while !to.is_closed() {
                if let Err(e) = listen_once(&config, tls.as_ref(), &to).await {
                    tracing::warn!(error = %e, "listening to the other servers failed; again in a second");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}

/// One listening connection: LISTEN, then every notification's payload
/// to `to` until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
    to: &tokio::sync::mpsc::UnboundedSender<String>,
) -> StoreResult<()> {
    match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls.clone()).await.map_err(pg)?;
            relay_notifications(client, connection, to).await
        }
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
            relay_notifications(client, connection, to).await
        }
    }
}

/// LISTENs on `client`, sending each notification's payload to `to`
/// until the connection ends.
async fn relay_notifications<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    to: &tokio::sync::mpsc::UnboundedSender<String>,
) -> StoreResult<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use futures::StreamExt;
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
    let forward = to.clone();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if forward.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the listening connection failed");
                    break;
                }
            }
        }
        let _ = ended_tx.send(());
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(pg)?;
    // The client lives as long as its connection.
    let _ = ended_rx.await;
    drop(client);
    Ok(())
}
