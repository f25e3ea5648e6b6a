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
    let client = match crate::client::Client::connect(&socket, cli.as_login.as_deref()).await {
        Ok(c) => c,
        Err(crate::client::ClientError::Connect { .. }) => {
            println!("no server is running for {}", socket.display());
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
    println!("server stopped");
    Ok(())
}

pub async fn whoami(cli: &Cli) -> Result<()> {
    let client = cli.client().await?;
    if let Response::Whoami {
        login,
        superuser,
        server_owner,
    } = client.call(Command::Whoami).await?
    {
        println!(
            "{login}{} (server run by {server_owner})",
            if superuser { ", Superuser" } else { "" }
        );
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
    let path = std::path::absolute(file)?;
    let client = cli.client().await?;
    let Response::Backup(summary) = client.call(Command::Backup { path: path.clone() }).await?
    else {
        color_eyre::eyre::bail!("the server answered with something else");
    };
    println!(
        "backed up {} entries in {} trees ({} bytes) to {}",
        summary.entries,
        summary.trees,
        summary.bytes,
        path.display()
    );
    println!(
        "the key file is not in the backup: keep a copy of {} apart from it",
        crate::paths::key_in(&cli.data_dir()).display()
    );
    Ok(())
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
    println!(
        "restored {} entries in {} trees into {}",
        summary.entries,
        summary.trees,
        dir.display()
    );
    if !crate::paths::key_in(&dir).exists() {
        println!(
            "no key file at {}: copy the original store.key there, or stored secrets cannot be opened",
            crate::paths::key_in(&dir).display()
        );
    }
    Ok(())
}
