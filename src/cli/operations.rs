//! Verbs about running things: request, ops, logs, cancel, history, device trust.

use super::Cli;
use crate::client::Client;
use crate::domain::{HostKey, Id, OpState, Operation, OutputChunk, Stream, Timestamp};
use crate::engine::{Command, Event, HistoryFilter, RequestSpec, Response};
use color_eyre::eyre::{bail, eyre, Result};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// Parses `NAME=VALUE`.
fn parse_var(text: &str) -> Result<(String, String)> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| eyre!("--var {text}: expected NAME=VALUE"))?;
    Ok((name.trim().to_string(), value.to_string()))
}

/// Parses a start time: RFC 3339, or `+30s`, `+5m`, `+2h` from now.
pub fn parse_time(text: &str) -> Result<Timestamp> {
    crate::domain::when::parse_time(text, Timestamp::now()).map_err(|e| eyre!(e))
}

/// What `gatehouse request` was given.
pub struct RequestArgs<'a> {
    pub task: &'a str,
    pub devices: &'a [String],
    pub vars: &'a [String],
    pub reason: &'a Option<String>,
    pub justification: &'a Option<String>,
    pub governance_id: &'a Option<String>,
    pub at: &'a Option<String>,
    pub duration: &'a Option<String>,
    pub emergency: bool,
    pub totp: &'a Option<String>,
    pub schedule: bool,
    pub change: &'a Option<String>,
    pub plan: &'a [String],
    pub check: bool,
}

/// Parses a duration: `90s`, `30m`, `2h`, `1d`.
pub fn parse_duration_ms(text: &str) -> Result<i64> {
    crate::domain::when::parse_duration_ms(text).map_err(|e| eyre!(e))
}

pub async fn request(cli: &Cli, args: RequestArgs<'_>, wait: bool) -> Result<()> {
    let variables: BTreeMap<String, String> = args
        .vars
        .iter()
        .map(|v| parse_var(v))
        .collect::<Result<_>>()?;
    let at = args.at.as_deref().map(parse_time).transpose()?;
    let until = match args.duration {
        Some(d) => Some(Timestamp(
            at.unwrap_or_else(Timestamp::now).0 + parse_duration_ms(d)?,
        )),
        None => None,
    };
    let spec = RequestSpec {
        task: args.task.to_string(),
        devices: args.devices.to_vec(),
        variables,
        reason: args.reason.clone(),
        justification: args.justification.clone(),
        governance_id: args.governance_id.clone(),
        at,
        until,
        emergency: args.emergency,
        totp: args.totp.clone(),
        schedule: args.schedule,
        check: args.check,
        change: (args.change.is_some() || !args.plan.is_empty()).then(|| {
            crate::domain::ChangePlan {
                code: args.change.clone().unwrap_or_default(),
                plan: args.plan.to_vec(),
            }
        }),
    };
    submit(cli, spec, wait).await
}

/// Runs a pending request's playbook as a dry run; with `wait`, follows
/// it to its end (exit 1 unless it succeeded on every device).
pub async fn dry_run(cli: &Cli, id: &str, wait: bool) -> Result<()> {
    let id = parse_id(id)?;
    let client = cli.client().await?;
    let events = if wait {
        Some(client.subscribe().await?)
    } else {
        None
    };
    start_dry_run(&client, id, events).await
}

/// Asks for a dry run of pending request `id`, says which operations run
/// it and, with `events`, follows them (exit 1 unless all succeeded).
async fn start_dry_run(
    client: &Client,
    id: Id,
    events: Option<tokio::sync::mpsc::UnboundedReceiver<Event>>,
) -> Result<()> {
    let Response::Requested { operations, .. } = client.call(Command::DryRun { id }).await? else {
        bail!("the server answered with something else");
    };
    eprintln!(
        "dry run (--check --diff) of request {id}: {}; `gatehouse request show {id}` shows it beside the request",
        listed(&operations)
    );
    follow_or_return(client, events, &operations).await
}

/// `N operation(s): ID on DEVICE, …`.
pub(super) fn listed(operations: &[Operation]) -> String {
    format!(
        "{} operation(s): {}",
        operations.len(),
        operations
            .iter()
            .map(|o| format!("{} on {}", o.id, o.device))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// With `events`, follows the operations to their end and exits 1 unless
/// every one succeeded.
async fn follow_or_return(
    client: &Client,
    events: Option<tokio::sync::mpsc::UnboundedReceiver<Event>>,
    operations: &[Operation],
) -> Result<()> {
    let Some(events) = events else { return Ok(()) };
    if !follow(client, events, operations).await? {
        std::process::exit(1);
    }
    Ok(())
}

/// Files a request and says what became of it; with `wait`, follows its
/// operations to their end (exit 1 unless all succeeded).
pub async fn submit(cli: &Cli, spec: RequestSpec, wait: bool) -> Result<()> {
    let client = cli.client().await?;
    // Subscribe before asking, so no output is missed.
    let events = if wait {
        Some(client.subscribe().await?)
    } else {
        None
    };
    let spec_check = spec.check;
    let (request, operations) = match client.call(Command::Request(spec)).await? {
        Response::Requested {
            request,
            operations,
        } => (request, operations),
        Response::Filed(req) if spec_check => {
            outln!(
                "request {}: {} (policy {})",
                req.id,
                req.state,
                req.policy.as_deref().unwrap_or("-")
            );
            return start_dry_run(&client, req.id, events).await;
        }
        Response::Filed(req) => {
            outln!(
                "request {}: {} (policy {})",
                req.id,
                req.state,
                req.policy.as_deref().unwrap_or("-, as Superuser")
            );
            if let Some(expr) = &req.schedule {
                outln!(
                    "it authorises the schedule '{}' of task {} until {}{}",
                    super::out::safe(expr),
                    req.task,
                    req.window_end.to_utc().to_rfc3339(),
                    if matches!(req.state, crate::domain::RequestState::Approved) {
                        ""
                    } else {
                        ", once approved"
                    }
                );
            }
            return Ok(());
        }
        _ => bail!("the server answered with something else"),
    };
    eprintln!("request {request}: {}", listed(&operations));
    follow_or_return(&client, events, &operations).await
}

/// Prints the operations' output as it comes and their ends; whether
/// every one succeeded.
pub async fn follow(
    client: &Client,
    events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    operations: &[Operation],
) -> Result<bool> {
    let mut printer = LinePrinter::new(operations);
    let finals = stream_until_done(client, events, operations, &mut printer).await?;
    let mut all_ok = true;
    for op in &finals {
        let ok = op.state.is_success();
        all_ok &= ok;
        eprintln!(
            "{} {}: {}{}",
            op.id,
            op.device,
            op.state,
            op.error
                .as_ref()
                .map(|e| format!(" ({})", crate::text::printable(e)))
                .unwrap_or_default()
        );
    }
    wait_for_revokes(client, &finals).await?;
    Ok(all_ok)
}

/// A JIT grant request waits until the privilege it granted is taken back.
async fn wait_for_revokes(client: &Client, finals: &[Operation]) -> Result<()> {
    let granted: Vec<&Operation> = finals
        .iter()
        .filter(|o| o.state == OpState::Succeeded && o.jit_until.is_some())
        .collect();
    if granted.is_empty() {
        return Ok(());
    }
    let mut last_shown: HashMap<Id, String> = HashMap::new();
    loop {
        let Response::Jit(grants) = client.call(Command::Jit { all: true }).await? else {
            bail!("the server answered with something else");
        };
        let mine: Vec<_> = grants
            .iter()
            .map(|l| &l.grant)
            .filter(|g| granted.iter().any(|o| o.id == g.grant_op))
            .collect();
        for g in &mine {
            let state = g.state.to_string();
            if last_shown.get(&g.id) != Some(&state) {
                eprintln!(
                    "[{}] * JIT grant {} until {}: {state}",
                    g.device, g.id, g.expires_at
                );
                last_shown.insert(g.id, state);
            }
        }
        if mine.len() == granted.len()
            && mine
                .iter()
                .all(|g| matches!(g.state, crate::domain::JitState::Revoked { .. }))
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Prints the output of some operations as `[device] line` until they all end.
async fn stream_until_done(
    client: &Client,
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    ops: &[Operation],
    printer: &mut LinePrinter,
) -> Result<Vec<Operation>> {
    let mut done: HashMap<Id, Operation> = HashMap::new();
    // Ops may have finished before the subscription saw them: ask once.
    for op in ops {
        if let Response::Operations(v) = client.call(Command::Operation { id: op.id }).await? {
            if let Some(o) = v.into_iter().next().filter(|o| o.state.is_final()) {
                done.insert(o.id, o);
            }
        }
    }
    while done.len() < ops.len() {
        let Some(event) = events.recv().await else {
            bail!("the server closed the connection while operations ran");
        };
        match event {
            Event::Output { id, chunk } if printer.wants(id) => {
                printer.chunk(client, id, chunk).await?
            }
            Event::OperationChanged(op) if printer.wants(op.id) && op.state.is_final() => {
                done.insert(op.id, *op);
            }
            _ => {}
        }
    }
    // Live output already here (of an operation that ended before the loop
    // began, say) is printed first: the store may lack it (a full disk).
    while let Ok(event) = events.try_recv() {
        if let Event::Output { id, chunk } = event {
            if printer.wants(id) {
                printer.chunk(client, id, chunk).await?;
            }
        }
    }
    // Whatever live events were skipped is in the store.
    for op in ops {
        printer.catch_up(client, op.id).await?;
        printer.flush(op.id);
    }
    Ok(ops.iter().filter_map(|o| done.remove(&o.id)).collect())
}

/// Turns chunks into whole lines prefixed with the device, in order per operation.
struct LinePrinter {
    /// Whether the debug trace is asked for too (`logs --debug`).
    debug: bool,
    device: HashMap<Id, String>,
    next_seq: HashMap<Id, u64>,
    partial: HashMap<Id, (Stream, Vec<u8>)>,
}

impl LinePrinter {
    fn new(ops: &[Operation]) -> LinePrinter {
        LinePrinter {
            debug: false,
            device: ops.iter().map(|o| (o.id, o.device.clone())).collect(),
            next_seq: ops.iter().map(|o| (o.id, 0)).collect(),
            partial: HashMap::new(),
        }
    }

    fn wants(&self, id: Id) -> bool {
        self.device.contains_key(&id)
    }

    async fn chunk(&mut self, client: &Client, id: Id, chunk: OutputChunk) -> Result<()> {
        let expected = self.next_seq[&id];
        if chunk.seq < expected {
            return Ok(());
        }
        if chunk.seq > expected {
            self.catch_up(client, id).await?;
            if chunk.seq < self.next_seq[&id] {
                return Ok(());
            }
        }
        self.print(id, &chunk);
        Ok(())
    }

    /// Prints what the store has beyond what was printed. A store that
    /// cannot be read is said and skipped: the operations' ends still come.
    async fn catch_up(&mut self, client: &Client, id: Id) -> Result<()> {
        loop {
            let from = self.next_seq[&id];
            let answer = client
                .call(Command::Output {
                    id,
                    from,
                    limit: 1000,
                    debug: self.debug,
                })
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    eprintln!(
                        "gatehouse: operation {id}: cannot read its stored output: {}",
                        crate::text::printable(&e.to_string())
                    );
                    return Ok(());
                }
            };
            let Response::Output(chunks) = answer else {
                bail!("the server answered with something else");
            };
            if chunks.is_empty() {
                return Ok(());
            }
            for c in &chunks {
                self.print(id, c);
            }
        }
    }

    fn print(&mut self, id: Id, chunk: &OutputChunk) {
        self.next_seq.insert(id, chunk.seq + 1);
        let device = &self.device[&id];
        // One buffered write per chunk, not one per line.
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        let entry = self.partial.entry(id).or_insert((chunk.stream, Vec::new()));
        if entry.0 != chunk.stream && !entry.1.is_empty() {
            let (stream, rest) = std::mem::replace(entry, (chunk.stream, Vec::new()));
            write_line(&mut out, device, stream, &rest);
        }
        entry.0 = chunk.stream;
        entry.1.extend_from_slice(&chunk.bytes);
        // Whole lines are written where they lie; what follows the last
        // line break waits for the next chunk.
        let mut start = 0;
        while let Some(len) = entry.1[start..].iter().position(|b| *b == b'\n') {
            write_line(&mut out, device, entry.0, &entry.1[start..start + len]);
            start += len + 1;
        }
        entry.1.drain(..start);
        if let Err(e) = out.flush() {
            super::out::exit_if_reader_gone(&e);
        }
    }

    fn flush(&mut self, id: Id) {
        if let Some((stream, rest)) = self.partial.remove(&id) {
            if !rest.is_empty() {
                write_line(
                    &mut std::io::stdout().lock(),
                    &self.device[&id],
                    stream,
                    &rest,
                );
            }
        }
    }
}

/// Writes one line; remote bytes never reach the terminal raw.
fn write_line(out: &mut impl Write, device: &str, stream: Stream, bytes: &[u8]) {
    // Most output is plain ASCII: written as it is, without decoding.
    let plain = |b: &u8| (0x20..0x7f).contains(b) || *b == b'\t';
    if stream == Stream::Stdout && bytes.iter().all(plain) {
        let written = out
            .write_all(b"[")
            .and_then(|()| out.write_all(device.as_bytes()))
            .and_then(|()| out.write_all(b"] "))
            .and_then(|()| out.write_all(bytes))
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = written {
            super::out::exit_if_reader_gone(&e);
        }
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    let text = crate::text::printable_cow(&text);
    let written = match stream {
        Stream::System => writeln!(out, "[{device}] * {text}"),
        // Marked in words, not only in colour: logs are read in pipes and files.
        Stream::Stderr => writeln!(out, "[{device} stderr] {text}"),
        Stream::Debug => writeln!(out, "[{device} debug] {text}"),
        Stream::Stdout => writeln!(out, "[{device}] {text}"),
    };
    if let Err(e) = written {
        super::out::exit_if_reader_gone(&e);
    }
}

pub async fn ops(cli: &Cli, state: &Option<String>) -> Result<()> {
    let states = match state {
        Some(s) => vec![OpState::parse(s).ok_or_else(|| {
            eyre!(
                "unknown state '{s}'; one of {}",
                OpState::ALL.map(|s| s.as_str()).join(", ")
            )
        })?],
        None => Vec::new(),
    };
    let client = cli.client().await?;
    let Response::Operations(ops) = client.call(Command::Operations { states }).await? else {
        bail!("the server answered with something else");
    };
    print_table(&ops);
    Ok(())
}

fn print_table(ops: &[Operation]) {
    outln!(
        "{:<10} {:<20} {:<16} {:<11} {:>4} {:>8} {:<12} {:<19}",
        "ID",
        "TASK",
        "DEVICE",
        "STATE",
        "EXIT",
        "ATTEMPTS",
        "REQUESTED BY",
        "STARTED"
    );
    for o in ops {
        outln!(
            "{:<10} {:<20} {:<16} {:<11} {:>4} {:>8} {:<12} {:<19}",
            o.id.to_string(),
            o.task,
            o.device,
            o.state.as_str(),
            o.exit_status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            format!("{}/{}", o.attempts, o.max_attempts),
            o.requested_by,
            o.started_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
        );
    }
}

fn parse_id(text: &str) -> Result<Id> {
    text.trim()
        .parse::<u64>()
        .map(Id)
        .map_err(|_| eyre!("'{text}' is not an operation id (a number, as `gatehouse ops` shows)"))
}

pub async fn logs(cli: &Cli, op: &str, follow: bool, debug: bool) -> Result<()> {
    let id = parse_id(op)?;
    let client = cli.client().await?;
    if debug {
        // Refused at once, not line by line, when the trace is not ours to see.
        client
            .call(Command::Output {
                id,
                from: 0,
                limit: 1,
                debug: true,
            })
            .await?;
    }
    let events = if follow {
        Some(client.subscribe().await?)
    } else {
        None
    };
    let Response::Operations(found) = client.call(Command::Operation { id }).await? else {
        bail!("the server answered with something else");
    };
    let mut printer = LinePrinter::new(&found);
    printer.debug = debug;
    match events {
        Some(events) => {
            printer.catch_up(&client, id).await?;
            stream_until_done(&client, events, &found, &mut printer).await?;
        }
        None => {
            printer.catch_up(&client, id).await?;
            printer.flush(id);
        }
    }
    Ok(())
}

pub async fn cancel(cli: &Cli, op: &str) -> Result<()> {
    let id = parse_id(op)?;
    let client = cli.client().await?;
    client.call(Command::Cancel { id }).await?;
    outln!("operation {id}: cancel requested");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// What `gatehouse history` narrows by.
pub struct HistoryArgs<'a> {
    pub task: &'a Option<String>,
    pub user: &'a Option<String>,
    pub device: &'a Option<String>,
    pub state: &'a Option<String>,
    pub since: &'a Option<String>,
    pub text: &'a Option<String>,
    pub output: &'a Option<String>,
}

/// How `history` prints.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum HistoryFormat {
    Table,
    Jsonl,
    /// Comma-separated under a header (formula-looking cells start with `'`).
    Csv,
}

const HISTORY_CSV: [&str; 14] = [
    "id",
    "request",
    "task",
    "template",
    "template_revision",
    "device",
    "state",
    "exit_status",
    "attempts",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
    "error",
];

fn history_csv_row(o: &Operation) -> Vec<String> {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_utc().to_rfc3339()).unwrap_or_default();
    vec![
        o.id.to_string(),
        o.request.to_string(),
        o.task.clone(),
        o.template.clone(),
        o.template_revision.to_string(),
        o.device.clone(),
        o.state.as_str().to_string(),
        o.exit_status.map(|c| c.to_string()).unwrap_or_default(),
        o.attempts.to_string(),
        o.requested_by.clone(),
        o.created_at.to_utc().to_rfc3339(),
        time(o.started_at),
        time(o.finished_at),
        o.error.clone().unwrap_or_default(),
    ]
}

pub async fn history(
    cli: &Cli,
    args: HistoryArgs<'_>,
    limit: u32,
    all: bool,
    format: HistoryFormat,
) -> Result<()> {
    let mut csv = match format {
        HistoryFormat::Csv => Some(super::out::Csv::new(
            std::io::BufWriter::new(std::io::stdout()),
            &HISTORY_CSV,
        )?),
        _ => None,
    };
    let mut filter = HistoryFilter {
        task: args.task.clone(),
        user: args.user.clone(),
        device: args.device.clone(),
        state: args
            .state
            .as_deref()
            .map(|s| OpState::parse(s).ok_or_else(|| eyre!("unknown state '{s}'")))
            .transpose()?,
        since: args.since.as_deref().map(parse_since).transpose()?,
        before: None,
        text: args.text.clone(),
        limit,
        output: args.output.clone(),
    };
    let client = cli.client().await?;
    loop {
        let Response::Operations(ops) = client.call(Command::History(filter.clone())).await? else {
            bail!("the server answered with something else");
        };
        match (&mut csv, format) {
            (Some(csv), _) => {
                for o in &ops {
                    csv.row(&history_csv_row(o))?;
                }
            }
            (None, HistoryFormat::Jsonl) => {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for o in &ops {
                    writeln!(out, "{}", super::out::safe(&operation_json(o).to_string()))?;
                }
                out.flush()?;
            }
            (None, _) => print_table(&ops),
        }
        // A full page (the server caps one) may not be everything.
        let page = match limit {
            0 => crate::engine::HISTORY_MAX,
            n => n.min(crate::engine::HISTORY_MAX),
        };
        match ops.last() {
            Some(last) if all && ops.len() as u32 >= page => filter.before = Some(last.id),
            _ => {
                if !all && ops.len() as u32 >= page {
                    eprintln!(
                        "gatehouse: stopped at {} operations (--limit); there may be more: --all reads every one",
                        ops.len()
                    );
                }
                if let Some(csv) = csv {
                    csv.finish()?;
                }
                return Ok(());
            }
        }
    }
}

/// `--since`: RFC 3339, or a duration back from now like `2h` or `30m`.
pub(super) fn parse_since(text: &str) -> Result<Timestamp> {
    if text.ends_with(['s', 'm', 'h', 'd'])
        && text[..text.len() - 1].chars().all(|c| c.is_ascii_digit())
    {
        let n: i64 = text[..text.len() - 1]
            .parse()
            .map_err(|_| eyre!("'{text}' is not a duration"))?;
        let unit = match text.chars().last() {
            Some('s') => 1_000,
            Some('m') => 60_000,
            Some('h') => 3_600_000,
            _ => 86_400_000,
        };
        return Ok(Timestamp(Timestamp::now().0 - n * unit));
    }
    parse_time(text)
}

/// One operation as a JSON object, as `history --json` prints it.
pub fn operation_json(o: &Operation) -> serde_json::Value {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_utc().to_rfc3339());
    serde_json::json!({
        "id": o.id.0,
        "request": o.request.0,
        "task": o.task,
        "template": o.template,
        "template_revision": o.template_revision,
        "device": o.device,
        "state": o.state.as_str(),
        "exit_status": o.exit_status,
        "attempts": o.attempts,
        "max_attempts": o.max_attempts,
        "requested_by": o.requested_by,
        "superuser_bypass": o.superuser_bypass,
        "trigger": o.trigger.to_string(),
        "created_at": o.created_at.to_utc().to_rfc3339(),
        "started_at": time(o.started_at),
        "finished_at": time(o.finished_at),
        "error": o.error,
        "output_bytes": o.output_bytes,
        "output_truncated": o.output_truncated,
    })
}

pub async fn trust(cli: &Cli, device: &str, yes: bool) -> Result<()> {
    let client = cli.client().await?;
    let Response::HostKeys(keys) = client
        .call(Command::ScanHostKeys {
            device: device.to_string(),
        })
        .await?
    else {
        bail!("the server answered with something else");
    };
    outln!("device {device} offers {} host key(s):", keys.len());
    for key in &keys {
        outln!("  {}  {key}", key.fingerprint());
    }
    // Already pinned, exactly these: nothing to confirm, nothing to do.
    if let Ok(Response::Records(records)) = client
        .call(Command::List {
            kind: crate::domain::Kind::Device,
        })
        .await
    {
        let pinned = records.iter().find_map(|r| match r {
            crate::domain::Record::Device(d) if d.meta.name == device => Some(&d.host_keys),
            _ => None,
        });
        if pinned.is_some_and(|p| {
            !p.is_empty() && p.len() == keys.len() && keys.iter().all(|k| p.contains(k))
        }) {
            outln!("already pinned: device {device} offers exactly the keys pinned for it");
            return Ok(());
        }
    }
    if !yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            bail!(
                "not pinned: confirm on a terminal, or pass --yes after checking the fingerprints"
            );
        }
        out!("Pin these keys for {device}, replacing any pinned before? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            outln!("not pinned");
            return Ok(());
        }
    }
    pin(&client, device, keys).await
}

async fn pin(client: &Client, device: &str, keys: Vec<HostKey>) -> Result<()> {
    let fingerprints: Vec<String> = keys.iter().map(|k| k.fingerprint()).collect();
    client
        .call(Command::PinHostKeys {
            device: device.to_string(),
            keys,
        })
        .await?;
    outln!("pinned {} for device {device}", fingerprints.join(", "));
    Ok(())
}

/// The operations of a Superuser's own run, which has an id and no
/// request: made after it, they are newer than it, so history is read
/// back, a page at a time, until it reaches older operations.
async fn operations_of_run(client: &Client, id: Id) -> Result<Vec<Operation>> {
    let mut found = Vec::new();
    let mut before = None;
    loop {
        let Response::Operations(page) = client
            .call(Command::History(HistoryFilter {
                before,
                limit: 500,
                ..Default::default()
            }))
            .await?
        else {
            bail!("the server answered with something else");
        };
        found.extend(page.iter().filter(|o| o.request == id).cloned());
        match page.last() {
            Some(last) if last.id > id => before = Some(last.id),
            _ => break,
        }
    }
    found.sort_by_key(|o| o.id);
    Ok(found)
}

/// `rerun ID [--failed]`: a new request made from an earlier one (an
/// operation's or a request's id), through the same policy and approval
/// path: the same task, devices, values, reason, justification,
/// governance id and change, unless given anew; with `--failed`, only
/// the devices whose operation did not succeed.
pub async fn rerun(cli: &Cli, args: RerunArgs<'_>) -> Result<()> {
    let id = parse_id(args.id)?;
    let client = cli.client().await?;
    // An id is a request's or an operation's (they share one sequence),
    // or a Superuser's own run's, which has operations and no request.
    let (request, ops) = match client.call(Command::RequestOf { id }).await {
        Ok(Response::Requests(mut r)) if !r.is_empty() => (r.pop(), Vec::new()),
        _ => {
            let found = client.call(Command::Operation { id }).await;
            if let Err(crate::client::ClientError::Engine(crate::engine::EngineError::Missing(_))) =
                &found
            {
                let ops = operations_of_run(&client, id).await?;
                if ops.is_empty() {
                    bail!("there is no operation or request {id}");
                }
                (None, ops)
            } else {
                let Response::Operations(mut ops) = found? else {
                    bail!("the server answered with something else");
                };
                let op = ops
                    .pop()
                    .ok_or_else(|| eyre!("there is no operation or request {id}"))?;
                let request = match client.call(Command::RequestOf { id: op.request }).await {
                    Ok(Response::Requests(mut r)) => r.pop(),
                    _ => None,
                };
                (request, vec![op])
            }
        }
    };
    let mut spec = match (&request, ops.first()) {
        (Some(r), _) => RequestSpec {
            task: r.task.clone(),
            devices: r.devices.clone(),
            variables: r.variables.clone(),
            reason: r.reason.clone(),
            justification: r.justification.clone(),
            governance_id: r.governance_id.clone(),
            change: r.change.clone(),
            ..Default::default()
        },
        // A Superuser's own run has no request: its operation says enough.
        (None, Some(o)) => RequestSpec {
            task: o.task.clone(),
            devices: ops.iter().map(|o| o.device.clone()).collect(),
            variables: o.variables.clone(),
            ..Default::default()
        },
        (None, None) => bail!("there is no operation or request {id}"),
    };
    if args.failed {
        let ids: Vec<Id> = match &request {
            Some(r) => r.operations.clone(),
            None => ops.iter().map(|o| o.id).collect(),
        };
        let mut failed = Vec::new();
        for op_id in ids {
            if let Ok(Response::Operations(ops)) =
                client.call(Command::Operation { id: op_id }).await
            {
                failed.extend(
                    ops.into_iter()
                        .filter(|o| o.state.is_final() && !o.state.is_success())
                        .map(|o| o.device),
                );
            }
        }
        if failed.is_empty() {
            outln!("nothing to re-run: no device of it failed");
            return Ok(());
        }
        failed.sort();
        failed.dedup();
        spec.devices = failed;
    }
    for (slot, given) in [
        (&mut spec.reason, args.reason),
        (&mut spec.justification, args.justification),
        (&mut spec.governance_id, args.governance_id),
    ] {
        if given.is_some() {
            *slot = given.clone();
        }
    }
    eprintln!(
        "re-run of {} on {}{}",
        spec.task,
        spec.devices.join(", "),
        request
            .as_ref()
            .map(|r| format!(" (from request {})", r.id))
            .unwrap_or_default()
    );
    submit(cli, spec, args.wait).await
}

/// What `rerun` was given.
pub struct RerunArgs<'a> {
    pub id: &'a str,
    pub failed: bool,
    pub reason: &'a Option<String>,
    pub justification: &'a Option<String>,
    pub governance_id: &'a Option<String>,
    pub wait: bool,
}
