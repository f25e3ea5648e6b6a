//! Verbs about the server itself.

use super::Cli;
use crate::engine::{Command, Response};
use color_eyre::eyre::Result;

pub async fn shutdown(cli: &Cli) -> Result<()> {
    let named = cli.connect.clone().or_else(|| cli.config().socket);
    let socket = named
        .clone()
        .unwrap_or_else(|| crate::paths::socket_in(&cli.data_dir()));
    // Stopping a server that is not running is not an error, and must not start one.
    let client = match crate::client::Client::connect(
        &socket,
        cli.as_login.as_deref(),
        &cli.trust(),
    )
    .await
    {
        Ok(c) => c,
        Err(crate::client::ClientError::Connect { .. }) => {
            outln!("no server is running for {}", socket.display());
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match client.call(Command::Shutdown).await {
        // The server may close before its answer arrives: it stopped either way.
        Ok(_) | Err(crate::client::ClientError::Closed) => {}
        Err(e) => return Err(e.into()),
    }
    drop(client);
    if named.is_none() {
        wait_for_exit(&cli.data_dir()).await;
    }
    outln!("server stopped");
    Ok(())
}

pub async fn whoami(cli: &Cli) -> Result<()> {
    let client = cli.client().await?;
    if let Response::Whoami {
        login,
        superuser,
        server_owner,
        roles,
    } = client.call(Command::Whoami).await?
    {
        outln!(
            "{login}{} (server run by {server_owner})",
            if superuser { ", Superuser" } else { "" }
        );
        for (role, source) in &roles {
            outln!("  role {role} ({source})");
        }
    }
    Ok(())
}

/// Waits until the server has let go of the data directory's lock, so that
/// the next command may start a new one at once.
async fn wait_for_exit(data_dir: &std::path::Path) {
    let path = crate::paths::lock_in(data_dir);
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        if nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn backup(cli: &Cli, file: &std::path::Path) -> Result<()> {
    use std::io::Write;
    let path = std::path::absolute(file)?;
    // Connected first, so that a server that is not there leaves no file.
    let client = cli.client().await?;
    // Written here, by the person who asked, where they may write: a new
    // file (never one that exists, never through a link), readable by them alone.
    let mut out = std::io::BufWriter::new(create_private(&path)?);
    let result = client
        .call_streaming(Command::Backup { path: path.clone() }, |bytes| {
            out.write_all(bytes)
        })
        .await;
    let summary = match result {
        Ok(Response::Backup(summary)) => summary,
        other => {
            // Nothing half-written stays behind.
            drop(out);
            let _ = std::fs::remove_file(&path);
            return match other {
                Err(e) => Err(e.into()),
                Ok(_) => Err(color_eyre::eyre::eyre!(
                    "the server answered with something else"
                )),
            };
        }
    };
    let synced = out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all());
    if let Err(e) = synced {
        let _ = std::fs::remove_file(&path);
        return Err(color_eyre::eyre::eyre!(
            "cannot write {}: {e}",
            path.display()
        ));
    }
    outln!(
        "backed up {} entries in {} trees ({} bytes) to {}",
        summary.entries,
        summary.trees,
        summary.bytes,
        path.display()
    );
    outln!(
        "the key file is not in the backup: keep a copy of the server's store.key apart from it"
    );
    Ok(())
}

/// Creates a file that did not exist, not through a symbolic link, mode 0600.
fn create_private(path: &std::path::Path) -> Result<std::fs::File> {
    crate::paths::create_private(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            " (it exists: name a new file)"
        } else {
            ""
        };
        color_eyre::eyre::eyre!("cannot create {}: {e}{hint}", path.display())
    })
}

pub fn restore(cli: &Cli, file: &std::path::Path) -> Result<()> {
    let dir = cli.data_dir();
    std::fs::create_dir_all(&dir)?;
    // The server's lock: no server may hold this directory while it is filled.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(crate::paths::lock_in(&dir))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| {
            color_eyre::eyre::eyre!("a server is running on {}; stop it first", dir.display())
        })?;
    let summary = crate::store::Store::restore(&dir, file)?;
    outln!(
        "restored {} entries in {} trees into {}",
        summary.entries,
        summary.trees,
        dir.display()
    );
    if !crate::paths::key_in(&dir).exists() {
        outln!(
            "no key file at {}: copy the original store.key there, or stored secrets cannot be opened",
            crate::paths::key_in(&dir).display()
        );
    }
    Ok(())
}

/// Where a store is, as `store copy` is told.
enum Location {
    Dir(std::path::PathBuf),
    Url(String),
}

impl Location {
    fn parse(cli: &Cli, text: &str) -> Result<Location> {
        if text == "config" {
            return cli
                .config()
                .store
                .url
                .filter(|u| !u.trim().is_empty())
                .map(Location::Url)
                .ok_or_else(|| {
                    color_eyre::eyre::eyre!(
                        "`config` names the configuration's [store] url, and it has none"
                    )
                });
        }
        let url_like = text.starts_with("postgres://")
            || text.starts_with("postgresql://")
            || text.contains("dbname=")
            || text.contains("host=");
        if !url_like {
            return Ok(Location::Dir(std::path::PathBuf::from(text)));
        }
        if crate::store::url_has_password(text) {
            color_eyre::eyre::bail!(
                "that URL holds a password, which the command line shows to every local user (ps): put it in the configuration's [store] url and say `config`"
            );
        }
        Ok(Location::Url(text.to_string()))
    }
}

/// Holds a data directory's server lock while a copy reads or fills it.
fn hold(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(crate::paths::lock_in(dir))?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        color_eyre::eyre::eyre!(
            "a server is running on {}; stop it first (gatehouse shutdown)",
            dir.display()
        )
    })
}

pub fn store_copy(cli: &Cli, from: &str, to: &str, key: Option<&std::path::Path>) -> Result<()> {
    use crate::store::Store;
    let (from, to) = (Location::parse(cli, from)?, Location::parse(cli, to)?);
    // The key travels with the store: a directory's own, or the one named.
    let key_file = match (&from, key) {
        (_, Some(k)) => k.to_path_buf(),
        (Location::Dir(d), None) => crate::paths::key_in(d),
        (Location::Url(_), None) => color_eyre::eyre::bail!(
            "copying from a database needs its key file: --key FILE (a server's store.key)"
        ),
    };
    if !key_file.exists() {
        color_eyre::eyre::bail!("no key file at {}", key_file.display());
    }
    // A database is opened with the key placed in a private directory of
    // its own (the store reads store.key from a directory).
    let keys = tempfile::Builder::new()
        .prefix("gatehouse-copy")
        .tempdir()?;
    std::fs::copy(&key_file, crate::paths::key_in(keys.path()))?;
    let mut held = Vec::new();
    let source = match &from {
        Location::Dir(d) => {
            if !d.join("store").exists() {
                color_eyre::eyre::bail!("{} holds no store", d.display());
            }
            held.push(hold(d)?);
            Store::open(d)?
        }
        Location::Url(u) => Store::open_shared(keys.path(), u)?,
    };
    let destination = match &to {
        Location::Dir(d) => {
            held.push(hold(d)?);
            if d.join("store").exists() {
                color_eyre::eyre::bail!(
                    "{} already holds a store: copy into an empty data directory",
                    d.display()
                );
            }
            let key_there = crate::paths::key_in(d);
            if key_there.exists() {
                color_eyre::eyre::bail!(
                    "{} already has a key file: copy into an empty data directory",
                    d.display()
                );
            }
            crate::paths::create_private(&key_there)?;
            std::fs::copy(&key_file, &key_there)?;
            Store::open(d)?
        }
        Location::Url(u) => Store::open_shared(keys.path(), u)?,
    };
    outln!(
        "copying {} into {}",
        source.describe(),
        destination.describe()
    );
    let summary = source.copy_into(&destination, |step| outln!("  {step}"))?;
    outln!(
        "copied {} entries in {} trees and {} output chunks; the audit chain verifies ({} events)",
        summary.entries,
        summary.trees,
        summary.chunks,
        summary.audit_events
    );
    if let Location::Url(_) = to {
        outln!(
            "every server of that database needs this key file as its data directory's store.key: {}",
            key_file.display()
        );
    }
    drop(held);
    Ok(())
}

pub async fn cluster_status(cli: &Cli, json: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::Cluster(status) = client.call(Command::ClusterStatus).await? else {
        color_eyre::eyre::bail!("the server answered with something else");
    };
    if json {
        let servers: Vec<serde_json::Value> = status
            .servers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "host": s.host,
                    "pid": s.pid,
                    "started_at": s.started_at.to_utc().to_rfc3339(),
                    "renewed_at": s.renewed_at.to_utc().to_rfc3339(),
                    "alive": s.alive,
                    "this_server": s.this_server,
                    "operations": s.operations,
                    "environments": s.environments,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "store": status.store,
                "shared": status.shared,
                "lease_secs": status.lease_secs,
                "servers": servers,
            })
        );
        return Ok(());
    }
    if !status.shared {
        outln!(
            "store: {} (this server's own; `serve --store URL` or [store] url shares one between jump hosts)",
            status.store
        );
    } else {
        outln!(
            "store: {} (shared; a server silent for {} s is taken for dead)",
            status.store,
            status.lease_secs
        );
    }
    outln!(
        "{:<20} {:<20} {:<8} {:<9} {:<20} {:>10}  ENVIRONMENTS",
        "SERVER",
        "HOST",
        "PID",
        "STATE",
        "LAST RENEWAL",
        "OPERATIONS"
    );
    for s in &status.servers {
        outln!(
            "{:<20} {:<20} {:<8} {:<9} {:<20} {:>10}  {}",
            format!("{:016x}{}", s.id, if s.this_server { "*" } else { "" }),
            crate::text::printable(&s.host),
            s.pid,
            if s.alive { "up" } else { "silent" },
            s.renewed_at.short(),
            s.operations,
            if s.environments.is_empty() {
                "all".to_string()
            } else {
                crate::text::printable(&s.environments.join(", "))
            }
        );
    }
    Ok(())
}
