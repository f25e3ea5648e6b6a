//! The connection every front end uses: the CLI verbs and the TUI. Starts a
//! personal server in the background when none serves the data directory.

use crate::engine::{Command, EngineError, Event, Response};
use crate::server::wire::{self, ClientFrame, Hello, ServerFrame, Welcome};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the Gatehouse server at {path}: {source}{}",
        permission_hint(source)
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the Gatehouse server did not start within {0:?}; see its log in {1}")]
    StartTimeout(Duration, PathBuf),
    #[error("cannot start the Gatehouse server: {0}")]
    Spawn(std::io::Error),
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("the server closed the connection")]
    Closed,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A refused socket on a shared host usually means a group restriction.
fn permission_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (the socket admits only its owner or one group: ask the administrator to add you to it)"
    } else {
        ""
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, EngineError>>>>>;

/// A connection to the engine.
pub struct Client {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    login: String,
}

impl Client {
    /// Connects to the server on `socket`, acting as `as_login` when given.
    pub async fn connect(socket: &Path, as_login: Option<&str>) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: socket.to_path_buf(),
                source,
            })?;
        let (mut reader, mut writer) = stream.into_split();
        wire::write_hello(
            &mut writer,
            &Hello {
                as_login: as_login.map(str::to_string),
            },
        )
        .await?;
        let welcome: Welcome = wire::read_hello(&mut reader).await?;
        let login = welcome.result.map_err(ClientError::Refused)?;

        let pending: Pending = Arc::default();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let reader_pending = pending.clone();
        tokio::spawn(async move {
            loop {
                match wire::read_frame::<_, ServerFrame>(&mut reader).await {
                    Ok(Some(ServerFrame::Reply { id, result })) => {
                        let waiter = reader_pending
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(result);
                        }
                    }
                    Ok(Some(ServerFrame::Event(event))) => {
                        let _ = event_tx.send(event);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            // Dropping the waiters tells every pending call the server is gone.
            reader_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        });
        Ok(Client {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            next_id: AtomicU64::new(1),
            events: Mutex::new(Some(event_rx)),
            login,
        })
    }

    /// Connects to the server of `data_dir`, starting one in the background
    /// (as tmux does) when none is running.
    pub async fn connect_or_start(
        data_dir: &Path,
        as_login: Option<&str>,
    ) -> Result<Client, ClientError> {
        let socket = crate::paths::socket_in(data_dir);
        match Client::connect(&socket, as_login).await {
            Ok(c) => return Ok(c),
            Err(e) if server_gone(&e) => {}
            Err(e) => return Err(e),
        }
        let limit = Duration::from_secs(15);
        let started = tokio::time::Instant::now();
        let mut last_spawn: Option<tokio::time::Instant> = None;
        loop {
            // A server that was exiting when we asked may still hold the lock,
            // which makes a new one give up: ask again every second.
            if last_spawn.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                start_server(data_dir)?;
                last_spawn = Some(tokio::time::Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            match Client::connect(&socket, as_login).await {
                Ok(c) => return Ok(c),
                Err(e) if server_gone(&e) && started.elapsed() < limit => continue,
                Err(e) if server_gone(&e) => {
                    return Err(ClientError::StartTimeout(
                        limit,
                        crate::paths::logs_in(data_dir),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The Gatehouse login the server took this connection for.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Sends a command and waits for its answer.
    pub async fn call(&self, command: Command) -> Result<Response, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        {
            let mut writer = self.writer.lock().await;
            wire::write_frame(&mut *writer, &ClientFrame { id, command }).await?;
        }
        Ok(rx.await.map_err(|_| ClientError::Closed)??)
    }

    /// Subscribes to events; the receiver is handed out once.
    pub async fn subscribe(&self) -> Result<mpsc::UnboundedReceiver<Event>, ClientError> {
        self.call(Command::Subscribe).await?;
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or(ClientError::Closed)
    }
}

/// Whether an error means no server is there (or it left while we connected).
fn server_gone(e: &ClientError) -> bool {
    match e {
        // A connection still waiting to be accepted when the server's
        // socket closes (it was killed, or was exiting as we came) is reset.
        ClientError::Connect { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::NotFound
                | std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
        ),
        ClientError::Wire(wire::WireError::Io(_))
        | ClientError::Wire(wire::WireError::NotGatehouse) => true,
        _ => false,
    }
}

/// Starts `gatehouse serve` for a data directory, detached from this terminal.
fn start_server(data_dir: &Path) -> Result<(), ClientError> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(data_dir).map_err(ClientError::Spawn)?;
    let exe = std::env::current_exe().map_err(ClientError::Spawn)?;
    // The server finds the same configuration through GATEHOUSE_CONFIG, inherited.
    std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("serve")
        .arg("--personal")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(ClientError::Spawn)?;
    Ok(())
}
