//! `policy explain`: the policies' verdicts on a request, as a table.

use super::operations::parse_time;
use super::Cli;
use crate::engine::api::{ExplainSpec, Explanation};
use crate::engine::{Command, Response};
use crate::text::printable;
use color_eyre::eyre::{bail, Result};

pub async fn explain(
    cli: &Cli,
    task: &str,
    user: &Option<String>,
    devices: &[String],
    at: &Option<String>,
    json: bool,
) -> Result<()> {
    let spec = ExplainSpec {
        user: user.clone(),
        task: task.to_string(),
        devices: devices.to_vec(),
        at: at.as_deref().map(parse_time).transpose()?,
    };
    let client = cli.client().await?;
    let Response::Explanation(e) = client.call(Command::ExplainPolicy(spec)).await? else {
        bail!("the server answered with something else");
    };
    if json {
        outln!("{}", as_json(&e));
    } else {
        for line in table(&e) {
            outln!("{line}");
        }
    }
    Ok(())
}

fn as_json(e: &Explanation) -> serde_json::Value {
    serde_json::json!({
        "user": e.user,
        "task": e.task,
        "devices": e.devices,
        "at": e.at.to_utc().to_rfc3339(),
        "superuser": e.superuser,
        "permission": e.permission.as_ref().err(),
        "freeze": e.freeze,
        "covered_by": e.verdicts.iter().find(|v| v.covers()).map(|v| &v.policy),
        "policies": e.verdicts.iter().map(|v| serde_json::json!({
            "policy": v.policy,
            "covers": v.covers(),
            "met": v.passed,
            "fails": v.failed.as_ref().map(|(c, _)| c),
            "why": v.failed.as_ref().map(|(_, w)| w),
        })).collect::<Vec<_>>(),
    })
}

/// The answer first, then one line per policy.
pub fn table(e: &Explanation) -> Vec<String> {
    let covering = e.verdicts.iter().find(|v| v.covers());
    let verdict = match (&e.permission, e.superuser, covering, &e.freeze) {
        (_, true, _, _) => "yes: a Superuser needs no policy".to_string(),
        (Err(why), ..) => format!("no: {why}"),
        (Ok(()), false, Some(v), None) => format!("yes, under policy {}", v.policy),
        (Ok(()), false, Some(v), Some(freeze)) => format!(
            "only as an emergency request (policy {}): {freeze}",
            v.policy
        ),
        (Ok(()), false, None, _) => "no: no policy covers it".to_string(),
    };
    let mut lines = vec![
        format!(
            "may {} request {} on {} at {}? {}",
            printable(&e.user),
            printable(&e.task),
            if e.devices.is_empty() {
                "its devices".to_string()
            } else {
                printable(&e.devices.join(", "))
            },
            e.at,
            printable(&verdict)
        ),
        String::new(),
        format!("{:<20} {:<8} {:<12} WHY (MET)", "POLICY", "RESULT", "FAILS"),
    ];
    for v in &e.verdicts {
        let (result, fails, why) = match &v.failed {
            None => ("covers", "-".to_string(), String::new()),
            Some((condition, why)) => ("refuses", condition.clone(), why.clone()),
        };
        lines.push(format!(
            "{:<20} {:<8} {:<12} {}{}({})",
            printable(&v.policy),
            result,
            fails,
            printable(&why),
            if why.is_empty() { "" } else { " " },
            if v.passed.is_empty() {
                "met nothing".to_string()
            } else {
                format!("met: {}", v.passed.join(", "))
            }
        ));
    }
    if e.verdicts.is_empty() {
        lines.push("(no policies)".into());
    }
    lines
}
