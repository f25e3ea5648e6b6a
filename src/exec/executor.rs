//! Executors behind one trait. Each kind of template (`executor = "…"`)
//! is one implementation: it checks a template's content, and runs one
//! attempt of an operation from what the runner prepared (the pinned
//! template's content, the values, the target) with a stop signal and an
//! output sink, reporting the exit status or why not. The runner knows
//! nothing of SSH or of local processes; [`of`] is the one list.
//!
//! To add an executor: a variant of `domain::Executor` (last: it is
//! stored), its name in `Executor::NAMES`, a type here implementing
//! [`Executor`], and its arm in [`of`].

use super::output::OutputTx;
use super::runner::{Limits, Prepared};
use super::{local, ssh, RunError};
use crate::domain::{self, Operation};
use crate::template::{self, Redactor, TemplateError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One attempt's work, as the runner hands it to an executor.
pub struct Job<'a> {
    pub op: &'a Operation,
    pub prepared: &'a Prepared,
    pub out: &'a OutputTx,
    /// Turns true when the operation is cancelled.
    pub stop: watch::Receiver<bool>,
    pub limits: &'a Limits,
    /// When the operation's timeout runs out.
    pub deadline: tokio::time::Instant,
    /// The handshakes allowed in flight to this job's address:port.
    pub handshakes: Arc<super::admission::Admission>,
    /// The operations submitted with this one.
    pub batch: super::runner::Batch,
}

/// The outcome of an attempt: the exit status, or why there is none.
pub type Outcome<'a> = Pin<Box<dyn Future<Output = Result<i32, RunError>> + Send + 'a>>;

/// What every executor does.
pub trait Executor: Send + Sync {
    /// The stored kind this executor runs.
    fn kind(&self) -> domain::Executor;
    /// Whether its operations reach a device (an address, a port, a
    /// credential), or run on the Gatehouse host.
    fn remote(&self) -> bool;
    /// Checks a template's content beyond what every template must pass
    /// (masks): errors name the line and column.
    fn check(&self, content: &str) -> Result<(), TemplateError>;
    /// Runs one attempt.
    fn run<'a>(&'a self, job: Job<'a>) -> Outcome<'a>;
}

/// The executor of a kind: the one list.
pub fn of(kind: domain::Executor) -> &'static dyn Executor {
    match kind {
        domain::Executor::SshExpect => &SshExpect,
        domain::Executor::SshScript => &SshScript,
        domain::Executor::Local => &Local,
        domain::Executor::AnsiblePlaybook => &super::ansible::AnsiblePlaybook,
    }
}

/// A shell script on the Gatehouse host, as the `[local] user`.
pub struct Local;

impl Executor for Local {
    fn kind(&self) -> domain::Executor {
        domain::Executor::Local
    }
    fn remote(&self) -> bool {
        false
    }
    fn check(&self, _content: &str) -> Result<(), TemplateError> {
        Ok(())
    }
    fn run<'a>(&'a self, job: Job<'a>) -> Outcome<'a> {
        Box::pin(async move {
            let script = template::substitute(&job.prepared.content, &job.prepared.values, true);
            local::run_script(
                &script,
                &job.limits.local_account,
                job.out,
                job.stop.clone(),
            )
            .await
        })
    }
}

/// A shell script on an SSH exec channel; its exit status decides.
pub struct SshScript;

impl Executor for SshScript {
    fn kind(&self) -> domain::Executor {
        domain::Executor::SshScript
    }
    fn remote(&self) -> bool {
        true
    }
    fn check(&self, content: &str) -> Result<(), TemplateError> {
        ssh::check_shebang(content).map_err(|message| TemplateError {
            line: 1,
            column: 1,
            message,
        })
    }
    fn run<'a>(&'a self, job: Job<'a>) -> Outcome<'a> {
        Box::pin(async move {
            let program = ssh::Program::of(&job.prepared.content, &job.prepared.interpreter)?;
            let session = connect(&job).await?;
            let script = template::substitute(&job.prepared.content, &job.prepared.values, true);
            let result = ssh::run_script(
                &session.handle,
                &script,
                &program,
                job.prepared.pty,
                job.out,
                job.stop.clone(),
            )
            .await;
            session.close().await;
            result
        })
    }
}

/// An interactive shell on a PTY, driven line by line by expect and exec steps.
pub struct SshExpect;

impl Executor for SshExpect {
    fn kind(&self) -> domain::Executor {
        domain::Executor::SshExpect
    }
    fn remote(&self) -> bool {
        true
    }
    fn check(&self, content: &str) -> Result<(), TemplateError> {
        template::parse_expect(content).map(|_| ())
    }
    fn run<'a>(&'a self, job: Job<'a>) -> Outcome<'a> {
        Box::pin(async move {
            // Expect lines are typed into a shell: a value with a line
            // break would run a second command.
            if let Some(name) = job.prepared.values.with_control_characters() {
                return Err(RunError::Invalid(format!(
                    "the value of [#{name}#] holds a line break or another control character; ssh-expect types values into a shell, so each must be one plain line"
                )));
            }
            let steps = template::parse_expect(&job.prepared.content)
                .map_err(|e| RunError::Invalid(e.to_string()))?;
            let session = connect(&job).await?;
            let default_timeout = Duration::from_secs(job.op.timeout_secs.clamp(1, 30));
            let step_deadline = job.deadline
                - Duration::from_secs(1).min(Duration::from_secs(job.op.timeout_secs.max(1)) / 2);
            let redactor = Redactor::new(&job.prepared.values.secrets());
            let values = &job.prepared.values;
            let result = ssh::run_expect(
                &session.handle,
                &steps,
                ssh::StepTimes {
                    default_timeout,
                    task_deadline: step_deadline,
                },
                |text| template::substitute(text, values, false),
                |text| redactor.redact_text(text),
                job.out,
                job.stop.clone(),
            )
            .await;
            session.close().await;
            result
        })
    }
}

/// Connects and authenticates, holding one of the address's handshake
/// slots only while the handshake lasts. A handshake the server drops
/// before it speaks is its throttling: the address gets one slot fewer and
/// the handshake is tried again after a pause, within the connect timeout,
/// without spending an attempt.
async fn connect(job: &Job<'_>) -> Result<ssh::Session, RunError> {
    let started = tokio::time::Instant::now();
    let deadline = started + job.limits.connect_timeout;
    let mut pause = Duration::from_millis(100);
    let target = &job.prepared.target;
    let names = |list: Vec<&str>| list.join(",");
    let offer = &target.preferred;
    job.out
        .debug(format!(
            "connecting to {}:{}{}; offering kex {}; host keys {}; ciphers {}; MACs {}",
            target.address,
            target.port,
            target
                .via
                .as_ref()
                .map(|v| format!(" through {}", v.device))
                .unwrap_or_default(),
            names(offer.kex.iter().map(|n| n.as_ref()).collect()),
            names(offer.key.iter().map(|k| k.as_str()).collect()),
            names(offer.cipher.iter().map(|n| n.as_ref()).collect()),
            names(offer.mac.iter().map(|n| n.as_ref()).collect()),
        ))
        .await;
    loop {
        let handshake = job
            .handshakes
            .acquire()
            .await
            .ok_or_else(|| RunError::Connect("shutting down".into()))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ssh::connect(&job.prepared.target, left, job.limits.connect_timeout).await {
            Ok(session) => {
                job.handshakes.succeeded();
                job.out
                    .debug(format!(
                        "session up in {} ms: {}",
                        started.elapsed().as_millis(),
                        session.facts
                    ))
                    .await;
                return Ok(session);
            }
            Err(RunError::Throttled(why)) => {
                drop(handshake);
                job.handshakes.throttled();
                let jitter = rand::random::<f64>() * 0.5 + 0.75;
                let wait = pause.mul_f64(jitter);
                if tokio::time::Instant::now() + wait >= deadline {
                    return Err(RunError::Connect(format!(
                        "{why}; the server kept dropping new connections for {} s (its MaxStartups throttling? fewer at once: [limits] handshakes_per_address)",
                        job.limits.connect_timeout.as_secs()
                    )));
                }
                job.out
                    .debug(format!(
                        "the server dropped the handshake before it spoke (its MaxStartups?): trying again in {} ms; {} handshake(s) at once to this address now",
                        wait.as_millis(),
                        job.handshakes.limit()
                    ))
                    .await;
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(other) => return Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_executor_and_only_expect_parses_lines() {
        for kind in domain::Executor::ALL {
            assert_eq!(of(kind).kind(), kind);
        }
        assert!(!of(domain::Executor::Local).remote());
        assert!(of(domain::Executor::SshScript).remote());
        let not_expect = "echo hi\nfor x in 1 2; do echo $x; done";
        assert!(of(domain::Executor::SshScript).check(not_expect).is_ok());
        assert!(of(domain::Executor::SshExpect).check(not_expect).is_err());
    }
}
