//! Verbs about the audit log.

use super::Cli;
use crate::engine::{Command, Response};
use crate::forward::anchor::Anchors;
use clap::{Subcommand, ValueEnum};
use color_eyre::eyre::{bail, eyre, Result};
use std::io::Write;

#[derive(Debug, Subcommand)]
pub enum AuditVerb {
    /// Walk the hash chain and say whether every event is intact and in place.
    Verify {
        /// Also check the log against a copy kept elsewhere (a JSON-lines export or
        /// forward file, or a syslog collector's file): finds truncation and rollback.
        #[arg(long, value_name = "FILE")]
        against: Option<std::path::PathBuf>,
    },
    /// Print the audit log.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Only the events of this request and of its operations.
        #[arg(long, value_name = "ID")]
        request: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per event, with its chain hash.
    Jsonl,
    /// Comma-separated, one row per event under a header (cells that a
    /// spreadsheet would take for formulas start with `'`).
    Csv,
}

/// Events fetched per round trip while exporting.
const PAGE: u32 = 1000;

pub async fn run(cli: &Cli, verb: &AuditVerb) -> Result<()> {
    let client = cli.client().await?;
    match verb {
        AuditVerb::Verify { against } => {
            // Read the copy first: a file that can't be used is said before any work.
            let anchors = match against {
                Some(path) => {
                    let text = std::fs::read(path)
                        .map_err(|e| eyre!("cannot read {}: {e}", path.display()))?;
                    let text = String::from_utf8_lossy(&text);
                    Some(Anchors::parse(&text).map_err(|e| eyre!("{}: {e}", path.display()))?)
                }
                None => None,
            };
            let Response::AuditVerified(result) = client.call(Command::AuditVerify).await? else {
                bail!("the server answered with something else");
            };
            let n = match result {
                Ok(n) => n,
                Err(broken) => bail!("audit log does NOT verify: {broken}"),
            };
            outln!("audit log verified: {n} events, chain intact");
            if let (Some(anchors), Some(path)) = (anchors, against) {
                let (first, last) = anchors.span();
                let failed = |e| eyre!("audit log does NOT match {}: {e}", path.display());
                anchors.check(n, []).map_err(failed)?;
                let mut from = first;
                while from <= last.min(n) {
                    let Response::AuditEvents(events) = client
                        .call(Command::AuditEvents { from, limit: PAGE })
                        .await?
                    else {
                        bail!("the server answered with something else");
                    };
                    let Some(end) = events.last().map(|e| e.seq) else {
                        break;
                    };
                    anchors
                        .check(n, events.iter().map(|e| (e.seq, e.hash_hex())))
                        .map_err(failed)?;
                    from = end + 1;
                }
                outln!(
                    "matches {}: {} forwarded events, {first} to {last}, agree with the local log",
                    path.display(),
                    anchors.len()
                );
            }
            Ok(())
        }
        AuditVerb::Export { format, request } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut csv = match format {
                ExportFormat::Csv => Some(super::out::Csv::new(
                    std::io::BufWriter::new(std::io::stdout()),
                    &[
                        "seq",
                        "time",
                        "actor",
                        "action",
                        "target",
                        "details",
                        "prev_hash",
                        "hash",
                    ],
                )?),
                ExportFormat::Jsonl => None,
            };
            let mut from = 1;
            loop {
                let Response::AuditEvents(events) = client
                    .call(Command::AuditExport { from, limit: PAGE })
                    .await?
                else {
                    bail!("the server answered with something else");
                };
                let Some(last) = events.last() else { break };
                from = last.seq + 1;
                for e in events
                    .iter()
                    .filter(|e| request.is_none_or(|id| e.concerns_request(id)))
                {
                    match &mut csv {
                        Some(csv) => csv.row(&[
                            e.seq.to_string(),
                            e.time.to_utc().to_rfc3339(),
                            e.actor.clone(),
                            e.action.clone(),
                            e.target.clone(),
                            e.details.clone(),
                            hex::encode(e.prev_hash),
                            e.hash_hex(),
                        ])?,
                        None => writeln!(out, "{}", super::out::safe(&e.to_json().to_string()))?,
                    }
                }
            }
            if let Some(csv) = csv {
                csv.finish()?;
            }
            out.flush()?;
            Ok(())
        }
    }
}
