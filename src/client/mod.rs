//! The connection every front end uses: the CLI verbs and the TUI. Starts a
//! personal server in the background when none serves the data directory.

pub mod terminal;

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
    #[error("the Gatehouse server could not start: {0}")]
    StartFailed(String),
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error(
        "refusing to talk to the server at {path}: it runs as the OS user '{owner}', which is neither you nor the service account '{expected}' (set `service_account` in the configuration or GATEHOUSE_SERVICE_ACCOUNT if '{owner}' is the real one)"
    )]
    Untrusted {
        path: PathBuf,
        owner: String,
        expected: String,
    },
    #[error("refusing to start a server in {path}: it belongs to the OS user '{owner}' (connect to that user's server with --connect)")]
    ForeignDataDir { path: PathBuf, owner: String },
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("the server closed the connection")]
    Closed,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Sink(std::io::Error),
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
type Streams = Arc<Mutex<HashMap<u64, mpsc::Sender<Vec<u8>>>>>;

/// Whom a client will talk to: the server must run as one of these OS users.
#[derive(Clone, Debug)]
pub struct Trust {
    /// The service account a shared server runs as (its login).
    pub service_account: String,
}

impl Default for Trust {
    /// This user's own servers, and the default service account's.
    fn default() -> Trust {
        Trust {
            service_account: crate::config::DEFAULT_SERVICE_ACCOUNT.to_string(),
        }
    }
}

impl Trust {
    /// Whether a server running as `uid` may be told anything.
    fn admits(&self, uid: u32) -> bool {
        uid == nix::unistd::Uid::current().as_raw()
            || crate::paths::login_of_uid(uid).is_some_and(|l| l == self.service_account)
    }
}

/// A connection to the engine.
pub struct Client {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    streams: Streams,
    next_id: AtomicU64,
    events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    login: String,
    notices: Vec<String>,
}

impl Client {
    /// Connects to the server on `socket`, acting as `as_login` when given.
    /// Nothing is sent before the kernel says the server runs as this user
    /// or as the trusted service account: a socket planted by someone else
    /// gets nothing.
    pub async fn connect(
        socket: &Path,
        as_login: Option<&str>,
        trust: &Trust,
    ) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: socket.to_path_buf(),
                source,
            })?;
        let server_uid = stream
            .peer_cred()
            .map_err(|source| ClientError::Connect {
                path: socket.to_path_buf(),
                source,
            })?
            .uid();
        if !trust.admits(server_uid) {
            return Err(ClientError::Untrusted {
                path: socket.to_path_buf(),
                owner: crate::paths::login_of_uid(server_uid)
                    .unwrap_or_else(|| format!("uid{server_uid}")),
                expected: trust.service_account.clone(),
            });
        }
        let (mut reader, mut writer) = stream.into_split();
        let sent = wire::write_hello(
            &mut writer,
            &Hello {
                as_login: as_login.map(str::to_string),
            },
        )
        .await;
        // A server that refuses at once (a connection cap) may close before
        // our hello is written: its refusal is still there to read.
        let welcome: Welcome = match (sent, wire::read_hello(&mut reader).await) {
            (_, Ok(w)) => w,
            (Err(e), Err(_)) => return Err(e.into()),
            (Ok(()), Err(e)) => return Err(e.into()),
        };
        let login = welcome.result.map_err(ClientError::Refused)?;

        let pending: Pending = Arc::default();
        let streams: Streams = Arc::default();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let reader_pending = pending.clone();
        let reader_streams = streams.clone();
        tokio::spawn(async move {
            loop {
                match wire::read_frame::<_, ServerFrame>(&mut reader).await {
                    Ok(Some(ServerFrame::Data { id, bytes })) => {
                        let sender = reader_streams
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get(&id)
                            .cloned();
                        if let Some(sender) = sender {
                            // The caller writes as fast as its disk allows.
                            let _ = sender.send(bytes).await;
                        }
                    }
                    Ok(Some(ServerFrame::Reply { id, result })) => {
                        // The stream of this call (if any) ends before its reply.
                        reader_streams
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
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
            reader_streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            reader_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        });
        Ok(Client {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            streams,
            next_id: AtomicU64::new(1),
            events: Mutex::new(Some(event_rx)),
            login,
            notices: welcome.notices,
        })
    }

    /// What the server said must be told to this user at once.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Connects to the server of `data_dir`, starting one in the background
    /// (as tmux does) when none is running.
    pub async fn connect_or_start(
        data_dir: &Path,
        as_login: Option<&str>,
        trust: &Trust,
    ) -> Result<Client, ClientError> {
        let socket = crate::paths::socket_in(data_dir);
        match Client::connect(&socket, as_login, trust).await {
            Ok(c) => return Ok(c),
            Err(e) if server_gone(&e) => {}
            Err(e) => return Err(e),
        }
        let limit = Duration::from_secs(15);
        let started = tokio::time::Instant::now();
        let since = std::time::SystemTime::now();
        let mut last_spawn: Option<tokio::time::Instant> = None;
        let mut children: Vec<std::process::Child> = Vec::new();
        loop {
            // A server that was exiting when we asked may still hold the lock,
            // which makes a new one give up: ask again every second.
            if last_spawn.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                children.push(start_server(data_dir)?);
                last_spawn = Some(tokio::time::Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            // One that exited saying why it cannot start (its store will
            // not open): said now, not after the whole wait.
            children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            if let Some(why) = start_failure(data_dir, since) {
                return Err(ClientError::StartFailed(why));
            }
            match Client::connect(&socket, as_login, trust).await {
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
        let reply = self.send(id, command).await?;
        Ok(reply.await.map_err(|_| ClientError::Closed)??)
    }

    /// Registers the waiter for `id`'s reply, then sends the command.
    async fn send(
        &self,
        id: u64,
        command: Command,
    ) -> Result<oneshot::Receiver<Result<Response, EngineError>>, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let mut writer = self.writer.lock().await;
        wire::write_frame(&mut *writer, &ClientFrame { id, command }).await?;
        Ok(rx)
    }

    /// Sends a command whose answer is streamed (a backup): `each` gets the
    /// pieces in order, then the reply comes. An error from `each` ends the
    /// call (the server stops when it notices).
    pub async fn call_streaming(
        &self,
        command: Command,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<Response, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (data_tx, mut data_rx) = mpsc::channel(8);
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, data_tx);
        let rx = self.send(id, command).await?;
        while let Some(bytes) = data_rx.recv().await {
            if let Err(e) = each(&bytes) {
                self.streams
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                return Err(ClientError::Sink(e));
            }
        }
        Ok(rx.await.map_err(|_| ClientError::Closed)??)
    }

    /// Opens a session (`Command::Connect`): the device's output arrives on
    /// `output`, the way it ended on `ended`; keystrokes go with
    /// [`Client::session_input`] under `id`.
    pub async fn open_session(
        &self,
        spec: crate::engine::api::ConnectSpec,
    ) -> Result<OpenSession, ClientError> {
        self.open_stream(Command::Connect(spec)).await
    }

    /// Watches an open session: its screen so far, then what the device
    /// sends, on `output`, until it ends.
    pub async fn watch_session(&self, id: crate::domain::Id) -> Result<OpenSession, ClientError> {
        self.open_stream(Command::WatchSession { id }).await
    }

    async fn open_stream(&self, command: Command) -> Result<OpenSession, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (data_tx, output) = mpsc::channel(64);
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, data_tx);
        let ended = self.send(id, command).await?;
        Ok(OpenSession { id, output, ended })
    }

    /// Sends keystrokes or a resize into the session opened as `session`.
    pub async fn session_input(
        &self,
        session: u64,
        input: crate::domain::SessionInput,
    ) -> Result<(), ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut writer = self.writer.lock().await;
        wire::write_frame(
            &mut *writer,
            &ClientFrame {
                id,
                command: Command::SessionInput { session, input },
            },
        )
        .await?;
        Ok(())
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

/// A session opened through [`Client::open_session`].
pub struct OpenSession {
    pub id: u64,
    /// What the device sends (redacted), in order.
    pub output: mpsc::Receiver<Vec<u8>>,
    /// How the session ended (or why it did not open).
    pub ended: oneshot::Receiver<Result<Response, EngineError>>,
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

/// Why a server started after `since` could not open its store, as it
/// wrote it before exiting (see `paths::start_failure_in`).
fn start_failure(data_dir: &Path, since: std::time::SystemTime) -> Option<String> {
    let path = crate::paths::start_failure_in(data_dir);
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    Some(crate::text::printable(text.trim()))
}

/// Starts `gatehouse serve` for a data directory, detached from this terminal.
fn start_server(data_dir: &Path) -> Result<std::process::Child, ClientError> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(data_dir).map_err(ClientError::Spawn)?;
    // Never a personal server in someone else's data directory (root on a
    // shared service's store would leave files the service cannot read).
    let owner = std::fs::metadata(data_dir)
        .map_err(ClientError::Spawn)?
        .uid();
    if owner != nix::unistd::Uid::current().as_raw() {
        return Err(ClientError::ForeignDataDir {
            path: data_dir.to_path_buf(),
            owner: crate::paths::login_of_uid(owner).unwrap_or_else(|| format!("uid{owner}")),
        });
    }
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
        .map_err(ClientError::Spawn)
}
