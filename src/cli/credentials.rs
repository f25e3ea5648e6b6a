//! Verbs about credentials' passwords: change, reconcile, reveal, status.

use super::Cli;
use crate::engine::{Command, Response};
use clap::Subcommand;
use color_eyre::eyre::{bail, Result};

#[derive(Debug, Subcommand)]
pub enum CredentialVerb {
    /// Change a credential's password with its change template: a new
    /// password from its policy, verified by logging in before it is stored.
    Change {
        name: String,
        /// Only on these devices (repeatable; default: its device, or the
        /// devices of the tasks that use it).
        #[arg(long = "device", value_name = "NAME")]
        devices: Vec<String>,
        /// Print the output and wait for the end.
        #[arg(long)]
        wait: bool,
    },
    /// Set a new password through the credential's `reconcile_with` login,
    /// when the stored one no longer works.
    Reconcile {
        name: String,
        #[arg(long = "device", value_name = "NAME")]
        devices: Vec<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Print a credential's password, alone on its line (needs
    /// view-credential-secrets; audited).
    Reveal {
        name: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        justification: String,
    },
    /// Where each credential's password stands: ok, changing, out of sync,
    /// change failed; last change and next due.
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, verb: &CredentialVerb) -> Result<()> {
    match verb {
        CredentialVerb::Change {
            name,
            devices,
            wait,
        } => {
            change(
                cli,
                Command::ChangeCredential {
                    name: name.clone(),
                    devices: devices.clone(),
                },
                *wait,
            )
            .await
        }
        CredentialVerb::Reconcile {
            name,
            devices,
            wait,
        } => {
            change(
                cli,
                Command::ReconcileCredential {
                    name: name.clone(),
                    devices: devices.clone(),
                },
                *wait,
            )
            .await
        }
        CredentialVerb::Reveal {
            name,
            reason,
            justification,
        } => {
            let client = cli.client().await?;
            let Response::Revealed(secret) = client
                .call(Command::RevealCredential {
                    name: name.clone(),
                    reason: reason.clone(),
                    justification: justification.clone(),
                })
                .await?
            else {
                bail!("the server answered with something else");
            };
            // Only the secret, for scripts; nothing else on stdout.
            outln!("{}", secret.0);
            Ok(())
        }
        CredentialVerb::Status { json } => {
            let client = cli.client().await?;
            let Response::CredentialStates(states) = client.call(Command::CredentialStates).await?
            else {
                bail!("the server answered with something else");
            };
            let time = |t: Option<crate::domain::Timestamp>| t.map(|t| t.to_utc().to_rfc3339());
            for s in &states {
                if *json {
                    outln!(
                        "{}",
                        serde_json::json!({
                            "name": s.name,
                            "state": s.status.word(),
                            "detail": s.status.to_string(),
                            "changed_at": time(s.changed_at),
                            "next_due": time(s.next_due),
                            "changes": s.changes,
                        })
                    );
                } else {
                    outln!(
                        "{:<24} {:<14} changed {:<20} due {:<20} {}",
                        s.name,
                        s.status.word(),
                        s.changed_at
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "never".into()),
                        s.next_due
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "-".into()),
                        super::out::safe(&s.status.to_string())
                    );
                }
            }
            Ok(())
        }
    }
}

async fn change(cli: &Cli, command: Command, wait: bool) -> Result<()> {
    let client = cli.client().await?;
    let events = if wait {
        Some(client.subscribe().await?)
    } else {
        None
    };
    let Response::Requested { operations, .. } = client.call(command).await? else {
        bail!("the server answered with something else");
    };
    eprintln!(
        "password change: {} operation(s): {}",
        operations.len(),
        operations
            .iter()
            .map(|o| format!("{} on {}", o.id, o.device))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match events {
        Some(events) => super::operations::follow(&client, events, &operations).await,
        None => Ok(()),
    }
}
