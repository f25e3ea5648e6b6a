//! `policy explain`: the policies' verdicts on a request, as a table.

use super::operations::parse_time;
use super::Cli;
use crate::engine::api::{ExplainSpec, Explanation};
use crate::engine::{Command, Response};
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
        for line in e.lines() {
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
