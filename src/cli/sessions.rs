//! Verbs about privileged sessions: connect, list, export a recording.

use super::Cli;
use crate::client::terminal::Relayed;
use crate::domain::{ChangePlan, SessionEnd, SessionRecord};
use crate::engine::api::ConnectSpec;
use crate::engine::{Command, Response};
use clap::{Args, Subcommand};
use color_eyre::eyre::{bail, eyre, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The device to open a shell on.
    pub device: String,
    /// The credential to log in with (default: the device's own one).
    #[arg(long)]
    pub credential: Option<String>,
    /// An access reason's name, where the policy requires one.
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub justification: Option<String>,
    #[arg(long, value_name = "ID")]
    pub governance_id: Option<String>,
    /// A current TOTP code, where the policy requires MFA.
    #[arg(long, value_name = "CODE")]
    pub totp: Option<String>,
    /// The change this session is for (its code in your change process).
    #[arg(long, value_name = "CODE")]
    pub change: Option<String>,
    /// A command line the change expects (`*` and `?` match; repeatable):
    /// the session's other commands are reported as deviations.
    #[arg(long = "plan", value_name = "PATTERN")]
    pub plan: Vec<String>,
    /// How long the session may last (`30m`, `2h`); under approval, the
    /// window asked for (4 hours by default).
    #[arg(long)]
    pub duration: Option<String>,
    /// Open at once under the policy's emergency access (flagged for review).
    #[arg(long)]
    pub emergency: bool,
    /// The approved session request to use (default: your newest one for
    /// this device and credential).
    #[arg(long, value_name = "ID")]
    pub request: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionVerb {
    /// Watch an open session live, read-only (needs monitor-sessions):
    /// its screen so far, then as it happens, until it ends (q or Ctrl-C
    /// stops watching).
    Watch { id: String },
    /// End an open session (needs monitor-sessions); its user sees who
    /// ended it and why.
    End {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Write a session's recording (asciicast v2, for `asciinema play`).
    Export {
        id: String,
        /// What the user typed instead (needs view-session-input).
        #[arg(long)]
        input: bool,
        /// Write to this file (created 0600) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn connect(cli: &Cli, args: &ConnectArgs) -> Result<()> {
    let client = cli.client().await?;
    let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
    let spec = ConnectSpec {
        device: args.device.clone(),
        credential: args.credential.clone(),
        reason: args.reason.clone(),
        justification: args.justification.clone(),
        governance_id: args.governance_id.clone(),
        totp: args.totp.clone(),
        term: std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
        cols,
        rows,
        change: (args.change.is_some() || !args.plan.is_empty()).then(|| ChangePlan {
            code: args.change.clone().unwrap_or_default(),
            plan: args.plan.clone(),
        }),
        duration_secs: args
            .duration
            .as_deref()
            .map(super::operations::parse_duration_ms)
            .transpose()?
            .map(|ms| (ms.max(1000) / 1000) as u64),
        emergency: args.emergency,
        request: args
            .request
            .as_deref()
            .map(super::approvals::parse_id)
            .transpose()?,
    };
    let session = client.open_session(spec).await?;
    let record = match crate::client::terminal::relay(&client, session).await? {
        Relayed::Answer(Ok(Response::Session(record))) => record,
        Relayed::Answer(Ok(Response::Filed(req))) => {
            eprintln!(
                "gatehouse: request {} to open a session on {} is {}; once approved, run the same command again (before {})",
                req.id,
                args.device,
                req.state,
                req.window_end.to_utc().to_rfc3339()
            );
            std::process::exit(3);
        }
        Relayed::Answer(Ok(_)) => bail!("the server answered with something else"),
        Relayed::Answer(Err(e)) => return Err(e.into()),
        Relayed::Lost => bail!("the session's connection to the server ended"),
        // The server ends the session when this connection closes.
        Relayed::Stopped => bail!("stopped by a signal: the session ends"),
    };
    let end = record.end.clone().unwrap_or(SessionEnd::Disconnected);
    eprintln!(
        "\r\ngatehouse: session {} on {} ended: {end}",
        record.id, record.device
    );
    match end {
        SessionEnd::Exited(code) => std::process::exit(code.unwrap_or(0).min(255) as i32),
        _ => std::process::exit(255),
    }
}

pub async fn list(cli: &Cli, all: bool, text: Option<&str>, json: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::Sessions(list) = client
        .call(Command::Sessions {
            open_only: !all && text.is_none(),
            text: text.map(str::to_string),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    if json {
        for s in &list {
            outln!("{}", session_json(s));
        }
        return Ok(());
    }
    outln!(
        "{:<10} {:<12} {:<16} {:<16} {:<13} {:<19} {:>8} END",
        "ID",
        "USER",
        "DEVICE",
        "CREDENTIAL",
        "STATE",
        "STARTED",
        "COMMANDS"
    );
    for s in &list {
        outln!(
            "{:<10} {:<12} {:<16} {:<16} {:<13} {:<19} {:>8} {}",
            s.id.to_string(),
            crate::text::printable(&s.user),
            crate::text::printable(&s.device),
            crate::text::printable(&s.credential),
            s.state_word(),
            s.started_at.to_string(),
            s.commands,
            s.end
                .as_ref()
                .map(|e| crate::text::printable(&e.to_string()))
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

fn session_json(s: &SessionRecord) -> serde_json::Value {
    let time = |t: Option<crate::domain::Timestamp>| t.map(|t| t.to_utc().to_rfc3339());
    serde_json::json!({
        "id": s.id.0,
        "user": s.user,
        "device": s.device,
        "credential": s.credential,
        "policy": s.policy,
        "reason": s.reason,
        "justification": s.justification,
        "governance_id": s.governance_id,
        "state": s.state_word(),
        "end": s.end.as_ref().map(|e| e.to_string()),
        "started_at": time(Some(s.started_at)),
        "ended_at": time(s.ended_at),
        "commands": s.commands,
        "output_bytes": s.output_bytes,
        "request": s.request.map(|r| r.0),
        "window_end": time(s.window_end),
        "change": s.change.as_ref().map(|c| c.code.clone()),
        "plan": s.change.as_ref().map(|c| c.plan.clone()),
        "deviations": s.deviations,
        "denied": s.denied,
    })
}

pub async fn run(cli: &Cli, verb: &SessionVerb) -> Result<()> {
    match verb {
        SessionVerb::Watch { id } => {
            let id = super::approvals::parse_id(id)?;
            let client = cli.client().await?;
            let watched = client.watch_session(id).await?;
            // The same read-only watch the TUI hands the terminal to.
            match crate::client::terminal::watch(watched).await? {
                Relayed::Answer(Err(e)) => Err(e.into()),
                Relayed::Lost => bail!("the connection to the server ended"),
                Relayed::Stopped => {
                    eprintln!("\r\ngatehouse: stopped watching session {id}");
                    Ok(())
                }
                Relayed::Answer(Ok(_)) => {
                    eprintln!("\r\ngatehouse: session {id} ended");
                    Ok(())
                }
            }
        }
        SessionVerb::End { id, reason } => {
            let id = super::approvals::parse_id(id)?;
            let client = cli.client().await?;
            client
                .call(Command::EndSession {
                    id,
                    reason: reason.clone(),
                })
                .await?;
            outln!("session {id}: ended");
            Ok(())
        }
        SessionVerb::Export { id, input, output } => {
            let id = super::approvals::parse_id(id)?;
            let client = cli.client().await?;
            let Response::Recording(text) = client
                .call(Command::SessionRecording { id, input: *input })
                .await?
            else {
                bail!("the server answered with something else");
            };
            match output {
                Some(path) => {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(true)
                        .write(true)
                        .mode(0o600)
                        .open(path)
                        .map_err(|e| eyre!("cannot write {}: {e}", path.display()))?;
                    file.write_all(text.as_bytes())?;
                }
                // JSON lines: the device's escape codes are escaped in them.
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
            Ok(())
        }
    }
}
