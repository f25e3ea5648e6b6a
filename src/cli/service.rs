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
        Ok(_) | Err(crate::client::ClientError::Closed) => println!("server stopped"),
        Err(e) => return Err(e.into()),
    }
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
