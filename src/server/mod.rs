//! The Unix-socket server: one engine, many clients. Identity comes from the
//! socket's peer credentials, never from what a client claims.

pub mod bounds;
pub mod wire;

use crate::engine::{Engine, Event};
use crate::paths;
use color_eyre::eyre::{eyre, Result, WrapErr};
use std::collections::HashMap;
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
    /// Connections one OS user may hold open at once (hellos included).
    pub connections_per_user: usize,
    /// How long a new connection has to send its hello.
    pub hello_timeout: Duration,
}

/// The default for [`ServerOptions::client_stall`].
pub const CLIENT_STALL: Duration = Duration::from_secs(10);
/// The default for [`ServerOptions::connections_per_user`].
pub const CONNECTIONS_PER_USER: usize = 32;
/// The default for [`ServerOptions::hello_timeout`].
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Backed-up output of a streamed answer goes out in pieces of this size.
const DATA_PIECE: usize = 256 * 1024;

/// Commands of one connection that run at once; more wait to be read.
const COMMANDS_IN_FLIGHT: usize = 8;

/// How many frames may wait for a client before it counts as not reading.
const CLIENT_QUEUE: usize = 1024;
/// Keystroke messages a session holds before the client's frames wait.
const SESSION_INPUT_QUEUE: usize = 256;
/// Output pieces a session holds before it waits for the client.
const SESSION_OUTPUT_QUEUE: usize = 64;

/// Runs the server until it is asked to stop or, when personal, falls idle.
pub async fn run(options: ServerOptions) -> Result<()> {
    std::fs::create_dir_all(&options.data_dir).wrap_err_with(|| {
        format!(
            "cannot create the data directory {}",
            options.data_dir.display()
        )
    })?;
    refuse_foreign_data_dir(&options.data_dir)?;
    std::fs::set_permissions(&options.data_dir, std::fs::Permissions::from_mode(0o700))
        .wrap_err("cannot restrict the data directory to its owner")?;
    let _lock = hold_lock(&options)?;
    for target in &options.forward {
        crate::forward::check_target(target, &options.data_dir).map_err(|e| eyre!(e))?;
    }
    let descriptors = bounds::raise_descriptor_limit();

    let owner = paths::current_login();
    let engine = match Engine::open(&options.data_dir, &owner, options.limits.clone()).await {
        Ok(engine) => engine,
        Err(e) => {
            // A personal server's stderr goes nowhere: the log says why,
            // and so does a file its client reads.
            tracing::error!(error = %e, "the store cannot be opened");
            let path = paths::start_failure_in(&options.data_dir);
            let _ = std::fs::remove_file(&path);
            if let Ok(mut f) = paths::create_private(&path) {
                use std::io::Write;
                let _ = writeln!(f, "{e}");
            }
            return Err(eyre!("{e}"));
        }
    };
    if options.socket.exists() {
        std::fs::remove_file(&options.socket).wrap_err("cannot remove the stale socket")?;
    }
    let listener = UnixListener::bind(&options.socket)
        .wrap_err_with(|| format!("cannot listen on {}", options.socket.display()))?;
    if let Err(e) = restrict_socket(&options) {
        let _ = std::fs::remove_file(&options.socket);
        return Err(e);
    }
    tracing::info!(socket = %options.socket.display(), owner = %owner, descriptors, "server listening");
    engine
        .audit_server(
            "server.start",
            format!(
                "gatehouse {} as {owner}, pid {}, socket {}{}",
                env!("CARGO_PKG_VERSION"),
                std::process::id(),
                options.socket.display(),
                if options.shared {
                    ", shared"
                } else {
                    ", personal"
                }
            ),
        )
        .await
        .map_err(|e| eyre!("{e}"))?;

    crate::forward::spawn(engine.clone(), options.forward.clone());

    let clients = Arc::new(AtomicUsize::new(0));
    let (left_tx, mut left_rx) = mpsc::unbounded_channel::<()>();
    let own_uid = nix::unistd::Uid::current().as_raw();
    let counts = bounds::ConnectionCounts::new(options.connections_per_user);
    let logs = Arc::new(bounds::LogLimiter::default());
    let mut reserve = bounds::DescriptorReserve::new();
    let mut accept_backoff = Duration::ZERO;
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
                let stream = match accepted {
                    Ok((s, _)) => {
                        accept_backoff = Duration::ZERO;
                        s
                    }
                    Err(e) => {
                        if bounds::out_of_descriptors(&e) {
                            // Take the waiting connection with the reserved
                            // descriptor and close it, so the queue moves.
                            // Never waits: the loop must stay free to stop.
                            reserve.release();
                            let waiting =
                                tokio::time::timeout(Duration::from_millis(10), listener.accept());
                            if let Ok(Ok((s, _))) = waiting.await {
                                drop(s);
                            }
                            reserve.refill();
                        }
                        log_limited(&logs, "accept failed", |suppressed| {
                            tracing::warn!(error = %e, suppressed, "accept failed");
                        });
                        // Errors that repeat must not spin the loop.
                        accept_backoff = (accept_backoff * 2)
                            .clamp(Duration::from_millis(5), Duration::from_secs(1));
                        tokio::time::sleep(accept_backoff).await;
                        continue;
                    }
                };
                let peer_uid = match stream.peer_cred() {
                    Ok(cred) => cred.uid(),
                    Err(_) => continue,
                };
                let Some(slot) = counts.take(peer_uid) else {
                    // Off the accept loop: naming the user may ask the directory.
                    let (cap, logs) = (counts.cap(), logs.clone());
                    tokio::spawn(async move { refuse_at_cap(stream, peer_uid, cap, &logs) });
                    continue;
                };
                clients.fetch_add(1, Ordering::SeqCst);
                idle_since = None;
                let engine = engine.clone();
                let clients = clients.clone();
                let left = left_tx.clone();
                let logs = logs.clone();
                let limits = ClientLimits {
                    stall: options.client_stall,
                    hello: options.hello_timeout,
                };
                tokio::spawn(async move {
                    if let Err(e) = serve_client(engine, stream, peer_uid, own_uid, limits, logs.clone()).await {
                        let text = bounds_text(&e.to_string());
                        log_limited(&logs, &format!("ended {peer_uid}"), |suppressed| {
                            tracing::info!(uid = peer_uid, error = %text, suppressed, "client connection ended with an error");
                        });
                    }
                    drop(slot);
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
                break Ok("idle: no clients and nothing to run");
            }
            _ = engine.shutdown_requested() => {
                tracing::info!("shutdown requested");
                break Ok("shutdown requested");
            }
            _ = shutdown_signal() => {
                tracing::info!("signal received: exiting");
                break Ok("stopped by a signal");
            }
        }
    };
    if let Ok(why) = &result {
        if let Err(e) = engine
            .audit_server("server.stop", format!("pid {}: {why}", std::process::id()))
            .await
        {
            tracing::error!(error = %e, "cannot audit the server's stop");
        }
    }
    engine.leave_cluster();
    let result = result.map(|_| ());
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

/// The bounds one connection is served under.
#[derive(Clone, Copy)]
struct ClientLimits {
    stall: Duration,
    hello: Duration,
}

/// Writes a line unless the same kind of line was written too often lately.
fn log_limited(logs: &bounds::LogLimiter, key: &str, write: impl FnOnce(u64)) {
    if let bounds::LogVerdict::Write { suppressed } = logs.check(key) {
        write(suppressed);
    }
}

/// Text from a client, made safe and short for the log and for answers.
fn bounds_text(text: &str) -> String {
    crate::text::clipped(text, 200)
}

/// A user at the connection cap is told so and the connection is closed at
/// once; nothing of theirs is read.
fn refuse_at_cap(stream: UnixStream, uid: u32, cap: usize, logs: &bounds::LogLimiter) {
    let login = paths::login_of_uid(uid).unwrap_or_else(|| format!("uid{uid}"));
    let welcome = Welcome::refused(format!(
        "OS user '{login}' already has {cap} connections open to this server (the limit); close some and try again"
    ));
    if let Ok(body) = wire::encode_hello(&welcome) {
        // The socket's buffer is empty: a small frame goes at once or not at all.
        let _ = stream.try_write(&body);
    }
    log_limited(logs, &format!("cap {uid}"), |suppressed| {
        tracing::warn!(%login, cap, suppressed, "connection refused: at the per-user connection limit");
    });
}

/// Refuses to serve a data directory that belongs to another OS user: its
/// files would end up owned by this one (root on a service's directory).
fn refuse_foreign_data_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)
        .wrap_err_with(|| format!("cannot read the data directory {}", dir.display()))?;
    let me = nix::unistd::Uid::current().as_raw();
    if meta.uid() != me {
        let owner = paths::login_of_uid(meta.uid()).unwrap_or_else(|| format!("uid{}", meta.uid()));
        return Err(eyre!(
            "the data directory {} belongs to the OS user '{owner}': only '{owner}' may serve it (connect to its server with --connect)",
            dir.display()
        ));
    }
    Ok(())
}

/// Why a connection ended early. Not an eyre report: a neighbour can end
/// connections at will, and a report may capture a backtrace each time.
type ConnectionEnd = Box<dyn std::error::Error + Send + Sync>;

/// Serves one client: hello, then commands and, once subscribed, events.
async fn serve_client(
    engine: Arc<Engine>,
    stream: UnixStream,
    peer_uid: u32,
    own_uid: u32,
    limits: ClientLimits,
    logs: Arc<bounds::LogLimiter>,
) -> Result<(), ConnectionEnd> {
    let stall = limits.stall;
    let (mut reader, mut writer) = stream.into_split();
    let hello: Hello = match tokio::time::timeout(limits.hello, wire::read_hello(&mut reader)).await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let _ = tokio::time::timeout(
                stall,
                wire::write_hello(&mut writer, &Welcome::refused(e.to_string())),
            )
            .await;
            return Err(e.to_string().into());
        }
        Err(_) => {
            let message = format!("no hello within {:?}", limits.hello);
            let _ = tokio::time::timeout(
                stall,
                wire::write_hello(&mut writer, &Welcome::refused(message.clone())),
            )
            .await;
            return Err(message.into());
        }
    };
    let os_login = paths::login_of_uid(peer_uid).unwrap_or_else(|| format!("uid{peer_uid}"));
    let login = match hello.as_login {
        Some(other) if other != os_login && peer_uid != own_uid => {
            let message = format!(
                "--as is refused: only the server's own account may act as another user ('{os_login}' asked to be '{}')",
                bounds_text(&other)
            );
            wire::write_hello(&mut writer, &Welcome::refused(message.clone())).await?;
            let _ = engine
                .refused(&os_login, "connection.refused", "server", &message)
                .await;
            return Err(message.into());
        }
        Some(other) => other,
        None => os_login.clone(),
    };
    if let Err(message) = engine.admit(&login).await {
        let message = bounds_text(&message);
        wire::write_hello(&mut writer, &Welcome::refused(message.clone())).await?;
        let _ = engine
            .refused(&os_login, "connection.refused", "server", &message)
            .await;
        log_limited(&logs, &format!("refused {peer_uid}"), |suppressed| {
            tracing::info!(%os_login, login = %bounds_text(&login), suppressed, "connection refused: {message}");
        });
        return Ok(());
    }
    let notices = engine.take_notices(&login).await.unwrap_or_default();
    wire::write_hello(
        &mut writer,
        &Welcome {
            result: Ok(login.clone()),
            notices,
        },
    )
    .await?;
    let shown = bounds_text(&login);
    log_limited(&logs, &format!("connected {peer_uid}"), |suppressed| {
        tracing::info!(%os_login, login = %shown, suppressed, "client connected");
    });

    // One writer task per client, fed through a bounded queue: a client that
    // stops reading is dropped, never waited for by the engine. A write that
    // makes no progress for `stall` means the client is not reading.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
    let writer_login = shown.clone();
    let writer_logs = logs.clone();
    let writer_task = tokio::spawn(async move {
        while let Some(body) = out_rx.recv().await {
            match tokio::time::timeout(stall, wire::write_encoded(&mut writer, &body)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    log_limited(&writer_logs, &format!("stalled {peer_uid}"), |suppressed| {
                        tracing::warn!(login = %writer_login, suppressed, "client has not read for {stall:?}: dropping it");
                    });
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
    let mut events: Option<(crate::engine::Subscription, crate::engine::EventFilter)> = None;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(COMMANDS_IN_FLIGHT));
    // The sessions open on this connection, by the id of their Connect.
    let mut sessions: HashMap<u64, mpsc::Sender<crate::domain::SessionInput>> = HashMap::new();
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let frame = frame?;
                if let crate::engine::Command::SessionInput { session, input } = frame.command {
                    // Keystrokes go straight to their session, in order,
                    // unanswered; a session that ended takes no more.
                    if let Some(tx) = sessions.get(&session) {
                        if tx.send(input).await.is_err() {
                            sessions.remove(&session);
                        }
                    }
                    continue;
                }
                match frame.command {
                    crate::engine::Command::Connect(spec) => {
                        let (input_tx, input_rx) = mpsc::channel(SESSION_INPUT_QUEUE);
                        sessions.insert(frame.id, input_tx);
                        let (engine, os_login, login, out_tx) =
                            (engine.clone(), os_login.clone(), login.clone(), out_tx.clone());
                        tokio::spawn(stream_session(frame.id, out_tx, move |bytes| async move {
                            crate::store::acting_as(
                                &os_login,
                                &login,
                                engine.session(&login, spec, input_rx, bytes),
                            )
                            .await
                        }));
                        continue;
                    }
                    crate::engine::Command::WatchSession { id } => {
                        let (engine, os_login, login, out_tx) =
                            (engine.clone(), os_login.clone(), login.clone(), out_tx.clone());
                        tokio::spawn(stream_session(frame.id, out_tx, move |bytes| async move {
                            crate::store::acting_as(
                                &os_login,
                                &login,
                                engine.watch_session(&login, id, bytes),
                            )
                            .await
                        }));
                        continue;
                    }
                    _ => {}
                }
                if matches!(frame.command, crate::engine::Command::Subscribe) && events.is_none() {
                    // Each subscriber gets only what it may see.
                    if let Ok(filter) = engine.event_filter(&login) {
                        events = Some((engine.subscribe(), filter));
                    }
                }
                // Each command runs on its own task, so that a slow one (a
                // host-key scan) holds back neither the others' answers nor
                // the events; a connection has at most COMMANDS_IN_FLIGHT.
                let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
                let (engine, os_login, login, out_tx) =
                    (engine.clone(), os_login.clone(), login.clone(), out_tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let result = match frame.command {
                        crate::engine::Command::Backup { path } => {
                            stream_backup(&engine, (&os_login, &login), &path, frame.id, &out_tx)
                                .await
                        }
                        // Under --as the audit names both accounts.
                        command => {
                            crate::store::acting_as(&os_login, &login, engine.handle(&login, command))
                                .await
                        }
                    };
                    // An answer too large to send is answered with why.
                    let body = wire::encode(&ServerFrame::Reply { id: frame.id, result })
                        .or_else(|e| {
                            wire::encode(&ServerFrame::Reply {
                                id: frame.id,
                                result: Err(crate::engine::EngineError::Protocol(e.to_string())),
                            })
                        });
                    if let Ok(body) = body {
                        let _ = out_tx.send(body).await;
                    }
                });
            }
            event = recv_event(&mut events) => {
                match event {
                    Ok(event) => {
                        let Some((_, filter)) = events.as_mut() else { continue };
                        match engine.judge(filter, &event) {
                            crate::engine::Verdict::Send => {}
                            crate::engine::Verdict::Skip => continue,
                            crate::engine::Verdict::Close(why) => {
                                tracing::info!(login = %shown, "closing the connection: {}", bounds_text(&why));
                                break;
                            }
                        }
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
                                    log_limited(&logs, &format!("not reading {peer_uid}"), |suppressed| {
                                        tracing::warn!(login = %shown, suppressed, "client is not reading its events: dropping it");
                                    });
                                    break;
                                }
                            }
                        }
                    }
                    Err(skipped) => log_limited(&logs, &format!("behind {peer_uid}"), |suppressed| {
                        tracing::info!(login = %shown, skipped, suppressed, "client fell behind on events");
                    }),
                }
            }
        }
    }
    drop(out_tx);
    // Sessions on this connection end with it (their input closes), and
    // only then do their last frames stop coming to the writer.
    drop(sessions);
    reader_task.abort();
    let _ = writer_task.await;
    Ok(())
}

/// Streams a session (opened, or watched) to the client: the bytes `work`
/// sends go out as `Data` frames of the command's id, then its reply.
async fn stream_session<F, Fut>(id: u64, out: mpsc::Sender<Vec<u8>>, work: F)
where
    F: FnOnce(mpsc::Sender<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = Result<crate::engine::Response, crate::engine::EngineError>>,
{
    let (bytes_tx, mut bytes_rx) = mpsc::channel::<Vec<u8>>(SESSION_OUTPUT_QUEUE);
    let frames = out.clone();
    // A client that stops reading holds the device back (SSH flow
    // control), and is dropped by the writer after `stall`.
    let forward = tokio::spawn(async move {
        while let Some(bytes) = bytes_rx.recv().await {
            let Ok(body) = wire::encode(&ServerFrame::Data { id, bytes }) else {
                continue;
            };
            if frames.send(body).await.is_err() {
                break;
            }
        }
    });
    let result = work(bytes_tx).await;
    let _ = forward.await;
    if let Ok(body) = wire::encode(&ServerFrame::Reply { id, result }) {
        let _ = out.send(body).await;
    }
}

/// Streams a backup to the client that asked, in `Data` frames before its
/// reply: the client writes the file itself, with its own permissions, so
/// the server never writes where a caller points it.
async fn stream_backup(
    engine: &Arc<Engine>,
    (os_login, login): (&str, &str),
    path: &std::path::Path,
    id: u64,
    out: &mpsc::Sender<Vec<u8>>,
) -> Result<crate::engine::Response, crate::engine::EngineError> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
    let backup = {
        let engine = engine.clone();
        let (os_login, login) = (os_login.to_string(), login.to_string());
        let path = path.to_path_buf();
        // Under --as the audit names both accounts, as for every command.
        tokio::spawn(async move {
            let work = engine.backup(&login, &path, PieceWriter::new(tx));
            crate::store::acting_as(&os_login, &login, work).await
        })
    };
    while let Some(bytes) = rx.recv().await {
        let body = wire::encode(&ServerFrame::Data { id, bytes })
            .map_err(|e| crate::engine::EngineError::Protocol(e.to_string()))?;
        if out.send(body).await.is_err() {
            // The client left: the backup stops at its next write.
            break;
        }
    }
    drop(rx);
    backup
        .await
        .map_err(|e| crate::engine::EngineError::Store(format!("the backup stopped: {e}")))?
}

/// A writer that hands what it is given on in pieces of [`DATA_PIECE`].
struct PieceWriter {
    buffer: Vec<u8>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl PieceWriter {
    fn new(tx: mpsc::Sender<Vec<u8>>) -> PieceWriter {
        PieceWriter {
            buffer: Vec::with_capacity(DATA_PIECE),
            tx,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(DATA_PIECE));
        self.tx.blocking_send(piece).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for PieceWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = DATA_PIECE - self.buffer.len();
        let n = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..n]);
        if self.buffer.len() >= DATA_PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The next event for a subscribed client; never resolves for others.
async fn recv_event(
    events: &mut Option<(crate::engine::Subscription, crate::engine::EventFilter)>,
) -> Result<Event, u64> {
    match events {
        Some((subscription, _)) => subscription.recv().await,
        None => std::future::pending().await,
    }
}
