//! Verbs about the server itself.

use super::Cli;
use crate::engine::{Command, Response};
use color_eyre::eyre::Result;

pub async fn shutdown(cli: &Cli) -> Result<()> {
    let socket = match &cli.connect {
        Some(s) => s.clone(),
        None => crate::paths::socket_in(&cli.data_dir()),
    };
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
    if cli.connect.is_none() {
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
