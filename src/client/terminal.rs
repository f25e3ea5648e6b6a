//! The local terminal handed to a session, a watch or a replay, and given
//! back: raw mode while it lasts (restored on every way out), keystrokes
//! read by a thread that stops when the session does (so that it steals
//! nothing from the TUI afterwards), window sizes followed.

use super::{Client, ClientError, OpenSession};
use crate::domain::SessionInput;
use crate::engine::{EngineError, Response};
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Raw mode while alive, when standard input is a terminal.
pub struct RawMode(bool);

impl RawMode {
    pub fn enter() -> std::io::Result<RawMode> {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Ok(RawMode(false));
        }
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode(true))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.0 {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Keystrokes from standard input, read on a thread that polls so that
/// it can be told to stop; bytes arrive on the receiver.
pub struct Keys {
    pub bytes: mpsc::Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Keys {
    pub fn start() -> Keys {
        let (tx, bytes) = mpsc::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(50u8)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                match nix::unistd::read(libc_stdin(), &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Keys {
            bytes,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Keys {
    /// Stops reading before the terminal goes back to whoever had it.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.bytes.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a relayed session came to an end, from this side.
pub enum Relayed {
    /// The server's answer: the session as it ended, or why not.
    Answer(Result<Response, EngineError>),
    /// The connection to the server went away.
    Lost,
    /// A signal (HUP, TERM) told this client to stop.
    Stopped,
}

/// Relays an open session through this terminal until it ends.
pub async fn relay(client: &Client, mut session: OpenSession) -> Result<Relayed, ClientError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut resized = signal(SignalKind::window_change()).map_err(ClientError::Sink)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ClientError::Sink)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(ClientError::Sink)?;
    let mut stdout = std::io::stdout();
    let raw = RawMode::enter().map_err(ClientError::Sink)?;
    let mut keys = Keys::start();
    let mut typing = true;
    let ended = loop {
        tokio::select! {
            piece = session.output.recv() => match piece {
                Some(bytes) => {
                    stdout.write_all(&bytes).map_err(ClientError::Sink)?;
                    stdout.flush().map_err(ClientError::Sink)?;
                }
                None => break answer((&mut session.ended).await),
            },
            // Standard input closed (a pipe that ended): keystrokes stop,
            // the session goes on.
            typed = keys.bytes.recv(), if typing => match typed {
                Some(bytes) => client.session_input(session.id, SessionInput::Bytes(bytes)).await?,
                None => typing = false,
            },
            _ = resized.recv() => {
                if let Ok((cols, rows)) = crossterm::terminal::size() {
                    client.session_input(session.id, SessionInput::Resize { cols, rows }).await?;
                }
            }
            _ = hangup.recv() => break Relayed::Stopped,
            _ = terminate.recv() => break Relayed::Stopped,
            result = &mut session.ended => break answer(result),
        }
    };
    // Anything sent before the end is shown before the terminal goes back.
    while let Ok(bytes) = session.output.try_recv() {
        let _ = stdout.write_all(&bytes);
    }
    let _ = stdout.flush();
    drop(keys);
    drop(raw);
    Ok(ended)
}

fn answer(
    result: Result<Result<Response, EngineError>, tokio::sync::oneshot::error::RecvError>,
) -> Relayed {
    match result {
        Ok(answer) => Relayed::Answer(answer),
        Err(_) => Relayed::Lost,
    }
}

/// Shows a watched session until it ends or `q` (or Ctrl-C) is pressed;
/// nothing typed reaches it.
pub async fn watch(mut watched: OpenSession) -> Result<Relayed, ClientError> {
    let mut stdout = std::io::stdout();
    let raw = RawMode::enter().map_err(ClientError::Sink)?;
    let mut keys = Keys::start();
    let mut typing = true;
    let ended = loop {
        tokio::select! {
            piece = watched.output.recv() => match piece {
                Some(bytes) => {
                    stdout.write_all(&bytes).map_err(ClientError::Sink)?;
                    stdout.flush().map_err(ClientError::Sink)?;
                }
                None => break answer((&mut watched.ended).await),
            },
            typed = keys.bytes.recv(), if typing => match typed {
                Some(bytes) if bytes.iter().any(|b| *b == b'q' || *b == 0x03) => break Relayed::Stopped,
                Some(_) => {}
                None => typing = false,
            },
        }
    };
    drop(keys);
    drop(raw);
    Ok(ended)
}

/// Plays a recording's output events through this terminal, as they
/// happened: Space pauses, `1` `2` `8` set the speed, Right and Left seek
/// five seconds, `q` ends (at the end too: it waits for it). Seeking back
/// redraws from the start at once.
pub async fn play(events: &[crate::store::recording::Event]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout();
    let raw = RawMode::enter()?;
    let mut keys = Keys::start();
    let output: Vec<(f64, &str)> = events
        .iter()
        .filter(|e| e.code == "o")
        .map(|e| (e.at, e.text.as_str()))
        .collect();
    let clear = "\x1b[0m\x1b[2J\x1b[H";
    stdout.write_all(clear.as_bytes())?;
    let mut speed = 1.0_f64;
    let mut paused = false;
    // Recording time reached, and the next event to write.
    let mut at = 0.0_f64;
    let mut next = 0usize;
    let step = Duration::from_millis(20);
    let mut told_end = false;
    loop {
        if next >= output.len() && !told_end {
            told_end = true;
            stdout.write_all(
                b"\r\n\x1b[0m[gatehouse: end of the recording; q returns, Left seeks back]",
            )?;
            stdout.flush()?;
        }
        tokio::select! {
            typed = keys.bytes.recv() => {
                let Some(bytes) = typed else { break };
                let mut seek: Option<f64> = None;
                match bytes.as_slice() {
                    b"q" | [0x03] => break,
                    b" " => paused = !paused,
                    b"1" => speed = 1.0,
                    b"2" => speed = 2.0,
                    b"8" => speed = 8.0,
                    b"\x1b[C" => seek = Some(at + 5.0),
                    b"\x1b[D" => seek = Some((at - 5.0).max(0.0)),
                    _ => {}
                }
                if let Some(to) = seek {
                    if to < at {
                        stdout.write_all(clear.as_bytes())?;
                        next = 0;
                        told_end = false;
                    }
                    while next < output.len() && output[next].0 <= to {
                        stdout.write_all(output[next].1.as_bytes())?;
                        next += 1;
                    }
                    at = to;
                    stdout.flush()?;
                }
            }
            _ = tokio::time::sleep(step) => {
                if paused || next >= output.len() {
                    continue;
                }
                at += step.as_secs_f64() * speed;
                while next < output.len() && output[next].0 <= at {
                    stdout.write_all(output[next].1.as_bytes())?;
                    next += 1;
                }
                stdout.flush()?;
            }
        }
    }
    drop(keys);
    drop(raw);
    Ok(())
}

/// Standard input's descriptor.
fn libc_stdin() -> i32 {
    use std::os::fd::AsRawFd;
    std::io::stdin().as_raw_fd()
}
