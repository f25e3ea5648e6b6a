//! Verbs about credentials' passwords: change, reconcile, reveal, status.

use super::Cli;
use crate::engine::api::RevealSpec;
use crate::engine::{Command, Response};
use clap::Subcommand;
use color_eyre::eyre::{bail, Result};

#[derive(Debug, Subcommand)]
pub enum CredentialVerb {
    /// Change a credential's password with its change template: a new
    /// password from its policy, verified by logging in before it is stored.
    Change {
        /// The credential (or, with --all, none).
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Only on these devices (repeatable; default: its device, or the
        /// devices of the tasks that use it).
        #[arg(long = "device", value_name = "NAME")]
        devices: Vec<String>,
        /// Every credential with a change template in this environment
        /// (with --all): listed, then changed after confirmation.
        #[arg(long, requires = "all")]
        environment: Option<String>,
        /// Change every credential with a change template (in --environment).
        #[arg(long, conflicts_with = "name")]
        all: bool,
        /// With --all: change without asking (after reading the list).
        #[arg(long)]
        yes: bool,
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
    /// view-credential-secrets; audited). Where a policy names the
    /// credential, its terms apply: with approval, the first call files a
    /// request and the same call once it is approved prints the password.
    Reveal {
        name: String,
        /// Why (under a policy: an access reason's name).
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        justification: String,
        #[arg(long, value_name = "ID")]
        governance_id: Option<String>,
        /// A current TOTP code, where the policy requires MFA and nobody approves.
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
        /// The approved reveal request to use (default: your newest one
        /// for this credential).
        #[arg(long, value_name = "ID")]
        request: Option<String>,
        /// End of the window an approval gives (RFC 3339 or "+2h"; default 4 hours).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
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
            name: Some(name),
            devices,
            wait,
            ..
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
        CredentialVerb::Change {
            name: None,
            environment,
            yes,
            ..
        } => bulk(cli, environment.as_deref(), *yes).await,
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
            governance_id,
            totp,
            request,
            until,
        } => {
            let client = cli.client().await?;
            let spec = RevealSpec {
                name: name.clone(),
                reason: reason.clone(),
                justification: justification.clone(),
                governance_id: governance_id.clone(),
                totp: totp.clone(),
                request: request
                    .as_deref()
                    .map(super::approvals::parse_id)
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(super::operations::parse_time)
                    .transpose()?,
            };
            let secret = match client.call(Command::RevealCredential(spec)).await? {
                Response::Revealed(secret) => secret,
                Response::Filed(req) => {
                    // Nothing on stdout: a script reading the password
                    // gets none, and the exit status says so.
                    eprintln!(
                        "gatehouse: request {} to reveal credential {name} is {}; \
                         once approved, run the same command again (until {})",
                        req.id,
                        req.state,
                        req.window_end.to_utc().to_rfc3339()
                    );
                    std::process::exit(3);
                }
                _ => bail!("the server answered with something else"),
            };
            // Only the secret, for scripts; nothing else on stdout. A
            // stored secret with control characters is not sent raw to a
            // terminal (it could drive it): escaped there, and said so.
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() && secret.0.chars().any(crate::text::is_unsafe) {
                eprintln!("gatehouse: the password holds control characters; shown escaped");
                let escaped = format!("{:?}", secret.0);
                outln!("{}", &escaped[1..escaped.len() - 1]);
            } else {
                outln!("{}", secret.0);
            }
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
                            "verified_at": time(s.verified_at),
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
    let name = match &command {
        Command::ChangeCredential { name, .. } | Command::ReconcileCredential { name, .. } => {
            name.clone()
        }
        _ => bail!("not a change"),
    };
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
        "password change: {}",
        super::operations::listed(&operations)
    );
    let Some(events) = events else {
        return Ok(());
    };
    let all_ok = super::operations::follow(&client, events, &operations).await?;
    // The outcome is the change's, known once its operations are concluded
    // (stored, or out of sync): wait for that, then say it.
    let started = std::time::Instant::now();
    loop {
        let Response::CredentialStates(states) = client.call(Command::CredentialStates).await?
        else {
            bail!("the server answered with something else");
        };
        let state = states.into_iter().find(|s| s.name == name);
        match state {
            Some(s) if s.status.word() != "changing" => {
                eprintln!(
                    "credential {name}: {}",
                    super::out::safe(&s.status.to_string())
                );
                if s.status.word() != "ok" || !all_ok {
                    std::process::exit(1);
                }
                return Ok(());
            }
            None => bail!("credential '{name}' is gone"),
            Some(_) if started.elapsed() > std::time::Duration::from_secs(30) => {
                bail!("credential {name}: the change's operations ended, but it is still concluding after 30 s")
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Changes every credential with a change template (in an environment:
/// those whose device, or a device of a task using them, is there), after
/// listing them and a confirmation.
async fn bulk(cli: &Cli, environment: Option<&str>, yes: bool) -> Result<()> {
    use crate::domain::{Kind, Record};
    use std::io::{IsTerminal, Write};
    let client = cli.client().await?;
    let list = |kind| {
        let client = &client;
        async move {
            match client.call(Command::List { kind }).await? {
                Response::Records(r) => Ok(r),
                _ => bail!("the server answered with something else"),
            }
        }
    };
    let devices = list(Kind::Device).await?;
    let tasks = list(Kind::Task).await?;
    let env_of = |device: &str| {
        devices.iter().find_map(|r| match r {
            Record::Device(d) if d.meta.name == device => Some(d.environment.clone()),
            _ => None,
        })
    };
    let mut chosen = Vec::new();
    for record in list(Kind::Credential).await? {
        let Record::Credential(c) = record else {
            continue;
        };
        if c.change_template.is_none() || !c.meta.enabled {
            continue;
        }
        let mut envs: Vec<String> = c.device.iter().filter_map(|d| env_of(d)).collect();
        for t in &tasks {
            if let Record::Task(t) = t {
                if t.credential == c.meta.name {
                    envs.extend(t.devices.iter().filter_map(|d| env_of(d)));
                }
            }
        }
        if environment.is_none_or(|e| envs.iter().any(|x| x == e)) {
            chosen.push(c.meta.name.clone());
        }
    }
    if chosen.is_empty() {
        bail!(
            "no credential with a change template{}",
            environment
                .map(|e| format!(" in environment '{e}'"))
                .unwrap_or_default()
        );
    }
    outln!("these {} credential(s) get a new password:", chosen.len());
    for name in &chosen {
        outln!("  {name}");
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("nothing changed: confirm on a terminal, or pass --yes after reading the list");
        }
        out!("Change them all? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            outln!("nothing changed");
            return Ok(());
        }
    }
    let mut failed = 0;
    for name in &chosen {
        match client
            .call(Command::ChangeCredential {
                name: name.clone(),
                devices: Vec::new(),
            })
            .await
        {
            Ok(Response::Requested { operations, .. }) => outln!(
                "{name}: change started, operation(s) {}",
                operations
                    .iter()
                    .map(|o| o.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ok(_) => bail!("the server answered with something else"),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "gatehouse: {name}: {}",
                    crate::text::printable(&e.to_string())
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} change(s) did not start", chosen.len());
    }
    Ok(())
}
