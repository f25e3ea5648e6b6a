//! Verbs about requests and their approval: queue, approve, reject, requests.

use super::operations::parse_time;
use super::Cli;
use crate::domain::{ExecutionRequest, Id, RequestState};
use crate::engine::{Command, Response};
use color_eyre::eyre::{bail, eyre, Result};

pub(super) fn parse_id(text: &str) -> Result<Id> {
    text.trim()
        .parse::<u64>()
        .map(Id)
        .map_err(|_| eyre!("'{text}' is not a request id (a number, as `gatehouse queue` shows)"))
}

/// One request as a JSON object.
pub fn request_json(r: &ExecutionRequest) -> serde_json::Value {
    let level = match r.state {
        RequestState::Pending { level } => Some(level),
        _ => None,
    };
    serde_json::json!({
        "id": r.id.0,
        "task": r.task,
        "session": r.session().map(|s| serde_json::json!({
            "device": s.device,
            "credential": s.credential,
            "used_at": s.used_at.map(|t| t.to_utc().to_rfc3339()),
        })),
        "change": r.change.as_ref().map(|c| c.code.clone()),
        "plan": r.change.as_ref().map(|c| c.plan.clone()),
        "reveal": r.reveal().map(|v| serde_json::json!({
            "credential": v.credential,
            "revealed_at": v.revealed_at.map(|t| t.to_utc().to_rfc3339()),
        })),
        "requester": r.requester,
        "state": r.state.to_string(),
        "level": level,
        "emergency": r.state == RequestState::Emergency,
        "policy": r.policy,
        "devices": r.devices,
        "variables": r.variables,
        "reason": r.reason,
        "justification": r.justification,
        "governance_id": r.governance_id,
        "window_start": r.window_start.to_utc().to_rfc3339(),
        "window_end": r.window_end.to_utc().to_rfc3339(),
        "created_at": r.created_at.to_utc().to_rfc3339(),
        "operations": r.operations.iter().map(|o| o.0).collect::<Vec<_>>(),
        "void_reason": r.void_reason,
        "decisions": r.decisions.iter().map(|d| serde_json::json!({
            "approver": d.approver, "level": d.level, "approved": d.approved,
            "comment": d.comment, "time": d.time.to_utc().to_rfc3339(),
        })).collect::<Vec<_>>(),
    })
}

fn print(requests: &[ExecutionRequest], json: bool) {
    if json {
        for r in requests {
            outln!("{}", request_json(r));
        }
        return;
    }
    outln!(
        "{:<10} {:<20} {:<12} {:<20} {:<19} JUSTIFICATION",
        "ID",
        "TASK",
        "REQUESTER",
        "STATE",
        "CREATED"
    );
    for r in requests {
        outln!(
            "{:<10} {:<20} {:<12} {:<20} {:<19} {}",
            r.id.to_string(),
            crate::text::printable(&r.what()),
            r.requester,
            if r.state == RequestState::Emergency {
                "EMERGENCY".to_string()
            } else {
                r.state.to_string()
            },
            r.created_at.to_string(),
            crate::text::printable(r.justification.as_deref().unwrap_or("-"))
        );
    }
}

async fn list(cli: &Cli, command: Command, json: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::Requests(requests) = client.call(command).await? else {
        bail!("the server answered with something else");
    };
    print(&requests, json);
    Ok(())
}

/// The queue; with `--json`, each request carries what it will run.
pub async fn queue(cli: &Cli, json: bool) -> Result<()> {
    if !json {
        return list(cli, Command::Queue, json).await;
    }
    let client = cli.client().await?;
    let Response::Requests(requests) = client.call(Command::Queue).await? else {
        bail!("the server answered with something else");
    };
    for r in &requests {
        let mut value = request_json(r);
        if r.is_task() {
            if let Ok(Response::RequestView(view)) =
                client.call(Command::RequestView { id: r.id }).await
            {
                value["runs"] = view_json(&view);
            }
        }
        outln!("{value}");
    }
    Ok(())
}

/// What a request runs, as JSON: the credential, the template, the
/// variables, the rendered text per device and the chained tasks.
fn view_json(v: &crate::engine::api::RequestView) -> serde_json::Value {
    serde_json::json!({
        "credential": v.credential,
        "username": v.username,
        "template": v.template,
        "template_revision": v.template_revision,
        "template_now": v.template_now,
        "executor": v.executor,
        "variables": v.variables.iter().map(|(name, value, default)| serde_json::json!({
            "name": name, "value": value, "default": default,
        })).collect::<Vec<_>>(),
        "devices": v.runs.iter().map(|r| serde_json::json!({
            "devices": r.devices, "text": r.text,
        })).collect::<Vec<_>>(),
        "children": v.children.iter().map(|c| serde_json::json!({
            "task": c.task, "template": c.template,
            "template_revision": c.template_revision, "content": c.content,
        })).collect::<Vec<_>>(),
    })
}

/// `request show ID`: what a request will run, device by device.
pub async fn show(cli: &Cli, id: &str, json: bool) -> Result<()> {
    let id = parse_id(id)?;
    let client = cli.client().await?;
    let Response::RequestView(v) = client.call(Command::RequestView { id }).await? else {
        bail!("the server answered with something else");
    };
    if json {
        let mut value = request_json(&v.request);
        value["runs"] = view_json(&v);
        outln!("{value}");
        return Ok(());
    }
    for line in view_lines(&v) {
        outln!("{line}");
    }
    Ok(())
}

/// A request and what it runs, as lines (the CLI's `request show`).
pub fn view_lines(v: &crate::engine::api::RequestView) -> Vec<String> {
    use crate::text::printable;
    let r = &v.request;
    let mut lines = vec![
        format!(
            "request {} · {} · {} by {}",
            r.id,
            printable(&r.what()),
            r.state,
            printable(&r.requester)
        ),
        format!(
            "policy {} · window {} → {}",
            r.policy.as_deref().unwrap_or("- (Superuser)"),
            r.window_start,
            r.window_end
        ),
        format!(
            "reason {} · justification {} · governance id {}",
            printable(r.reason.as_deref().unwrap_or("-")),
            printable(r.justification.as_deref().unwrap_or("-")),
            printable(r.governance_id.as_deref().unwrap_or("-"))
        ),
    ];
    for d in &r.decisions {
        lines.push(format!(
            "level {} {} by {} at {}{}",
            d.level,
            if d.approved { "approved" } else { "rejected" },
            printable(&d.approver),
            d.time,
            if d.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", printable(&d.comment))
            }
        ));
    }
    if r.state == RequestState::Emergency {
        lines.push(match &v.review {
            Some(review) => format!(
                "emergency run reviewed by {} at {}: {}: {}",
                printable(&review.reviewer),
                review.time,
                if review.accepted {
                    "accepted"
                } else {
                    "flagged for follow-up"
                },
                printable(&review.comment)
            ),
            None => "emergency run: awaiting review by an approver of its policy".to_string(),
        });
    }
    if !r.is_task() {
        return lines;
    }
    lines.push(format!(
        "logs in with credential {} (as {})",
        printable(&v.credential),
        printable(&v.username)
    ));
    lines.push(format!(
        "template {} rev {} ({})",
        printable(&v.template),
        v.template_revision,
        v.executor
    ));
    if let Some(now) = v.template_now {
        lines.push(format!(
            "the template is now at rev {now}: this request will be voided, not run with the change"
        ));
    }
    for (name, value, default) in &v.variables {
        lines.push(format!(
            "  {name} = {}{}",
            printable(value),
            if *default { "  (its default)" } else { "" }
        ));
    }
    for run in &v.runs {
        lines.push(String::new());
        lines.push(format!("on {}:", printable(&run.devices.join(", "))));
        lines.extend(run.text.lines().map(|l| format!("  {}", printable(l))));
    }
    for run in &v.dry_runs {
        lines.push(String::new());
        lines.push(run.title());
        lines.extend(run.output.iter().map(|l| format!("  {l}")));
    }
    for c in &v.children {
        lines.push(String::new());
        lines.push(format!(
            "then, where it succeeded: task {} (template {} rev {})",
            printable(&c.task),
            printable(&c.template),
            c.template_revision
        ));
        lines.extend(c.content.lines().map(|l| format!("  {}", printable(l))));
    }
    lines
}

pub async fn requests(cli: &Cli, mine: bool, json: bool) -> Result<()> {
    list(cli, Command::Requests { mine }, json).await
}

pub async fn schedules(cli: &Cli, json: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::Schedules(all) = client.call(Command::Schedules).await? else {
        bail!("the server answered with something else");
    };
    for s in all {
        if json {
            outln!("{}", serde_json::to_string(&s)?);
            continue;
        }
        let detail = match &s.authority {
            None => format!("nobody asked: gatehouse request {} --schedule", s.task),
            Some(r) => match &r.void_reason {
                Some(why) => format!("request {}: {}", r.id, super::out::safe(why)),
                None => format!(
                    "request {} of {}{}, until {}",
                    r.id,
                    r.requester,
                    if r.policy.is_none() {
                        " as Superuser"
                    } else {
                        ""
                    },
                    r.window_end.to_utc().to_rfc3339()
                ),
            },
        };
        outln!(
            "{}  {}  {}{}  {}",
            s.task,
            super::out::safe(&s.expr),
            s.state,
            if s.enabled { "" } else { " (task disabled)" },
            detail
        );
    }
    Ok(())
}

/// Reviews emergency runs: accepted, or flagged for follow-up.
pub async fn review(
    cli: &Cli,
    ids: &[String],
    accepted: bool,
    comment: &Option<String>,
) -> Result<()> {
    let ids = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<Id>>>()?;
    let comment = match comment {
        Some(c) => c.clone(),
        None => ask_line(
            "Why? ",
            Err("a review needs a comment saying why (--comment)"),
        )?,
    };
    let client = cli.client().await?;
    let Response::Decided(outcomes) = client
        .call(Command::ReviewEmergency {
            ids,
            accepted,
            comment,
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    report(&outcomes, "reviewed")
}

/// Prints each outcome; fails if any request was not decided.
fn report(outcomes: &[crate::engine::api::Decided], verb: &str) -> Result<()> {
    let mut failed = 0;
    for d in outcomes {
        match &d.outcome {
            Ok(state) => outln!("request {}: {state}", d.id),
            Err(why) => {
                failed += 1;
                eprintln!(
                    "request {}: not {verb}: {}",
                    d.id,
                    crate::text::printable_lines(why)
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} request(s) not {verb}", outcomes.len());
    }
    Ok(())
}

/// Approves or rejects the requests named, with one comment and one code;
/// says what became of each, and fails if any was not decided.
pub async fn decide(
    cli: &Cli,
    ids: &[String],
    approve: bool,
    comment: &Option<String>,
    until: &Option<String>,
    totp: &Option<String>,
) -> Result<()> {
    let ids = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<Id>>>()?;
    let until = until.as_deref().map(parse_time).transpose()?;
    let comment = match comment {
        Some(c) => c.clone(),
        None => ask_comment(approve)?,
    };
    let client = cli.client().await?;
    let Response::Decided(outcomes) = client
        .call(Command::DecideMany {
            ids,
            approve,
            comment,
            until,
            totp: totp.clone(),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    report(&outcomes, if approve { "approved" } else { "rejected" })
}

/// The decision's comment, asked for on a terminal; without one, an
/// approval's is empty and a rejection is refused (it must say why).
fn ask_comment(approve: bool) -> Result<String> {
    if approve {
        ask_line("Comment (optional): ", Ok(""))
    } else {
        ask_line(
            "Why reject? ",
            Err("a rejection needs a comment saying why (--comment)"),
        )
    }
}

/// A line asked for on standard error and read from a terminal; without
/// a terminal, `otherwise` (a value, or the error to fail with).
fn ask_line(question: &str, otherwise: Result<&str, &str>) -> Result<String> {
    use std::io::{IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return otherwise.map(String::from).map_err(|e| eyre!("{e}"));
    }
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

pub async fn totp_enroll(cli: &Cli, login: &str, code: &Option<String>) -> Result<()> {
    let client = cli.client().await?;
    let Response::TotpEnrolled {
        uri,
        recovery_codes,
    } = client
        .call(Command::TotpEnroll {
            login: login.to_string(),
            code: code.clone(),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    outln!("{uri}");
    outln!("recovery codes (each works once, in place of a code):");
    for code in &recovery_codes {
        outln!("  {code}");
    }
    eprintln!(
        "Add the URI to {login}'s authenticator app now and keep the recovery codes apart from it: neither is shown again."
    );
    Ok(())
}

pub async fn totp_reset(cli: &Cli, login: &str) -> Result<()> {
    let client = cli.client().await?;
    client
        .call(Command::TotpReset {
            login: login.to_string(),
        })
        .await?;
    outln!("{login}: second factor removed; they are told at their next command and enrol again themselves");
    Ok(())
}

pub async fn jit_list(cli: &Cli, all: bool, json: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::Jit(leases) = client.call(Command::Jit { all }).await? else {
        bail!("the server answered with something else");
    };
    let now = crate::domain::Timestamp::now();
    let remaining = |g: &crate::domain::JitGrant| match g.state {
        crate::domain::JitState::Active => {
            let secs = (g.expires_at.0 - now.0).max(0) / 1000;
            format!("{}m{:02}s left", secs / 60, secs % 60)
        }
        _ => "-".into(),
    };
    if !json {
        outln!(
            "{:<8} {:<16} {:<14} {:<10} {:<19} {:<12} {:<10} STATE",
            "ID",
            "CREDENTIAL",
            "DEVICE",
            "HOLDER",
            "GRANTED",
            "REMAINING",
            "USED"
        );
    }
    for lease in &leases {
        let g = &lease.grant;
        let used = match lease.uses.len() {
            0 => "no".to_string(),
            n => format!("{n} op(s)"),
        };
        if json {
            outln!(
                "{}",
                serde_json::json!({
                    "id": g.id.0,
                    "task": g.task,
                    "credential": g.credential,
                    "device": g.device,
                    "requested_by": g.requested_by,
                    "granted_at": g.granted_at.to_utc().to_rfc3339(),
                    "expires_at": g.expires_at.to_utc().to_rfc3339(),
                    "remaining_secs": match g.state {
                        crate::domain::JitState::Active => Some((g.expires_at.0 - now.0).max(0) / 1000),
                        _ => None,
                    },
                    "state": g.state.to_string(),
                    "revoked": matches!(g.state, crate::domain::JitState::Revoked { .. }),
                    "used": !lease.uses.is_empty(),
                    "used_by_operations": lease.uses.iter().map(|i| i.0).collect::<Vec<_>>(),
                })
            );
        } else {
            outln!(
                "{:<8} {:<16} {:<14} {:<10} {:<19} {:<12} {:<10} {}",
                g.id.to_string(),
                g.credential,
                g.device,
                g.requested_by,
                g.granted_at.brief_zoned(),
                remaining(g),
                used,
                g.state
            );
        }
    }
    Ok(())
}

pub async fn jit_revoke(cli: &Cli, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    let client = cli.client().await?;
    client.call(Command::JitRevoke { id }).await?;
    outln!("jit grant {id}: revoke started");
    Ok(())
}
