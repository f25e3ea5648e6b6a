//! SSH sessions on russh: connect within a deadline, check the pinned host
//! key, authenticate, then run a script or drive an interactive shell.

use super::output::OutputTx;
use super::RunError;
use crate::domain::{HostKey, Stream};
use crate::template::{glob_matches, Step, StepKind};
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How to reach and log in to a device.
#[derive(Clone)]
pub struct Target {
    pub device: String,
    pub address: String,
    pub port: u16,
    /// The keys the device may present; empty when none was ever trusted.
    pub pinned: Vec<HostKey>,
    /// The algorithms to offer (see [`super::algorithms`]).
    pub preferred: russh::Preferred,
    pub username: String,
    pub password: Option<SecretString>,
    pub private_key: Option<SecretString>,
    pub passphrase: Option<SecretString>,
    /// An OpenSSH user certificate for the private key.
    pub certificate: Option<String>,
    /// The device this one is reached through (ProxyJump).
    pub via: Option<Box<Target>>,
}

impl Target {
    /// No device: what runs on the Gatehouse host logs in nowhere.
    pub fn local() -> Target {
        Target {
            device: String::new(),
            address: String::new(),
            port: 0,
            pinned: Vec::new(),
            preferred: russh::Preferred::default(),
            username: String::new(),
            password: None,
            private_key: None,
            passphrase: None,
            certificate: None,
            via: None,
        }
    }
}

/// Checks the server's key against the pinned ones and remembers what it
/// offered (its fingerprint and its type).
pub struct Checker {
    pinned: Vec<HostKey>,
    offered: Arc<Mutex<Option<String>>>,
    offered_type: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let public = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone())
            }
        };
        let blob = public.to_bytes().unwrap_or_default();
        let fingerprint = crate::domain::host_key_fingerprint(&blob);
        *self.offered_type.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(public.algorithm().as_str().to_string());
        let accepted = self
            .pinned
            .iter()
            .any(|p| p.matches_fingerprint(&fingerprint));
        *self.offered.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
        Ok(accepted)
    }
}

/// The host part of a device's address: an IPv6 literal may be written in
/// brackets (`[::1]`), as in URLs and `ssh_config`.
pub fn host(address: &str) -> &str {
    address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address)
}

/// A logged-in SSH session, holding the sessions it goes through.
pub struct Session {
    pub handle: Handle<Checker>,
    /// What the handshake and the login were, for the debug trace.
    pub facts: String,
    /// The session with the device this one is reached through, kept open
    /// while this one lives.
    via: Option<Box<Session>>,
}

impl Session {
    /// Ends the session, then the ones it went through.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        if let Some(via) = self.via {
            Box::pin(via.close()).await;
        }
    }
}

/// The most devices a connection goes through.
const MAX_HOPS: usize = 4;

/// Connects and authenticates within `deadline` (what is left of the
/// connect timeout `budget`, which a refusal names), through the `via`
/// devices first where the target has them.
pub async fn connect(
    target: &Target,
    deadline: Duration,
    budget: Duration,
) -> Result<Session, RunError> {
    match tokio::time::timeout(deadline, connect_hops(target, 0)).await {
        Ok(result) => result,
        Err(_) => Err(RunError::Connect(format!(
            "no SSH session with device '{}' at {}:{} within {} s",
            target.device,
            target.address,
            target.port,
            budget.as_secs()
        ))),
    }
}

type Connecting<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Session, RunError>> + Send + 'a>>;

fn connect_hops(target: &Target, hops: usize) -> Connecting<'_> {
    Box::pin(async move {
        let via = match &target.via {
            None => None,
            Some(_) if hops >= MAX_HOPS => {
                return Err(RunError::Invalid(format!(
                    "device '{}' is reached through more than {MAX_HOPS} other devices",
                    target.device
                )))
            }
            Some(jump) => Some(Box::new(
                connect_hops(jump, hops + 1)
                    .await
                    .map_err(|e| through(e, &jump.device))?,
            )),
        };
        let offered = Arc::new(Mutex::new(None));
        let offered_type = Arc::new(Mutex::new(None));
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            inactivity_timeout: None,
            preferred: target.preferred.clone(),
            ..Default::default()
        });
        let checker = Checker {
            pinned: target.pinned.clone(),
            offered: offered.clone(),
            offered_type: offered_type.clone(),
        };
        let connected = match &via {
            None => client::connect(config, (host(&target.address), target.port), checker).await,
            Some(jump) => {
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        host(&target.address),
                        target.port.into(),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| {
                        RunError::Connect(format!(
                            "device '{}' could not open a connection to {}:{} for device '{}': {e}",
                            target.via.as_ref().map(|v| v.device.as_str()).unwrap_or(""),
                            target.address,
                            target.port,
                            target.device
                        ))
                    })?;
                client::connect_stream(config, channel.into_stream(), checker).await
            }
        };
        let mut handle = connected.map_err(|e| {
            let offered = offered.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let offered_type = offered_type
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let russh::Error::NoCommonAlgo { kind, ours, theirs } = &e {
                return RunError::Connect(format!(
                    "cannot talk to device '{}' at {}:{}: {}",
                    target.device,
                    target.address,
                    target.port,
                    super::algorithms::no_common(kind, ours, theirs)
                ));
            }
            // Say where: "Connection refused" alone names no host.
            let text = format!(
                "cannot reach device '{}' at {}:{}: {e}",
                target.device, target.address, target.port
            );
            host_key_error(target, offered.clone(), offered_type).unwrap_or_else(|| {
                // Dropped before the server showed a host key: throttling.
                if offered.is_none() && dropped_early(&e) {
                    RunError::Throttled(text)
                } else {
                    RunError::Connect(text)
                }
            })
        })?;
        let method = authenticate(&mut handle, target).await?;
        let key = offered_type
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        let fingerprint = offered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        let facts = format!(
            "{}host key {key} {fingerprint} (pinned); logged in as {} with {method}",
            via.as_ref()
                .map(|v| format!("{}; then ", v.facts))
                .unwrap_or_default(),
            target.username
        );
        Ok(Session { handle, facts, via })
    })
}

/// An error on the way to a device, said to be on the way.
fn through(e: RunError, jump: &str) -> RunError {
    let say = |m: String| format!("through device '{jump}': {m}");
    match e {
        RunError::Connect(m) => RunError::Connect(say(m)),
        // Throttled on the jump host: still only a failure to connect.
        RunError::Throttled(m) => RunError::Connect(say(m)),
        RunError::HostKey(m) => RunError::HostKey(say(m)),
        RunError::Auth(m) => RunError::Auth(say(m)),
        RunError::Invalid(m) => RunError::Invalid(say(m)),
        other => other,
    }
}

/// Whether a handshake error is the server closing or resetting the
/// connection (as OpenSSH does past MaxStartups), not a refusal to connect.
fn dropped_early(e: &russh::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        russh::Error::HUP | russh::Error::Disconnect => true,
        russh::Error::IO(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
        ),
        _ => false,
    }
}

/// The error for a refused host key, when that is why the handshake failed.
fn host_key_error(
    target: &Target,
    offered: Option<String>,
    offered_type: Option<String>,
) -> Option<RunError> {
    let offered = offered?;
    let offered_type = offered_type.unwrap_or_else(|| "key".into());
    if target.pinned.is_empty() {
        return Some(RunError::HostKey(format!(
            "host key of device '{}' is not pinned; the server offered {offered_type} {offered}. \
             Check it, then pin it with `gatehouse device trust {}`",
            target.device, target.device
        )));
    }
    if target
        .pinned
        .iter()
        .any(|p| p.matches_fingerprint(&offered))
    {
        return None;
    }
    let pinned: Vec<String> = target
        .pinned
        .iter()
        .map(|p| {
            let kind = match p {
                HostKey::PublicKey { algorithm, .. } => algorithm.as_str(),
                HostKey::Fingerprint(_) => "key",
            };
            format!("{kind} {}", p.fingerprint())
        })
        .collect();
    Some(RunError::HostKey(format!(
        "HOST KEY CHANGED for device '{}': pinned {}, offered {offered_type} {offered}. Refusing to connect; \
         if the change is expected, pin the new key with `gatehouse device trust {}`",
        target.device,
        pinned.join(", "),
        target.device
    )))
}

/// Names of authentication methods, for a refusal.
fn method_names(methods: &[russh::MethodKind]) -> String {
    let names: Vec<&str> = methods
        .iter()
        .filter(|m| !matches!(m, russh::MethodKind::None))
        .map(|m| m.into())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Logs in with what the credential holds, in the order servers expect:
/// the private key, then the password, then keyboard-interactive (PAM's
/// password prompts answered with the password). A refusal names the
/// methods tried and those the server offers.
/// Returns the method that logged in.
async fn authenticate<H: client::Handler>(
    handle: &mut Handle<H>,
    target: &Target,
) -> Result<&'static str, RunError> {
    use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};
    let mut tried: Vec<&str> = Vec::new();
    let mut offered: Option<russh::MethodSet> = None;
    let lost =
        |e: russh::Error| RunError::Connect(format!("the connection ended during login: {e}"));
    if let Some(key_text) = &target.private_key {
        let key = russh::keys::decode_secret_key(
            key_text.expose_secret(),
            target.passphrase.as_ref().map(|p| p.expose_secret()),
        )
        .map_err(|e| RunError::Auth(format!("cannot read the credential's private key: {e}")))?;
        let key = Arc::new(key);
        // A certificate first, as OpenSSH offers it: a host that trusts the
        // certificate authority may know nothing of the key itself.
        if let Some(text) = &target.certificate {
            let cert = russh::keys::Certificate::from_openssh(text).map_err(|e| {
                RunError::Auth(format!("cannot read the credential's certificate: {e}"))
            })?;
            let result = handle
                .authenticate_openssh_cert(&target.username, key.clone(), cert)
                .await
                .map_err(lost)?;
            tried.push("publickey with certificate");
            if let AuthResult::Success = result {
                return Ok("publickey with certificate");
            }
        }
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(lost)?
            .flatten();
        let result = handle
            .authenticate_publickey(&target.username, PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(lost)?;
        tried.push("publickey");
        match result {
            AuthResult::Success => return Ok("publickey"),
            AuthResult::Failure {
                remaining_methods, ..
            } => offered = Some(remaining_methods),
        }
    }
    if let Some(password) = &target.password {
        let accepts = |offered: &Option<russh::MethodSet>, kind: russh::MethodKind| {
            offered.as_ref().is_none_or(|m| m.contains(&kind))
        };
        if accepts(&offered, russh::MethodKind::Password) {
            let result = handle
                .authenticate_password(&target.username, password.expose_secret())
                .await
                .map_err(lost)?;
            tried.push("password");
            match result {
                AuthResult::Success => return Ok("password"),
                AuthResult::Failure {
                    remaining_methods, ..
                } => offered = Some(remaining_methods),
            }
        }
        if accepts(&offered, russh::MethodKind::KeyboardInteractive) {
            tried.push("keyboard-interactive");
            let mut step = handle
                .authenticate_keyboard_interactive_start(target.username.clone(), None)
                .await
                .map_err(lost)?;
            // A few rounds at most: PAM asks for the password, perhaps once more.
            for _ in 0..4 {
                match step {
                    KeyboardInteractiveAuthResponse::Success => return Ok("keyboard-interactive"),
                    KeyboardInteractiveAuthResponse::Failure {
                        remaining_methods, ..
                    } => {
                        offered = Some(remaining_methods);
                        break;
                    }
                    KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                        let mut answers = Vec::new();
                        for p in &prompts {
                            if p.prompt.to_lowercase().contains("password") {
                                answers.push(password.expose_secret().to_string());
                            } else {
                                return Err(RunError::Auth(format!(
                                    "the server asked {:?} during keyboard-interactive login, which a stored credential cannot answer",
                                    crate::text::clipped(&p.prompt, 80)
                                )));
                            }
                        }
                        step = handle
                            .authenticate_keyboard_interactive_respond(answers)
                            .await
                            .map_err(lost)?;
                    }
                }
            }
        }
    }
    if tried.is_empty() {
        return Err(RunError::Auth(
            "the credential holds neither a password nor a private key".into(),
        ));
    }
    let what = if tried.iter().any(|t| !t.starts_with("publickey")) {
        "the password"
    } else {
        "the private key"
    };
    Err(RunError::Auth(format!(
        "the server refused {what} for user '{}' (tried {}; it offers {})",
        target.username,
        tried.join(", "),
        offered
            .as_ref()
            .map(|m| method_names(m))
            .unwrap_or_else(|| "nothing more".into())
    )))
}

async fn open_session<H: client::Handler>(
    handle: &Handle<H>,
) -> Result<russh::Channel<client::Msg>, RunError> {
    handle
        .channel_open_session()
        .await
        .map_err(|e| RunError::Connect(format!("cannot open a session channel: {e}")))
}

/// What reads an ssh-script's script on the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// The user's login shell (`sh` on most systems), with `eval`.
    Shell,
    /// A program given the script as a file (`bash`, `/usr/bin/env python3`).
    Interpreter(String),
}

/// Printed by the target once its PTY is raw, before the script is sent.
const PTY_READY: &str = "gatehouse-script-ready";

impl Program {
    /// The template's `interpreter`, else its `#!` line, else the shell.
    pub fn of(content: &str, interpreter: &str) -> Result<Program, RunError> {
        if !interpreter.trim().is_empty() {
            return Ok(Program::Interpreter(interpreter.trim().to_string()));
        }
        match shebang(content) {
            Some(Ok(words)) => Ok(Program::Interpreter(words)),
            Some(Err(e)) => Err(RunError::Invalid(format!("line 1: {e}"))),
            None => Ok(Program::Shell),
        }
    }

    /// The fixed remote command line. sshd hands it to the user's login
    /// shell, which reads the whole script from stdin (so nothing of it,
    /// secrets included, is in the target's process list), then runs it in
    /// a subshell it waits for. On timeout and cancel the session gets
    /// TERM: OpenSSH delivers it to the session's process group; where a
    /// server delivers it to the shell alone, the trap kills the group, the
    /// script's children included (a shell runs a trap at once only while
    /// it waits in `wait`, not while a foreground command runs, hence the
    /// subshell). The script's stdin is the session's (a PTY's, with `pty`).
    ///
    /// With a PTY, the terminal is made raw first (no echo, no line
    /// editing, no ^C) and says so, then exactly `pty_bytes` are read.
    /// An interpreter reads the script from a pipe on descriptor 3.
    pub fn command(&self, pty_bytes: Option<usize>) -> String {
        let read = match pty_bytes {
            None => r#"s="$(cat)""#.to_string(),
            Some(n) => format!(
                r#"t="$(stty -g)"; stty raw -echo; printf '{PTY_READY}\n'; s="$(head -c {n})"; stty "$t""#
            ),
        };
        let run = match self {
            Program::Shell => r#"(eval "$s") <&4 4<&-"#.to_string(),
            // `printf` is built into every shell: the script is in no argv.
            Program::Interpreter(program) => {
                format!(r#"(printf '%s\n' "$s" | {program} /dev/fd/3 3<&0 <&4 4<&-)"#)
            }
        };
        format!(r#"{read}; exec 4<&0; trap 'kill -KILL 0' TERM; {run} & wait $!"#)
    }
}

/// The program of a `#!` first line, when the script has one; an error
/// when its words are not a plain program and arguments.
fn shebang(content: &str) -> Option<Result<String, String>> {
    let line = content.lines().next()?.strip_prefix("#!")?.trim();
    let plain = !line.is_empty()
        && line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._- ".contains(c));
    Some(if plain {
        Ok(line.to_string())
    } else {
        Err(format!(
            "the #! line must name a program and plain arguments (such as #!/bin/bash or #!/usr/bin/env python3), not {:?}",
            crate::text::clipped(line, 60)
        ))
    })
}

/// Checks an ssh-script's `#!` line, where it has one.
pub fn check_shebang(content: &str) -> Result<(), String> {
    shebang(content).transpose().map(|_| ())
}

/// Runs a script on an exec channel; returns its exit status. See
/// [`Program::command`] for the command line, which is fixed: the script
/// goes on stdin. Reads until the channel closes, since the exit status
/// may come after EOF.
pub async fn run_script<H: client::Handler>(
    handle: &Handle<H>,
    script: &str,
    program: &Program,
    pty: bool,
    out: &OutputTx,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<i32, RunError> {
    let mut channel = open_session(handle).await?;
    if pty {
        channel
            .request_pty(true, "dumb", 200, 50, 0, 0, &[])
            .await
            .map_err(|e| RunError::Connect(format!("cannot get a PTY: {e}")))?;
    }
    let command = program.command(pty.then_some(script.len()));
    channel
        .exec(true, command.as_bytes())
        .await
        .map_err(|e| RunError::Connect(format!("cannot start the script: {e}")))?;
    if pty {
        // Nothing is typed before the terminal is raw: it would be echoed.
        pty_ready(&mut channel, &mut stop).await?;
    }
    channel
        .data(script.as_bytes())
        .await
        .map_err(|e| RunError::Dropped(format!("cannot send the script: {e}")))?;
    if !pty {
        channel
            .eof()
            .await
            .map_err(|e| RunError::Dropped(format!("cannot send the script: {e}")))?;
    }
    let mut status = None;
    loop {
        let msg = tokio::select! {
            msg = channel.wait() => msg,
            _ = stopped(&mut stop) => {
                stop_remote(&mut channel, pty).await;
                return Err(RunError::Cancelled);
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => out.send(Stream::Stdout, data.to_vec()).await,
            ChannelMsg::ExtendedData { data, .. } => out.send(Stream::Stderr, data.to_vec()).await,
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status as i32),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                return Err(RunError::Failed(format!(
                    "the script was killed by signal {signal_name:?}"
                )))
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    status.ok_or_else(|| {
        RunError::Dropped("the connection closed before the script's exit status arrived".into())
    })
}

/// How long a target has to make its PTY raw before the script is sent.
const PTY_READY_WAIT: Duration = Duration::from_secs(15);

/// Waits for the target to say its PTY is raw; what came before is dropped.
async fn pty_ready(
    channel: &mut russh::Channel<client::Msg>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), RunError> {
    let mut seen = String::new();
    let mut carry = Vec::new();
    let waiting = async {
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                    push_utf8(&mut seen, &mut carry, &data);
                    if seen.contains(PTY_READY) {
                        return Ok(());
                    }
                    keep_last(&mut seen, 2048, 4096);
                }
                ChannelMsg::Close | ChannelMsg::Eof => break,
                _ => {}
            }
        }
        Err(())
    };
    let said = |why: &str| {
        RunError::Connect(format!(
            "{why} before its PTY was ready for the script (`stty` and `head` must be there)"
        ))
    };
    tokio::select! {
        r = tokio::time::timeout(PTY_READY_WAIT, waiting) => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(said("the target ended the session")),
            Err(_) => Err(said(&format!("the target waited {} s", PTY_READY_WAIT.as_secs()))),
        },
        _ = stopped(stop) => Err(RunError::Cancelled),
    }
}

/// Ends the remote command: Ctrl-C to a PTY's foreground job, TERM to the
/// session (the script's shell kills its process group, see
/// [`Program::command`]), KILL after a grace period, then close.
async fn stop_remote(channel: &mut russh::Channel<client::Msg>, pty: bool) {
    if pty {
        let _ = channel.data(&b"\x03"[..]).await;
    }
    let _ = channel.signal(russh::Sig::TERM).await;
    let ended = tokio::time::timeout(STOP_GRACE, async {
        while let Some(msg) = channel.wait().await {
            if matches!(
                msg,
                ChannelMsg::ExitSignal { .. } | ChannelMsg::ExitStatus { .. } | ChannelMsg::Close
            ) {
                return;
            }
        }
    })
    .await
    .is_ok();
    if !ended {
        let _ = channel.signal(russh::Sig::KILL).await;
    }
    let _ = channel.close().await;
}

/// Resolves once a stop is asked; never when nobody can ask any more.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let asked = stop.wait_for(|s| *s).await.is_ok();
    if !asked {
        std::future::pending::<()>().await;
    }
}

/// The shell levels `end` leaves at most (each `exit` one).
const MAX_SHELL_LEVELS: usize = 5;
/// How long `end` waits for a shell level to go before typing the next `exit`.
const LEVEL_WAIT: Duration = Duration::from_millis(700);
/// How long output must pause after an `exit` for the shell below to be
/// taken as waiting at its prompt.
const LEVEL_QUIET: Duration = Duration::from_millis(150);

/// How long a stopped script has to end after TERM before it gets KILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The most output an expect line looks back over; older output is still stored.
const EXPECT_WINDOW: usize = 64 * 1024;

/// How long expect steps wait.
pub struct StepTimes {
    /// For a step without its own `timeout`.
    pub default_timeout: Duration,
    /// A step's own timeout ends before the task's, so that its error
    /// keeps the line and the last output.
    pub task_deadline: Instant,
}

/// Drives an interactive shell on a PTY through the template's steps.
pub async fn run_expect<H: client::Handler>(
    handle: &Handle<H>,
    steps: &[Step],
    StepTimes {
        default_timeout,
        task_deadline,
    }: StepTimes,
    render: impl Fn(&str) -> String,
    redact: impl Fn(&str) -> String,
    out: &OutputTx,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<i32, RunError> {
    let mut channel = open_session(handle).await?;
    channel
        .request_pty(true, "dumb", 200, 50, 0, 0, &[])
        .await
        .map_err(|e| RunError::Connect(format!("cannot get a PTY: {e}")))?;
    channel
        .request_shell(true)
        .await
        .map_err(|e| RunError::Connect(format!("cannot start a shell: {e}")))?;
    // What arrived since the last exec, as text for the globs, and the
    // bytes of a character not yet complete.
    let mut seen = String::new();
    let mut carry: Vec<u8> = Vec::new();
    let mut closed = false;
    for step in steps {
        match &step.kind {
            StepKind::Exec { line } => {
                seen.clear();
                out.debug(format!(
                    "line {}: exec {}",
                    step.line,
                    quoted(&redact(&render(line)))
                ))
                .await;
                let text = format!("{}\n", render(line));
                channel.data_bytes(text.into_bytes()).await.map_err(|e| {
                    RunError::Dropped(format!("line {}: cannot send: {e}", step.line))
                })?;
            }
            StepKind::Expect { glob, timeout_secs } => {
                let glob = render(glob);
                let limit = timeout_secs
                    .map(Duration::from_secs)
                    .unwrap_or(default_timeout);
                // The step's own limit, unless the task's runs out first.
                let asked = Instant::now() + limit;
                let (until, limit_text) = if asked <= task_deadline {
                    (asked, format!("{} s", limit.as_secs()))
                } else {
                    let left = task_deadline.saturating_duration_since(Instant::now());
                    (
                        task_deadline,
                        format!(
                            "{} s, what was left of the task's timeout",
                            left.as_secs().max(1)
                        ),
                    )
                };
                // A pattern ending in a blank means it ("*$ "); one that
                // does not is matched against the output without its trailing blanks.
                let keeps_blank = glob.ends_with(char::is_whitespace);
                let waiting_since = Instant::now();
                out.debug(format!(
                    "line {}: expect {} (up to {limit_text})",
                    step.line,
                    quoted(&redact(&glob))
                ))
                .await;
                loop {
                    // Matched as a person reads it: no colours, no cursor queries.
                    let normalized = crate::text::without_terminal_escapes(&seen);
                    let text = if keeps_blank {
                        normalized.as_str()
                    } else {
                        normalized.trim_end()
                    };
                    if glob_matches(&glob, text) {
                        out.debug(format!(
                            "line {}: matched after {} ms: …{}",
                            step.line,
                            waiting_since.elapsed().as_millis(),
                            tail(&redact(text))
                        ))
                        .await;
                        break;
                    }
                    // Secrets come out first, before anything is quoted or cut.
                    if closed {
                        return Err(RunError::Failed(format!(
                            "line {}: the session ended while waiting for {}; last output: {}",
                            step.line,
                            quoted(&redact(&glob)),
                            tail(&redact(&normalized))
                        )));
                    }
                    let next = tokio::select! {
                        next = tokio::time::timeout_at(until, channel.wait()) => next,
                        _ = stopped(&mut stop) => {
                            // The foreground job gets Ctrl-C, the session TERM:
                            // closing alone leaves a `nohup` command running.
                            stop_remote(&mut channel, true).await;
                            return Err(RunError::Cancelled);
                        }
                    };
                    match next {
                        Err(_) => {
                            return Err(RunError::Failed(format!(
                            "line {}: timed out after {limit_text} waiting for {}; last output: {}",
                            step.line,
                            quoted(&redact(&glob)),
                            tail(&redact(&normalized))
                        )))
                        }
                        Ok(None) => closed = true,
                        Ok(Some(msg)) => match msg {
                            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                                out.send(Stream::Stdout, data.to_vec()).await;
                                // A character cut between two reads is
                                // matched whole once its end arrives.
                                push_utf8(&mut seen, &mut carry, &data);
                                keep_last(&mut seen, EXPECT_WINDOW, EXPECT_WINDOW);
                            }
                            ChannelMsg::Close | ChannelMsg::Eof => closed = true,
                            _ => {}
                        },
                    }
                }
            }
            StepKind::Send { text } => {
                seen.clear();
                out.debug(format!(
                    "line {}: send {}",
                    step.line,
                    quoted(&redact(&render(text)))
                ))
                .await;
                channel
                    .data_bytes(render(text).into_bytes())
                    .await
                    .map_err(|e| {
                        RunError::Dropped(format!("line {}: cannot send: {e}", step.line))
                    })?;
            }
            StepKind::End => break,
        }
    }
    // `end`: leave the shell, one `exit` per shell level (a template's
    // `sudo su` opens one more) until the channel closes, reading what is
    // left. `exit` keeps the last status, so an inner failure reaches the
    // outer shell's status. A status that never came is unknown, not 0.
    let mut status: Option<i32> = None;
    let mut closed = false;
    for _ in 0..MAX_SHELL_LEVELS {
        let _ = channel.data_bytes(&b"exit\n"[..]).await;
        let window = tokio::time::sleep(LEVEL_WAIT);
        tokio::pin!(window);
        // The level is gone once the shell below has shown its prompt:
        // output came, then a moment of quiet. (An `exit` typed early waits
        // in the terminal for the next shell to read, so this only saves time.)
        let mut quiet_since: Option<Instant> = None;
        loop {
            let quiet = async {
                match quiet_since {
                    Some(t) => tokio::time::sleep_until(t + LEVEL_QUIET).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                msg = channel.wait() => match msg {
                    Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                        quiet_since = Some(Instant::now());
                        out.send(Stream::Stdout, data.to_vec()).await
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status as i32),
                    Some(ChannelMsg::Close) | None => {
                        closed = true;
                        break;
                    }
                    Some(_) => {}
                },
                _ = &mut window => break,
                _ = quiet => break,
                _ = stopped(&mut stop) => {
                    stop_remote(&mut channel, true).await;
                    return Err(RunError::Cancelled);
                }
            }
        }
        if closed {
            break;
        }
    }
    match (status, closed) {
        (Some(code), _) => Ok(code),
        (None, true) => Err(RunError::Failed(
            "the shell ended without an exit status: the outcome is unknown".into(),
        )),
        (None, false) => Err(RunError::Failed(format!(
            "`end`: the session was still open after {MAX_SHELL_LEVELS} exits (a program waiting for input?): the outcome is unknown"
        ))),
    }
}

/// Appends `data` to `text` as UTF-8, keeping in `carry` the bytes of a
/// character cut at the end of a read (they complete with the next read);
/// bytes that are no UTF-8 become U+FFFD.
fn push_utf8(text: &mut String, carry: &mut Vec<u8>, data: &[u8]) {
    carry.extend_from_slice(data);
    let mut rest: &[u8] = carry;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // Checked just above: the prefix is UTF-8.
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    // Cut at the end: wait for the rest.
                    None => {
                        rest = after;
                        break;
                    }
                    Some(bad) => {
                        text.push('\u{FFFD}');
                        rest = &after[bad..];
                    }
                }
            }
        }
    }
    let keep = rest.to_vec();
    *carry = keep;
}

/// Keeps the last `keep` bytes of `text` (at a character boundary) once it
/// grows past `limit`.
fn keep_last(text: &mut String, keep: usize, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let cut = text.len() - keep.min(text.len());
    let cut = (cut..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text.drain(..cut);
}

/// The last few hundred characters of (already redacted) output, for
/// error messages, quoted.
fn tail(text: &str) -> String {
    let trimmed = text.trim_end();
    let start = trimmed.len().saturating_sub(200);
    let start = (start..trimmed.len())
        .find(|i| trimmed.is_char_boundary(*i))
        .unwrap_or(0);
    quoted(&trimmed[start..])
}

/// Already redacted text in quotes, control characters escaped.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_between_reads_is_whole_once_its_end_arrives() {
        let key = "x🔑y".as_bytes();
        let (mut text, mut carry) = (String::new(), Vec::new());
        push_utf8(&mut text, &mut carry, &key[..3]);
        assert_eq!(text, "x", "the cut character waits");
        push_utf8(&mut text, &mut carry, &key[3..]);
        assert_eq!(text, "x🔑y");
        assert!(carry.is_empty());
        // Bytes that are no UTF-8 are said as such, and reading goes on.
        push_utf8(&mut text, &mut carry, b"\xffok");
        assert_eq!(text, "x🔑y\u{FFFD}ok");
    }

    #[test]
    fn trimming_keeps_a_character_boundary() {
        let mut text = "жжжжж".to_string(); // 10 bytes
        keep_last(&mut text, 3, 4);
        assert!(text.len() <= 3 && text.chars().all(|c| c == 'ж'), "{text}");
    }
}
