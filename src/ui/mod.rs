//! The full-screen TUI. The event loop owns the terminal; engine calls run
//! on tokio tasks and report back through a channel, so the UI never waits
//! on I/O. Many messages, one render.

mod app;
mod command;
mod form;
mod keys;
mod oplog;
mod outside;
mod overlay;
mod record_form;
mod request_form;
mod revisions;
mod screens;
mod tabs;
mod theme;

pub use app::{App, Call, Confirm, Failure, Message};
pub use keys::{Action, Keymap};
pub use oplog::OperationLog;
pub use screens::Tab;
pub use theme::Theme;

use crate::client::Client;
use crate::engine::{Command, Response};
use color_eyre::eyre::Result;
use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest the screen goes without a redraw while something changes.
const FRAME: Duration = Duration::from_millis(33);

/// Runs the TUI on a connected client until the user quits. The caller
/// settles the look and the keys, and connects, before the terminal is
/// taken, so that a mistake or a refusal prints plainly.
pub async fn run(client: Client, theme: Theme, keys: Keymap) -> Result<()> {
    let client = Arc::new(client);
    let notices: Vec<String> = client.notices().to_vec();
    let mut engine_events = client.subscribe().await?;
    let login = client.login().to_string();

    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    // Terminal input is read on its own thread: crossterm's read blocks.
    // It parks while a session, a watch or a replay has the terminal.
    let key_tx = tx.clone();
    let pause = Pause::default();
    let reader_pause = pause.clone();
    std::thread::spawn(move || loop {
        if reader_pause.wanted.load(Ordering::Acquire) {
            reader_pause.parked.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        reader_pause.parked.store(false, Ordering::Release);
        match event::poll(Duration::from_millis(50)) {
            Ok(true) => match event::read() {
                Ok(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                    if key_tx.send(Message::Key(k)).is_err() {
                        break;
                    }
                }
                Ok(TermEvent::Mouse(m)) => {
                    if key_tx.send(Message::Mouse(m)).is_err() {
                        break;
                    }
                }
                Ok(TermEvent::Resize(..)) => {
                    if key_tx.send(Message::Resized).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            },
            Ok(false) => {
                if key_tx.is_closed() {
                    break;
                }
            }
            Err(_) => break,
        }
    });
    let event_tx = tx.clone();
    tokio::spawn(async move {
        while let Some(e) = engine_events.recv().await {
            if event_tx.send(Message::Engine(e)).is_err() {
                break;
            }
        }
        let _ = event_tx.send(Message::Disconnected);
    });

    // Who runs the server, and where: shown on the top line. A server run
    // by the user at the keyboard is their personal one.
    let mut personal = false;
    let server = match client.call(Command::Whoami).await {
        Ok(Response::Whoami {
            server_owner,
            roles,
            login: me,
            ..
        }) => {
            personal = server_owner == me;
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default();
            // Roles held through OS groups are said where they come from.
            let by_group: Vec<String> = roles
                .iter()
                .filter_map(|(role, source)| {
                    source
                        .strip_prefix("group ")
                        .map(|g| format!("{role} via @{g}"))
                })
                .collect();
            if by_group.is_empty() {
                format!("{host} · server {server_owner}")
            } else {
                format!("{host} · server {server_owner} · {}", by_group.join(", "))
            }
        }
        _ => String::new(),
    };
    let mut app = App::new(login, theme);
    app.server = crate::text::printable(&server);
    app.personal = personal;
    app.keys = keys;
    // What the server must tell this user at once (a reset second factor).
    if !notices.is_empty() {
        app.status = Some((notices.join(" · "), true));
    }
    // ratatui::init installs a panic hook that restores the terminal before
    // color-eyre's report is printed.
    let mut terminal = ratatui::init();
    // Mouse reporting goes off on every way out, a panic included.
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        previous(info);
    }));
    for request in app.start() {
        spawn_request(&client, &tx, request);
    }
    let result = async {
        terminal.draw(|f| app.draw(f))?;
        let mut last_draw = tokio::time::Instant::now();
        loop {
            // Nothing happening: a frame a second keeps ages and clocks
            // on screen true (an Age of "1s" does not stay "1s").
            let first =
                match tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv()).await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(_) => {
                        for request in app.update(Message::Tick) {
                            spawn_request(&client, &tx, request);
                        }
                        terminal.draw(|f| app.draw(f))?;
                        last_draw = tokio::time::Instant::now();
                        continue;
                    }
                };
            // A key or a click is drawn at once. Engine messages (output
            // streaming) make frames at most every FRAME, each taking
            // everything that arrived meanwhile; a key cuts the wait short.
            let mut urgent = is_input(&first);
            let mut batch = vec![first];
            let next_frame = last_draw + FRAME;
            while !urgent && tokio::time::Instant::now() < next_frame {
                tokio::select! {
                    _ = tokio::time::sleep_until(next_frame) => break,
                    message = rx.recv() => match message {
                        Some(m) => {
                            urgent = is_input(&m);
                            batch.push(m);
                        }
                        None => break,
                    },
                }
            }
            while let Ok(m) = rx.try_recv() {
                batch.push(m);
            }
            let mut handovers = Vec::new();
            for message in batch {
                for request in app.update(message) {
                    if takes_terminal(&request) {
                        handovers.push(request);
                    } else {
                        dispatch(&client, &tx, request);
                    }
                }
            }
            for call in handovers {
                let said = take_terminal(&client, &mut terminal, &pause, call).await;
                // The handover took the mouse back; a released one stays so.
                if app.mouse_released {
                    dispatch(&client, &tx, Call::MouseCapture(false));
                }
                for request in app.update(said) {
                    dispatch(&client, &tx, request);
                }
            }
            if app.should_quit() {
                break;
            }
            terminal.draw(|f| app.draw(f))?;
            // A new emergency run waits for this approver's review: the
            // terminal's bell says so.
            if app.take_bell() {
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07").and_then(|()| out.flush());
            }
            last_draw = tokio::time::Instant::now();
        }
        Ok::<(), color_eyre::eyre::Report>(())
    }
    .await;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    // A personal server that stays up for scheduled work says so.
    if let Some(note) = app.farewell() {
        eprintln!("gatehouse: {note}");
    }
    result
}

/// Asks the key reader to park while something else reads the terminal.
#[derive(Clone, Default)]
struct Pause {
    wanted: Arc<AtomicBool>,
    parked: Arc<AtomicBool>,
}

impl Pause {
    /// Parks the reader and waits until it is parked (it polls every 50 ms).
    async fn park(&self) {
        self.wanted.store(true, Ordering::Release);
        for _ in 0..50 {
            if self.parked.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn resume(&self) {
        self.wanted.store(false, Ordering::Release);
    }
}

/// What a terminal handover has to say: a line, or the engine's answer
/// for the screen that asked.
enum Said {
    Text(String),
    Answer(Box<Message>),
}

impl From<String> for Said {
    fn from(text: String) -> Said {
        Said::Text(text)
    }
}

impl From<&str> for Said {
    fn from(text: &str) -> Said {
        Said::Text(text.to_string())
    }
}

/// The calls that take the terminal from the TUI for a while.
fn takes_terminal(call: &Call) -> bool {
    matches!(
        call,
        Call::Connect { .. } | Call::Replay(_) | Call::Watch(_)
    )
}

/// Hands the terminal to a session, a watch or a replay, as lazygit does
/// for an editor, and takes it back when that ends, however it ends; what
/// happened comes back as a status message.
async fn take_terminal(
    client: &Arc<Client>,
    terminal: &mut ratatui::DefaultTerminal,
    pause: &Pause,
    call: Call,
) -> Message {
    use crate::client::terminal::{self, Relayed};
    use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
    pause.park().await;
    let mut stdout = std::io::stdout();
    let _ = crossterm::execute!(
        stdout,
        crossterm::event::DisableMouseCapture,
        LeaveAlternateScreen
    );
    let _ = crossterm::terminal::disable_raw_mode();
    let said: Result<(String, bool), Said> = async {
        match call {
            Call::Connect {
                device,
                justification,
                totp,
            } => {
                println!("gatehouse: opening a session on {device}; the TUI comes back when it ends");
                let call = Call::Connect {
                    device: device.clone(),
                    justification,
                    totp,
                };
                let Command::Connect(mut spec) = call.command() else {
                    return Err(Said::Text("not a session".to_string()));
                };
                let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
                spec.cols = cols;
                spec.rows = rows;
                spec.term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
                let session = client.open_session(spec).await.map_err(|e| Said::Text(e.to_string()))?;
                match terminal::relay(client, session).await.map_err(|e| Said::Text(e.to_string()))? {
                    Relayed::Answer(Ok(Response::Session(s))) => Ok((
                        format!(
                            "session {} on {device} ended: {}",
                            s.id,
                            s.end.map(|e| e.to_string()).unwrap_or_default()
                        ),
                        false,
                    )),
                    Relayed::Answer(Ok(Response::Filed(req))) => Ok((
                        format!(
                            "request {} to open a session on {device} is {}; once approved, connect again",
                            req.id, req.state
                        ),
                        false,
                    )),
                    Relayed::Answer(Ok(_)) => Err(Said::Text("the server answered with something else".into())),
                    // The engine's word goes back to the screen that asked
                    // (a second factor is asked for there).
                    Relayed::Answer(Err(e)) => Err(Said::Answer(Box::new(Message::Answer(
                        call,
                        Err(Failure::Engine(e)),
                    )))),
                    Relayed::Lost => Err(Said::Text("the connection to the server ended".into())),
                    Relayed::Stopped => Err(Said::Text("stopped by a signal".into())),
                }
            }
            Call::Watch(id) => {
                println!("gatehouse: watching session {id}, read-only; q stops watching");
                let watched = client.watch_session(id).await.map_err(|e| e.to_string())?;
                match terminal::watch(watched).await.map_err(|e| e.to_string())? {
                    Relayed::Answer(Err(e)) => Err(Said::Text(e.to_string())),
                    Relayed::Stopped => Ok((format!("stopped watching session {id}"), false)),
                    _ => Ok((format!("session {id} ended"), false)),
                }
            }
            Call::Replay(id) => {
                let Response::Recording(text) = client
                    .call(Command::SessionRecording { id, input: false })
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    return Err("the server answered with something else".into());
                };
                let events = crate::store::recording::events(&text);
                terminal::play(&events).await.map_err(|e| e.to_string())?;
                Ok((format!("replayed session {id} (Space pause, 1 2 8 speed, ←/→ seek, q quit)"), false))
            }
            _ => Err("not a terminal call".into()),
        }
    }
    .await;
    let _ = crossterm::terminal::enable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        crossterm::event::EnableMouseCapture
    );
    let _ = terminal.clear();
    pause.resume();
    match said {
        Ok((text, is_error)) => Message::Status(text, is_error),
        Err(Said::Text(e)) => Message::Status(e, true),
        Err(Said::Answer(message)) => *message,
    }
}

/// Whether a message comes from the person at the keyboard.
fn is_input(message: &Message) -> bool {
    matches!(
        message,
        Message::Key(_) | Message::Mouse(_) | Message::Resized
    )
}

/// What the UI asked for: the terminal's mouse mode at once, anything
/// else from the engine, off the loop.
fn dispatch(client: &Arc<Client>, tx: &mpsc::UnboundedSender<Message>, request: Call) {
    if let Call::MouseCapture(on) = request {
        let mut out = std::io::stdout();
        let _ = if on {
            crossterm::execute!(out, crossterm::event::EnableMouseCapture)
        } else {
            crossterm::execute!(out, crossterm::event::DisableMouseCapture)
        };
        return;
    }
    spawn_request(client, tx, request);
}

/// Runs one engine call off the UI loop and posts its answer back.
fn spawn_request(client: &Arc<Client>, tx: &mpsc::UnboundedSender<Message>, request: Call) {
    let client = client.clone();
    let tx = tx.clone();
    if let Call::ExportAudit(path) = request {
        tokio::spawn(async move {
            let message = match export_audit(&client, &path).await {
                Ok(n) => Message::Status(
                    format!("exported {n} audit events to {}", path.display()),
                    false,
                ),
                Err(e) => Message::Status(
                    format!("audit export to {} failed: {e}", path.display()),
                    true,
                ),
            };
            let _ = tx.send(message);
        });
        return;
    }
    if let Call::SaveOutput { id, path } = request {
        tokio::spawn(async move {
            let message = match save_output(&client, id, &path).await {
                Ok((lines, bytes)) => Message::Status(
                    format!(
                        "saved the output of operation {id} to {} ({lines} lines, {bytes} bytes)",
                        path.display()
                    ),
                    false,
                ),
                Err(e) => Message::Status(
                    format!("saving the output to {} failed: {e}", path.display()),
                    true,
                ),
            };
            let _ = tx.send(message);
        });
        return;
    }
    tokio::spawn(async move {
        let command: Command = request.command();
        let result: Result<Response, Failure> = client.call(command).await.map_err(Failure::from);
        // A revealed password is on screen for a while only.
        let revealed = matches!(result, Ok(Response::Revealed(_)));
        let _ = tx.send(Message::Answer(request, result));
        if revealed {
            tokio::time::sleep(REVEAL_FOR).await;
            let _ = tx.send(Message::HideSecret);
        }
    });
}

/// How long a revealed password stays on screen.
const REVEAL_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes the whole audit log, page by page, as JSON lines (the format
/// `gatehouse audit export` prints and `audit verify --against` reads).
async fn export_audit(client: &Client, path: &std::path::Path) -> Result<u64> {
    use std::io::Write;
    let file = crate::paths::create_private(path)
        .map_err(|e| color_eyre::eyre::eyre!("cannot create {}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut from = 1;
    let mut count = 0u64;
    loop {
        let Response::AuditEvents(events) = client
            .call(Command::AuditExport { from, limit: 1000 })
            .await?
        else {
            return Err(color_eyre::eyre::eyre!(
                "the server answered with something else"
            ));
        };
        let Some(last) = events.last().map(|e| e.seq) else {
            break;
        };
        for e in &events {
            writeln!(out, "{}", crate::text::safe(&e.to_json().to_string()))?;
        }
        count += events.len() as u64;
        from = last + 1;
    }
    out.flush()?;
    Ok(count)
}

/// Writes an operation's whole stored output (not the pane's last lines)
/// to a new file of this user's alone, as the pane shows it: escapes
/// removed, stderr marked `! `, Gatehouse's own lines `* `. Returns the
/// lines and bytes written.
async fn save_output(
    client: &Client,
    id: crate::domain::Id,
    path: &std::path::Path,
) -> Result<(u64, u64)> {
    use crate::domain::Stream;
    use std::io::Write;
    let file = crate::paths::create_private(path)
        .map_err(|e| color_eyre::eyre::eyre!("cannot create {}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut splitter = oplog::Splitter::default();
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut write = |line: oplog::LogLine,
                     out: &mut std::io::BufWriter<std::fs::File>|
     -> std::io::Result<()> {
        let mark = match line.stream {
            Stream::Stderr => "! ",
            Stream::System => "* ",
            _ => "",
        };
        let text = format!("{mark}{}\n", line.text);
        lines += 1;
        bytes += text.len() as u64;
        out.write_all(text.as_bytes())
    };
    let mut from = 0;
    loop {
        let Response::Output(chunks) = client
            .call(Command::Output {
                id,
                from,
                limit: 5000,
                debug: false,
            })
            .await?
        else {
            return Err(color_eyre::eyre::eyre!(
                "the server answered with something else"
            ));
        };
        let Some(last) = chunks.last().map(|c| c.seq) else {
            break;
        };
        for c in chunks.iter().filter(|c| c.stream != Stream::Debug) {
            let mut done = Vec::new();
            splitter.feed(c.stream, &c.bytes, |l| done.push(l));
            for l in done {
                write(l, &mut out)?;
            }
        }
        from = last + 1;
    }
    if let Some(l) = splitter.finish() {
        write(l, &mut out)?;
    }
    out.flush()?;
    Ok((lines, bytes))
}
