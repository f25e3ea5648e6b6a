//! Verbs about configuration records: import, export, demo, list, delete, enable.

use super::{parse_kind, read_file, Cli};
use crate::domain::Record;
use crate::engine::{Command, Response};
use color_eyre::eyre::{bail, eyre, Result};
use std::path::Path;

/// The template library and the demo set, shipped in `assets/`.
const LIBRARY: &str = include_str!("../../assets/templates.toml");
const DEMO: &str = include_str!("../../assets/demo.toml");

pub async fn import(cli: &Cli, file: &Path) -> Result<()> {
    let text = read_file(file)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let items =
        crate::recordfile::parse(&text, base).map_err(|e| eyre!("{}: {e}", file.display()))?;
    let client = cli.client().await?;
    match client.call(Command::Import { items }).await {
        Ok(response) => {
            print_imported(&response);
            Ok(())
        }
        Err(e) => bail!("{}: {e}; nothing was imported", file.display()),
    }
}

fn print_imported(response: &Response) {
    if let Response::Imported {
        created,
        updated,
        unchanged,
    } = response
    {
        for c in created {
            outln!("created {c}");
        }
        for u in updated {
            outln!("updated {u}");
        }
        outln!(
            "{} created, {} updated, {unchanged} unchanged",
            created.len(),
            updated.len()
        );
    }
}

pub async fn export(cli: &Cli) -> Result<()> {
    let client = cli.client().await?;
    let Response::Records(records) = client.call(Command::Export).await? else {
        bail!("the server answered export with something else");
    };
    out!("{}", crate::recordfile::print(&records));
    Ok(())
}

pub async fn demo(cli: &Cli) -> Result<()> {
    let mut items = crate::recordfile::parse(LIBRARY, Path::new("."))
        .map_err(|e| eyre!("assets/templates.toml: {e}"))?;
    items.extend(
        crate::recordfile::parse(DEMO, Path::new("."))
            .map_err(|e| eyre!("assets/demo.toml: {e}"))?,
    );
    let window = open_now(&mut items, chrono::Local::now().naive_local().time());
    let client = cli.client().await?;
    let response = client.call(Command::Import { items }).await?;
    print_imported(&response);
    outln!("demo data loaded; run `gatehouse` to look around");
    outln!(
        "- host-summary runs on this-host (this machine, the local executor) and shows real output: \
         Enter on it in the Tasks tab, or `gatehouse request host-summary`"
    );
    outln!(
        "- web-1, web-2, db-1 and web-staging are placeholders at 127.0.0.11-31: nothing answers \
         there, so their runs end \"cannot connect\" (point them at real machines under Admin)"
    );
    if let Some(window) = window {
        outln!(
            "- policy production-web lets alice request with bob's approval every day {window} \
             (this machine's time), set now so that the approval tour works at any hour; \
             Admin → policies changes it"
        );
    }
    Ok(())
}

/// The demo policy's window, set to run from the start of this hour for
/// twelve hours every day (over midnight when it must), so that it is open
/// whenever the demo is loaded; says the window it set.
fn open_now(items: &mut [crate::engine::ImportItem], now: chrono::NaiveTime) -> Option<String> {
    use chrono::Timelike;
    let from = (now.hour() * 60) as u16;
    let to = ((now.hour() + 12) % 24 * 60) as u16;
    let mut said = None;
    for item in items.iter_mut() {
        if let crate::domain::Record::Policy(p) = &mut item.record {
            if p.meta.name == "production-web" {
                p.windows = vec![crate::domain::Window {
                    days: (1..=7).collect(),
                    from_minute: from,
                    to_minute: to,
                    start_date: None,
                    end_date: None,
                }];
                said = Some(format!("{:02}:00–{:02}:00", from / 60, to / 60));
            }
        }
    }
    said
}

pub async fn list(cli: &Cli, kind: &str, json: bool) -> Result<()> {
    let kind = parse_kind(kind)?;
    let client = cli.client().await?;
    let Response::Records(records) = client.call(Command::List { kind }).await? else {
        bail!("the server answered list with something else");
    };
    for r in &records {
        if json {
            outln!("{}", record_json(r));
        } else {
            outln!(
                "{:<28} {:<9} {}",
                r.name(),
                if r.meta().enabled {
                    "enabled"
                } else {
                    "disabled"
                },
                r.summary()
            );
        }
    }
    Ok(())
}

/// One record as a JSON object: its header fields and summary.
fn record_json(r: &Record) -> serde_json::Value {
    let m = r.meta();
    serde_json::json!({
        "kind": r.kind().as_str(),
        "id": m.id.0,
        "name": m.name,
        "enabled": m.enabled,
        "revision": m.revision,
        "created_by": m.created_by,
        "updated_by": m.updated_by,
        "updated_at": m.updated_at.to_string(),
        "summary": r.summary(),
    })
}

pub async fn delete(cli: &Cli, kind: &str, name: &str) -> Result<()> {
    let kind = parse_kind(kind)?;
    let client = cli.client().await?;
    client
        .call(Command::Delete {
            kind,
            name: name.to_string(),
        })
        .await?;
    outln!("deleted {kind} {name}");
    Ok(())
}

pub async fn set_enabled(cli: &Cli, kind: &str, name: &str, enabled: bool) -> Result<()> {
    let kind = parse_kind(kind)?;
    let client = cli.client().await?;
    client
        .call(Command::SetEnabled {
            kind,
            name: name.to_string(),
            enabled,
        })
        .await?;
    outln!(
        "{} {kind} {name}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

pub async fn revisions(cli: &Cli, template: &str) -> Result<()> {
    let client = cli.client().await?;
    let Response::Records(records) = client
        .call(Command::TemplateRevisions {
            name: template.to_string(),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    for r in records {
        let m = r.meta();
        outln!(
            "rev {:<4} {}  by {}",
            m.revision,
            m.updated_at,
            m.updated_by
        );
    }
    Ok(())
}

pub async fn role_check(cli: &Cli, name: &str) -> Result<()> {
    let client = cli.client().await?;
    let Response::RoleWarnings(warnings) = client
        .call(Command::RoleCheck {
            name: name.to_string(),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    if warnings.is_empty() {
        outln!("role {name}: no warnings");
    }
    for w in warnings {
        outln!("role {name}: {w}");
    }
    Ok(())
}

pub async fn user_check(cli: &Cli, login: &str) -> Result<()> {
    let client = cli.client().await?;
    let Response::RoleWarnings(warnings) = client
        .call(Command::UserCheck {
            login: login.to_string(),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    if warnings.is_empty() {
        outln!("user {login}: no warnings");
    }
    for w in warnings {
        outln!("user {login}: {w}");
    }
    Ok(())
}

pub async fn clone(cli: &Cli, kind: &str, from: &str, to: &str) -> Result<()> {
    let kind = parse_kind(kind)?;
    let client = cli.client().await?;
    client
        .call(Command::Clone {
            kind,
            from: from.to_string(),
            to: to.to_string(),
        })
        .await?;
    outln!("cloned {kind} {from} as {to}");
    Ok(())
}

pub async fn groups(cli: &Cli, json: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::Groups(groups) = client.call(Command::Groups).await? else {
        bail!("the server answered with something else");
    };
    for g in &groups {
        if json {
            outln!(
                "{}",
                serde_json::json!({
                    "group": g.name,
                    "roles": g.roles,
                    "policies": g.policies,
                    "admits": g.admits,
                    "members": g.members.as_ref().ok(),
                    "error": g.members.as_ref().err(),
                })
            );
            continue;
        }
        let mut gives = Vec::new();
        if !g.roles.is_empty() {
            gives.push(format!("roles {}", g.roles.join(", ")));
        }
        if !g.policies.is_empty() {
            gives.push(format!("policies {}", g.policies.join(", ")));
        }
        if g.admits {
            gives.push("admitted without an import".to_string());
        }
        outln!(
            "{}: {}",
            crate::text::printable(&g.name),
            crate::text::printable(&gives.join("; "))
        );
        match &g.members {
            Ok(m) if m.is_empty() => outln!("  members: none listed"),
            Ok(m) => outln!("  members: {}", crate::text::printable(&m.join(", "))),
            Err(e) => outln!("  members: {}", crate::text::printable(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_policy_window_is_open_at_any_hour_it_is_loaded() {
        use chrono::NaiveTime;
        let demo = || {
            let mut items = crate::recordfile::parse(super::LIBRARY, std::path::Path::new("."))
                .expect("library");
            items.extend(
                crate::recordfile::parse(super::DEMO, std::path::Path::new(".")).expect("demo"),
            );
            items
        };
        for hour in 0..24 {
            for minute in [0, 59] {
                let now = NaiveTime::from_hms_opt(hour, minute, 0).expect("time");
                let mut items = demo();
                let said = super::open_now(&mut items, now).expect("the demo has its policy");
                let policy = items
                    .iter()
                    .find_map(|i| match &i.record {
                        crate::domain::Record::Policy(p) if p.meta.name == "production-web" => {
                            Some(p.clone())
                        }
                        _ => None,
                    })
                    .expect("policy");
                let w = &policy.windows[0];
                let m = (hour * 60 + minute) as u16;
                let open = if w.from_minute < w.to_minute {
                    (w.from_minute..w.to_minute).contains(&m)
                } else {
                    m >= w.from_minute || m < w.to_minute
                };
                assert!(open, "at {now} the window {said} is closed");
                assert_eq!(w.days.len(), 7, "every day");
                // Positive control: twelve hours later it is closed.
                let later = (m + 12 * 60 + 1) % (24 * 60);
                let closed = if w.from_minute < w.to_minute {
                    !(w.from_minute..w.to_minute).contains(&later)
                } else {
                    !(later >= w.from_minute || later < w.to_minute)
                };
                assert!(
                    closed,
                    "twelve hours after {now} the window {said} is still open"
                );
            }
        }
    }
}
