//! The `ansible-playbook` executor: a playbook template runs through the
//! jump host's `ansible-playbook` against the task's devices, one process
//! for the operations submitted together (a request's devices), with its
//! per-host events split to each device's operation as they happen.
//!
//! Each operation's attempt joins a gathering of its batch; when all have
//! joined (or [`GATHER`] has passed) one process starts for them, in a
//! private directory of its own ([`workspace`]). Its stdout is our
//! callback's JSON lines ([`events`]); each goes to its host's operation.

mod events;
pub mod playbook;
mod ssh_config;
mod workspace;

use super::executor::{Executor, Job, Outcome};
use super::local::{self, LocalAccount};
use super::output::OutputTx;
use super::RunError;
use crate::domain::{self, Stream};
use crate::template::{Redactor, TemplateError};
use events::Line;
use secrecy::SecretString;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{oneshot, watch, Notify};

/// How long the first operation of a batch waits for the others to join
/// (they all start at once; this bounds only a wait for one that failed
/// before it could join, or a loaded server's slow start).
const GATHER: Duration = Duration::from_secs(2);

/// The executor.
pub struct AnsiblePlaybook;

impl Executor for AnsiblePlaybook {
    fn kind(&self) -> domain::Executor {
        domain::Executor::AnsiblePlaybook
    }
    fn remote(&self) -> bool {
        true
    }
    fn check(&self, content: &str) -> Result<(), TemplateError> {
        playbook::check(content)
    }
    fn run<'a>(&'a self, job: Job<'a>) -> Outcome<'a> {
        Box::pin(run(job))
    }
}

/// What a run needs from each of its devices.
pub(crate) struct Member {
    /// The inventory's name for it: the device's name.
    pub host: String,
    pub target: super::ssh::Target,
    pub out: OutputTx,
    pub stop: watch::Receiver<bool>,
    pub secrets: Vec<(String, SecretString)>,
    done: oneshot::Sender<Result<i32, RunError>>,
}

/// What every device of a run shares.
#[derive(Clone)]
pub(crate) struct Play {
    /// The playbook as it runs (hosts filled in).
    pub playbook: String,
    /// The template's declared variables, as extra variables.
    pub extra: Vec<(String, String)>,
    /// A dry run: `--check --diff`.
    pub check: bool,
    pub forks: usize,
    pub account: LocalAccount,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    batch: u64,
    attempt: u32,
    play: u64,
}

struct Gathering {
    members: Vec<Member>,
    expected: usize,
    full: Arc<Notify>,
}

static GATHERINGS: LazyLock<Mutex<HashMap<Key, Gathering>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

async fn run(job: Job<'_>) -> Result<i32, RunError> {
    let prepared = job.prepared;
    let playbook = playbook::for_run(&prepared.content).map_err(|e| {
        RunError::Invalid(format!(
            "the playbook of template '{}': {e}",
            job.op.template
        ))
    })?;
    let play = Play {
        playbook,
        extra: prepared.values.declared_values(),
        check: prepared.check,
        forks: job.batch.forks.clamp(1, 256),
        account: job.limits.local_account.clone(),
    };
    let key = Key {
        batch: job.batch.id,
        attempt: job.op.attempts,
        play: fingerprint(&play),
    };
    let (done, answer) = oneshot::channel();
    let member = Member {
        host: job.op.device.clone(),
        target: prepared.target.clone(),
        out: job.out.clone(),
        stop: job.stop.clone(),
        secrets: prepared
            .values
            .secrets()
            .into_iter()
            .chain(bastion_passwords(&prepared.target))
            .collect(),
        done,
    };
    join(key, play, member, job.batch.size);
    answer.await.unwrap_or_else(|_| {
        Err(RunError::Failed(
            "the playbook run serving this device ended without a word about it".into(),
        ))
    })
}

/// The passwords of the devices a device is reached through: they are in
/// the run's directory too, so what Ansible prints is redacted of them.
fn bastion_passwords(target: &crate::exec::ssh::Target) -> Vec<(String, SecretString)> {
    let mut all = Vec::new();
    let mut hop = target.via.as_deref();
    while let Some(jump) = hop {
        if let Some(password) = &jump.password {
            all.push(("VIA_PASSWORD".to_string(), password.clone()));
        }
        hop = jump.via.as_deref();
    }
    all
}

/// What tells runs apart within a batch: the playbook, its variables and
/// the mode (devices that differ in them get runs of their own).
fn fingerprint(play: &Play) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    play.playbook.hash(&mut h);
    play.extra.hash(&mut h);
    play.check.hash(&mut h);
    h.finish()
}

/// Adds a device to its batch's gathering; the first starts the run.
fn join(key: Key, play: Play, member: Member, expected: usize) {
    let mut all = GATHERINGS.lock().unwrap_or_else(|p| p.into_inner());
    let gathering = all.entry(key.clone()).or_insert_with(|| {
        let full = Arc::new(Notify::new());
        tokio::spawn(launch(key, play, full.clone()));
        Gathering {
            members: Vec::new(),
            expected: expected.max(1),
            full,
        }
    });
    gathering.members.push(member);
    if gathering.members.len() >= gathering.expected {
        gathering.full.notify_one();
    }
}

/// Waits for the batch to gather, then runs it.
async fn launch(key: Key, play: Play, full: Arc<Notify>) {
    tokio::select! {
        _ = full.notified() => {}
        _ = tokio::time::sleep(GATHER) => {}
    }
    let members = GATHERINGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key)
        .map(|g| g.members)
        .unwrap_or_default();
    if !members.is_empty() {
        execute(play, members).await;
    }
}

/// The program, from the jump host's own installation.
fn program() -> Result<std::path::PathBuf, RunError> {
    local::SCRIPT_PATH
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("ansible-playbook"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RunError::Invalid(
                "ansible-playbook is not installed on this jump host: install ansible-core (apt-get install ansible-core sshpass) and run it again".into(),
            )
        })
}

/// Runs one process for the members, routes its events, answers each.
async fn execute(play: Play, members: Vec<Member>) {
    // Every secret of the run: a line that is not one host's (Ansible's
    // own warnings) reaches every member, so it is redacted for all.
    let all_secrets: Vec<_> = members.iter().flat_map(|m| m.secrets.clone()).collect();
    let redactor = Redactor::new(&all_secrets);
    let mut ready = Vec::new();
    for member in members {
        match workspace::host_entry(&member) {
            Ok(()) => ready.push(member),
            Err(e) => {
                let _ = member.done.send(Err(e));
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    let fail_all = |members: Vec<Member>, e: RunError| {
        for m in members {
            let _ = m.done.send(Err(e.clone()));
        }
    };
    let program = match program() {
        Ok(p) => p,
        Err(e) => return fail_all(ready, e),
    };
    let entered = match &play.account {
        LocalAccount::Own => None,
        LocalAccount::Named(name) => match local::resolve(name) {
            Ok(e) => Some(e),
            Err(e) => return fail_all(ready, e),
        },
    };
    let space = match workspace::Workspace::create(&play, &ready, entered.as_ref()) {
        Ok(s) => s,
        Err(e) => return fail_all(ready, e),
    };
    let mut names: Vec<&str> = ready.iter().map(|m| m.host.as_str()).collect();
    names.sort_unstable();
    for m in &ready {
        m.out
            .system(format!(
                "ansible-playbook{} for {} device(s) at once ({}), {} fork(s)",
                if play.check {
                    " --check --diff (a dry run)"
                } else {
                    ""
                },
                ready.len(),
                names.join(", "),
                play.forks.min(ready.len())
            ))
            .await;
    }
    let mut command = match &entered {
        None => tokio::process::Command::new(&program),
        Some(e) => {
            let mut c = tokio::process::Command::new("setpriv");
            c.args(local::setpriv_args(e)).arg(&program);
            c
        }
    };
    command.args(space.arguments(&play));
    command
        .env_clear()
        .envs(space.environment())
        // Entered as the run's account: its directory is not ours to enter.
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail_all(
                ready,
                RunError::Invalid(format!("cannot start {}: {e}", program.display())),
            )
        }
    };
    let group = child.id().map(|pid| local::Group {
        pgid: pid as i32,
        account: entered.as_ref().map(|e| (e.uid, e.gid)),
    });
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return fail_all(ready, RunError::Invalid("no output pipes".into()));
    };
    let mut stdout = BufReader::new(stdout).lines();
    let mut stderr = BufReader::new(stderr).lines();
    // A stop of any member (cancel, timeout) stops the one process.
    let (stopped_tx, mut stopped_rx) = tokio::sync::mpsc::channel::<usize>(ready.len());
    let watchers: Vec<_> = ready
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut stop = m.stop.clone();
            let tx = stopped_tx.clone();
            tokio::spawn(async move {
                local::stop_asked(&mut stop).await;
                let _ = tx.send(i).await;
            })
        })
        .collect();
    drop(stopped_tx);
    let index: HashMap<String, usize> = ready
        .iter()
        .enumerate()
        .map(|(i, m)| (m.host.clone(), i))
        .collect();
    let mut reports: Vec<events::Report> = vec![events::Report::default(); ready.len()];
    let (mut out_done, mut err_done) = (false, false);
    let mut stopped_by: Option<usize> = None;
    while !(out_done && err_done) {
        tokio::select! {
            i = stopped_rx.recv(), if stopped_by.is_none() => {
                if let Some(i) = i {
                    stopped_by = Some(i);
                    break;
                }
            }
            line = stdout.next_line(), if !out_done => match line {
                Ok(Some(line)) => match events::parse(&line) {
                    Line::Host(event) => {
                        if let Some(&i) = index.get(&event.host) {
                            let shown = event.shown();
                            reports[i].take(&event);
                            let stream = if event.is_bad() { Stream::Stderr } else { Stream::Stdout };
                            ready[i].out.send(stream, shown.into_bytes()).await;
                        }
                    }
                    Line::Stats(stats) => {
                        if let Some(&i) = index.get(&stats.host) {
                            reports[i].stats = Some(stats);
                        }
                    }
                    Line::Everyone(text) => {
                        for m in &ready {
                            m.out.send(Stream::Stdout, text.clone().into_bytes()).await;
                        }
                    }
                    Line::Other(text) => {
                        let text = format!("{}\n", redactor.redact_text(&text));
                        for m in &ready {
                            m.out.send(Stream::Stderr, text.clone().into_bytes()).await;
                        }
                    }
                },
                Ok(None) | Err(_) => out_done = true,
            },
            line = stderr.next_line(), if !err_done => match line {
                Ok(Some(line)) => {
                    let text = format!("{}\n", redactor.redact_text(&line));
                    for m in &ready {
                        m.out.send(Stream::Stderr, text.clone().into_bytes()).await;
                    }
                }
                Ok(None) | Err(_) => err_done = true,
            },
        }
    }
    for w in watchers {
        w.abort();
    }
    if let Some(stopper) = stopped_by {
        // The whole group goes: ansible-playbook, its forks, their ssh.
        drop(group);
        let _ = child.wait().await;
        let stopper_name = ready[stopper].host.clone();
        for (i, m) in ready.into_iter().enumerate() {
            let ran = reports[i].summary();
            let result = if i == stopper || *m.stop.borrow() {
                Err(RunError::Cancelled)
            } else {
                Err(RunError::Failed(format!(
                    "the playbook run was stopped: it also served device '{stopper_name}', whose operation was cancelled or timed out; on this device {ran}"
                )))
            };
            m.out
                .system(format!(
                    "the playbook run was stopped; on this device {ran}"
                ))
                .await;
            let _ = m.done.send(result);
        }
        return;
    }
    let status = child.wait().await.ok().and_then(|s| s.code());
    drop(group);
    for (i, m) in ready.into_iter().enumerate() {
        if let Some(recap) = reports[i].recap() {
            m.out.system(recap).await;
        }
        let _ = m.done.send(reports[i].outcome(status));
    }
    drop(space);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bastion_password_on_the_way_is_redacted() {
        use secrecy::ExposeSecret;
        let hop = |name: &str, password: Option<&str>| {
            let mut t = crate::exec::ssh::Target::local();
            t.device = name.into();
            t.password = password.map(|p| SecretString::from(p.to_string()));
            t
        };
        let mut outer = hop("outer", Some("outer-secret"));
        outer.via = None;
        let mut keyed = hop("keyed", None);
        keyed.via = Some(Box::new(outer));
        let mut inner = hop("inner", Some("inner-secret"));
        inner.via = Some(Box::new(keyed));
        let mut device = hop("device", Some("the-device's-own"));
        device.via = Some(Box::new(inner));
        let found: Vec<String> = bastion_passwords(&device)
            .iter()
            .map(|(_, p)| p.expose_secret().to_string())
            .collect();
        assert_eq!(found, ["inner-secret", "outer-secret"]);
    }

    #[test]
    fn runs_differ_by_playbook_variables_and_mode() {
        let play = Play {
            playbook: "[]".into(),
            extra: vec![("a".into(), "1".into())],
            check: false,
            forks: 2,
            account: LocalAccount::Own,
        };
        let base = fingerprint(&play);
        assert_eq!(base, fingerprint(&play.clone()));
        assert_ne!(
            base,
            fingerprint(&Play {
                check: true,
                ..play.clone()
            })
        );
        assert_ne!(
            base,
            fingerprint(&Play {
                extra: vec![("a".into(), "2".into())],
                ..play.clone()
            })
        );
        // The forks are the batch's, not a difference between devices.
        assert_eq!(base, fingerprint(&Play { forks: 9, ..play }));
    }
}
