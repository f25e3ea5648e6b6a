//! The Unix-socket server: one engine, many clients. Identity comes from the
//! socket's peer credentials, never from what a client claims.

pub mod wire;

use crate::engine::{Engine, Event};
use crate::paths;
use color_eyre::eyre::{eyre, Result, WrapErr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use wire::{ClientFrame, Hello, ServerFrame, Welcome};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    /// Exit after this long without clients (personal servers); `None` runs until stopped.
    pub idle_exit: Option<Duration>,
    /// Let every local user connect (a shared jump host); otherwise only the owner.
    pub shared: bool,
    /// On a shared server, only members of this OS group may open the socket.
    pub group: Option<String>,
    /// Where audit events are forwarded (syslog collectors, JSON-lines files).
    pub forward: Vec<crate::forward::Target>,
    pub limits: crate::exec::Limits,
    /// A client whose socket takes no data for this long is not reading:
    /// it is dropped, never waited for.
    pub client_stall: Duration,
}

/// The default for [`ServerOptions::client_stall`].
pub const CLIENT_STALL: Duration = Duration::from_secs(10);

/// How many frames may wait for a client before it counts as not reading.
const CLIENT_QUEUE: usize = 1024;

/// Runs the server until it is asked to stop or, when personal, falls idle.
pub async fn run(options: ServerOptions) -> Result<()> {
    std::fs::create_dir_all(&options.data_dir).wrap_err_with(|| {
        format!(
            "cannot create the data directory {}",
            options.data_dir.display()
        )
    })?;
    std::fs::set_permissions(&options.data_dir, std::fs::Permissions::from_mode(0o700))
        .wrap_err("cannot restrict the data directory to its owner")?;
    let _lock = hold_lock(&options)?;

    let owner = paths::current_login();
    let engine = Engine::open(&options.data_dir, &owner, options.limits.clone())
        .await
        .map_err(|e| eyre!("{e}"))?;
    if options.socket.exists() {
        std::fs::remove_file(&options.socket).wrap_err("cannot remove the stale socket")?;
    }
    let listener = UnixListener::bind(&options.socket)
        .wrap_err_with(|| format!("cannot listen on {}", options.socket.display()))?;
    if let Err(e) = restrict_socket(&options) {
        let _ = std::fs::remove_file(&options.socket);
        return Err(e);
    }
    tracing::info!(socket = %options.socket.display(), owner = %owner, "server listening");

    crate::forward::spawn(engine.clone(), options.forward.clone());

    let clients = Arc::new(AtomicUsize::new(0));
    let (left_tx, mut left_rx) = mpsc::unbounded_channel::<()>();
    let own_uid = nix::unistd::Uid::current().as_raw();
    let idle = options.idle_exit;
    let mut idle_since = Some(tokio::time::Instant::now());
    let result = loop {
        let idle_deadline = async {
            match (idle, idle_since) {
                (Some(d), Some(since)) => tokio::time::sleep_until(since + d).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                };
                clients.fetch_add(1, Ordering::SeqCst);
                idle_since = None;
                let engine = engine.clone();
                let clients = clients.clone();
                let left = left_tx.clone();
                let stall = options.client_stall;
                tokio::spawn(async move {
                    if let Err(e) = serve_client(engine, stream, own_uid, stall).await {
                        tracing::info!(error = %e, "client connection ended with an error");
                    }
                    clients.fetch_sub(1, Ordering::SeqCst);
                    let _ = left.send(());
                });
            }
            Some(()) = left_rx.recv() => {
                if clients.load(Ordering::SeqCst) == 0 {
                    idle_since = Some(tokio::time::Instant::now());
                }
            }
            _ = idle_deadline => {
                if engine.busy() {
                    // Scheduled or running work keeps a personal server up.
                    idle_since = Some(tokio::time::Instant::now());
                    continue;
                }
                tracing::info!("no clients and nothing to run: exiting");
                break Ok(());
            }
            _ = engine.shutdown_requested() => {
                tracing::info!("shutdown requested");
                break Ok(());
            }
            _ = shutdown_signal() => {
                tracing::info!("signal received: exiting");
                break Ok(());
            }
        }
    };
    let _ = std::fs::remove_file(&options.socket);
    // Let connections write their last answers (the shutdown's among them).
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while clients.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.store().flush().await.map_err(|e| eyre!("{e}"))?;
    result
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        }
        _ => std::future::pending().await,
    }
}

/// Sets who may open the socket: its owner (personal), one group, or every
/// local user, who still has to be a Gatehouse user to get past the hello.
fn restrict_socket(options: &ServerOptions) -> Result<()> {
    let mode = match (&options.group, options.shared) {
        (_, false) => 0o600,
        (Some(name), true) => {
            let group = nix::unistd::Group::from_name(name)
                .wrap_err_with(|| format!("cannot look up the group '{name}'"))?
                .ok_or_else(|| eyre!("--group: there is no OS group named '{name}'"))?;
            nix::unistd::chown(&options.socket, None, Some(group.gid))
                .wrap_err_with(|| {
                    format!("cannot give the socket to the group '{name}' (the service account must be a member of it)")
                })?;
            0o660
        }
        (None, true) => 0o666,
    };
    std::fs::set_permissions(&options.socket, std::fs::Permissions::from_mode(mode))
        .wrap_err("cannot set the socket's permissions")?;
    Ok(())
}

/// Takes the data directory's server lock, or says that a server holds it.
fn hold_lock(options: &ServerOptions) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = paths::lock_in(&options.data_dir);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .wrap_err_with(|| format!("cannot open {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        eyre!(
            "a Gatehouse server already serves {}; connect to it instead",
            options.data_dir.display()
        )
    })
}

/// Serves one client: hello, then commands and, once subscribed, events.
async fn serve_client(
    engine: Arc<Engine>,
    stream: UnixStream,
    own_uid: u32,
    stall: Duration,
) -> Result<()> {
    let peer_uid = stream.peer_cred()?.uid();
    let (mut reader, mut writer) = stream.into_split();
    let hello: Hello = match wire::read_hello(&mut reader).await {
        Ok(h) => h,
        Err(e) => {
            let _ = wire::write_hello(
                &mut writer,
                &Welcome {
                    result: Err(e.to_string()),
                },
            )
            .await;
            return Err(e.into());
        }
    };
    let os_login = paths::login_of_uid(peer_uid).unwrap_or_else(|| format!("uid{peer_uid}"));
    let login = match hello.as_login {
        Some(other) if other != os_login && peer_uid != own_uid => {
            let message = format!(
                "--as is refused: only the server's own account may act as another user ('{os_login}' asked to be '{other}')"
            );
            wire::write_hello(
                &mut writer,
                &Welcome {
                    result: Err(message.clone()),
                },
            )
            .await?;
            return Err(eyre!(message));
        }
        Some(other) => other,
        None => os_login.clone(),
    };
    if let Err(message) = engine.admits(&login) {
        wire::write_hello(
            &mut writer,
            &Welcome {
                result: Err(message.clone()),
            },
        )
        .await?;
        tracing::info!(%os_login, %login, "connection refused: {message}");
        return Ok(());
    }
    wire::write_hello(
        &mut writer,
        &Welcome {
            result: Ok(login.clone()),
        },
    )
    .await?;
    tracing::info!(%os_login, %login, "client connected");

    // One writer task per client, fed through a bounded queue: a client that
    // stops reading is dropped, never waited for by the engine. A write that
    // makes no progress for `stall` means the client is not reading.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
    let writer_login = login.clone();
    let writer_task = tokio::spawn(async move {
        while let Some(body) = out_rx.recv().await {
            match tokio::time::timeout(stall, wire::write_encoded(&mut writer, &body)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::warn!(login = %writer_login, "client has not read for {stall:?}: dropping it");
                    break;
                }
            }
        }
    });
    // Frames are read on their own task: reading is not cancel-safe, and
    // the loop below races commands against events.
    let (frame_tx, mut frames) = mpsc::channel::<Result<ClientFrame, wire::WireError>>(16);
    let reader_task = tokio::spawn(async move {
        loop {
            match wire::read_frame::<_, ClientFrame>(&mut reader).await {
                Ok(Some(frame)) => {
                    if frame_tx.send(Ok(frame)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = frame_tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    let mut events: Option<crate::engine::Subscription> = None;
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let frame = frame?;
                if matches!(frame.command, crate::engine::Command::Subscribe) && events.is_none() {
                    events = Some(engine.subscribe());
                }
                let result = engine.handle(&login, frame.command).await;
                let body = wire::encode(&ServerFrame::Reply { id: frame.id, result })?;
                if out_tx.send(body).await.is_err() {
                    break;
                }
            }
            event = recv_event(&mut events) => {
                match event {
                    Ok(event) => {
                        let is_output = matches!(event, Event::Output { .. });
                        let body = wire::encode(&ServerFrame::Event(event))?;
                        match out_tx.try_send(body) {
                            Ok(()) => {}
                            // Output is in the store: a slow client reads it back from there.
                            Err(_) if is_output => continue,
                            Err(mpsc::error::TrySendError::Closed(_)) => break,
                            // A burst: give a client that reads some time to catch up.
                            Err(mpsc::error::TrySendError::Full(body)) => {
                                if out_tx.send_timeout(body, stall).await.is_err() {
                                    tracing::warn!(%login, "client is not reading its events: dropping it");
                                    break;
                                }
                            }
                        }
                    }
                    Err(skipped) => tracing::info!(%login, skipped, "client fell behind on events"),
                }
            }
        }
    }
    drop(out_tx);
    reader_task.abort();
    let _ = writer_task.await;
    Ok(())
}

/// The next event for a subscribed client; never resolves for others.
async fn recv_event(events: &mut Option<crate::engine::Subscription>) -> Result<Event, u64> {
    match events {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}
