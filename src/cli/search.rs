//! `search`: lines of stored output across operations, printed as each
//! page of operations is searched.

use super::Cli;
use crate::engine::api::{HistoryFilter, OutputMatch};
use crate::engine::{Command, Response};
use color_eyre::eyre::{bail, Result};
use std::io::Write;

pub async fn search(
    cli: &Cli,
    text: &str,
    mut filter: HistoryFilter,
    limit: usize,
    json: bool,
) -> Result<()> {
    if text.trim().is_empty() {
        bail!("say what to search for: gatehouse search TEXT");
    }
    let client = cli.client().await?;
    let (mut found, mut operations, mut bytes) = (0usize, 0u64, 0u64);
    let started = std::time::Instant::now();
    loop {
        let Response::Found(page) = client
            .call(Command::SearchOutput {
                text: text.to_string(),
                filter: filter.clone(),
            })
            .await?
        else {
            bail!("the server answered with something else");
        };
        operations += u64::from(page.operations);
        bytes += page.bytes;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut left_out = false;
        for m in &page.matches {
            if found == limit {
                left_out = true;
                break;
            }
            found += 1;
            if json {
                writeln!(out, "{}", as_json(m))?;
            } else {
                writeln!(out, "{}", as_line(m))?;
            }
        }
        out.flush()?;
        drop(out);
        if let (Some(op), false) = (page.cut, left_out) {
            eprintln!(
                "operation {op} may hold more matching lines than shown: `gatehouse logs {op}` has them all"
            );
        }
        match page.next {
            Some(next) if found < limit => filter.before = Some(next),
            next => {
                if left_out || next.is_some() {
                    eprintln!("stopped at --limit {limit} matching lines; there may be more");
                }
                break;
            }
        }
    }
    eprintln!(
        "{found} matching line(s) in {operations} operation(s), {:.1} MiB of output read in {:.1} s",
        bytes as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn as_line(m: &OutputMatch) -> String {
    format!(
        "{:<8} {:<16} {:<16} {} {}:{} {}",
        m.op.to_string(),
        crate::text::printable(&m.task),
        crate::text::printable(&m.device),
        m.time,
        stream_word(m.stream),
        m.number,
        m.line
    )
}

fn stream_word(s: crate::domain::Stream) -> &'static str {
    match s {
        crate::domain::Stream::Stdout => "out",
        crate::domain::Stream::Stderr => "err",
        crate::domain::Stream::System => "gatehouse",
        crate::domain::Stream::Debug => "debug",
    }
}

fn as_json(m: &OutputMatch) -> String {
    super::out::safe(
        &serde_json::json!({
            "operation": m.op.0,
            "task": m.task,
            "device": m.device,
            "requested_by": m.user,
            "stream": stream_word(m.stream),
            "line_number": m.number,
            "time": m.time.to_utc().to_rfc3339(),
            "line": m.line,
        })
        .to_string(),
    )
    .into_owned()
}
