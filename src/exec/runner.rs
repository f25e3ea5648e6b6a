//! The operation queue: bounds on parallelism and handshakes, attempts with
//! backoff, timeouts, cancellation, and the final word stored before it is told.

use super::output::{self, OutputTx};
use super::ssh::Target;
use super::{local, Notify, RunError};
use crate::domain::{
    Credential, Device, Executor, Id, Kind, OpState, Operation, Record, Timestamp,
};
use crate::store::{Change, NewAuditEvent, Store};
use crate::template::{MaskValues, Redactor};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// The bounds that protect the jump host and the devices.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Operations running at once across the server.
    pub server_parallelism: usize,
    /// SSH handshakes in flight to one address:port at most: under
    /// OpenSSH's stock MaxStartups (10); lowered per address while the
    /// server drops handshakes, raised again as they succeed.
    pub handshakes_per_address: usize,
    /// Time to connect and authenticate.
    pub connect_timeout: Duration,
    /// Output stored per operation before it is cut.
    pub output_cap: u64,
    /// The first retry waits this long; each next one twice as long.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Who `local` templates run as.
    pub local_account: local::LocalAccount,
    /// Who is let in without a user record (the engine's, carried here
    /// with the server's other settings).
    pub people: crate::config::PeopleConfig,
    /// An emergency run unreviewed for longer is overdue (the engine's).
    pub review_within: Duration,
    /// The shared PostgreSQL database the records are in (none: the
    /// embedded store in the data directory); the engine's.
    pub store_url: Option<crate::store::StoreUrl>,
    /// On a shared store, a server that has not renewed its entry for this
    /// long is dead, and another takes over its work (the engine's).
    pub cluster_lease: Duration,
    /// On a shared store, the environments this server runs operations in
    /// (empty: all); the engine's.
    pub cluster_environments: Vec<String>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            server_parallelism: 256,
            handshakes_per_address: 8,
            connect_timeout: Duration::from_secs(20),
            output_cap: 16 * 1024 * 1024,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            local_account: local::LocalAccount::Own,
            people: Default::default(),
            review_within: Duration::from_secs(24 * 3600),
            store_url: None,
            cluster_lease: Duration::from_secs(20),
            cluster_environments: Vec::new(),
        }
    }
}

/// Asked when an operation is about to start (after its start time and its
/// slots): why it may no longer, if it may not.
pub type Gate = Arc<dyn Fn(&Operation) -> Result<(), String> + Send + Sync>;

/// Asked before an operation takes its slots: why it must wait a while
/// (a password change of its credential is running), if it must.
pub type Hold = Arc<dyn Fn(&Operation) -> Option<String> + Send + Sync>;

/// The operations submitted together (one request's devices): a playbook
/// serves them from one process.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub id: u64,
    /// How many operations it holds.
    pub size: usize,
    /// How many of them may run at once (the task's parallelism).
    pub forks: usize,
}

/// Runs operations on tokio tasks; hundreds at once without a thread each.
pub struct Runner {
    gate: std::sync::OnceLock<Gate>,
    hold: std::sync::OnceLock<Hold>,
    /// Where every write of the runner goes, and is published from.
    ledger: Arc<dyn super::Ledger>,
    store: Arc<Store>,
    notify: Notify,
    limits: Limits,
    server_slots: Arc<Semaphore>,
    handshakes: Mutex<HashMap<(String, u16), Arc<super::admission::Admission>>>,
    cancels: Mutex<HashMap<Id, watch::Sender<bool>>>,
    active: AtomicUsize,
    finished: mpsc::UnboundedSender<Operation>,
}

impl Runner {
    /// A runner; operations that end are sent to `finished` (for chains).
    pub fn new(
        store: Arc<Store>,
        ledger: Arc<dyn super::Ledger>,
        notify: Notify,
        limits: Limits,
        finished: mpsc::UnboundedSender<Operation>,
    ) -> Runner {
        Runner {
            gate: std::sync::OnceLock::new(),
            hold: std::sync::OnceLock::new(),
            ledger,
            server_slots: Arc::new(Semaphore::new(limits.server_parallelism.max(1))),
            store,
            notify,
            limits,
            handshakes: Mutex::new(HashMap::new()),
            cancels: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            finished,
        }
    }

    /// Sets the check every operation passes when it is about to start.
    pub fn set_gate(&self, gate: Gate) {
        let _ = self.gate.set(gate);
    }

    /// Sets the check that holds an operation back before it starts.
    pub fn set_hold(&self, hold: Hold) {
        let _ = self.hold.set(hold);
    }

    /// How many operations are queued or running.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Starts stored, queued operations, at most `parallelism` of them at once.
    pub fn submit(self: &Arc<Self>, ops: Vec<Operation>, parallelism: usize) {
        static BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let parallelism = parallelism.max(1);
        // A playbook serves all of a batch's devices from one process,
        // whose own forks keep to the parallelism: all start at once.
        let together = ops
            .iter()
            .all(|op| op.executor == Executor::AnsiblePlaybook);
        let info = Batch {
            id: BATCHES.fetch_add(1, Ordering::Relaxed),
            size: ops.len(),
            forks: parallelism,
        };
        let batch = Arc::new(Semaphore::new(if together {
            ops.len().max(1)
        } else {
            parallelism
        }));
        for op in ops {
            let (tx, rx) = watch::channel(false);
            self.cancels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(op.id, tx);
            self.active.fetch_add(1, Ordering::SeqCst);
            let runner = self.clone();
            let batch = batch.clone();
            tokio::spawn(async move {
                let id = op.id;
                runner.clone().run(op, (batch, info), rx).await;
                runner
                    .cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                runner.active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Asks a queued or running operation to stop. False if it is not active.
    pub fn cancel(&self, id: Id) -> bool {
        match self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            Some(tx) => tx.send(true).is_ok(),
            None => false,
        }
    }

    fn handshake_slot(&self, address: &str, port: u16) -> Arc<super::admission::Admission> {
        self.handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((address.to_string(), port))
            .or_insert_with(|| {
                Arc::new(super::admission::Admission::new(
                    self.limits.handshakes_per_address,
                ))
            })
            .clone()
    }

    /// What earlier attempts stored: the cap is for the whole operation.
    fn already_stored(&self, op: &Operation) -> output::OutputTotals {
        output::OutputTotals {
            bytes: op.output_bytes,
            truncated: op.output_truncated,
            unstored: None,
        }
    }

    fn save(&self, op: &Operation) {
        self.ledger.note(op);
    }

    async fn run(
        self: Arc<Self>,
        mut op: Operation,
        (batch, info): (Arc<Semaphore>, Batch),
        mut cancel: watch::Receiver<bool>,
    ) {
        // Wait for the start time, a batch slot and a server slot, unless cancelled first.
        let wait = async {
            let delay = (op.not_before.0 - Timestamp::now().0).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            // Held back without its slots, so others run meanwhile.
            if let Some(hold) = self.hold.get() {
                let mut said = false;
                while let Some(why) = hold(&op) {
                    if !said {
                        tracing::info!(op = %op.id, "waiting: {why}");
                        said = true;
                    }
                    tokio::time::sleep(HOLD_POLL).await;
                }
            }
            let b = batch.acquire_owned().await;
            let s = self.server_slots.clone().acquire_owned().await;
            (b, s)
        };
        let permits = tokio::select! {
            p = wait => Some(p),
            _ = cancelled(&mut cancel) => None,
        };
        let Some(_permits) = permits else {
            return self
                .finish(
                    op,
                    OpState::Cancelled,
                    None,
                    Some("cancelled before it started".into()),
                )
                .await;
        };
        // What was approved, by whom and for when, is checked again now:
        // a queue, a deferred start or a restart may lie between.
        if let Some(Err(why)) = self.gate.get().map(|gate| gate(&op)) {
            let error = format!("did not start: {why}");
            return self
                .finish_as(op, OpState::Failed, None, Some(error), "operation.refused")
                .await;
        }
        loop {
            op.attempts += 1;
            op.state = OpState::Running;
            let first = op.started_at.is_none();
            op.started_at.get_or_insert(Timestamp::now());
            op.error = None;
            // Durable before anything reaches the device: after a crash this
            // attempt shows as interrupted, never as not yet started. The
            // first attempt's start is an audit event too.
            let stored = if first {
                let event = NewAuditEvent::new(
                    &op.requested_by,
                    "operation.start",
                    op.audit_target(),
                    format!(
                        "template {} rev {}, {} attempt(s) allowed",
                        op.template, op.template_revision, op.max_attempts
                    ),
                );
                self.ledger
                    .commit(
                        vec![Change::PutOperation(Box::new(op.clone()))],
                        vec![event],
                    )
                    .await
                    .map(|_| ())
            } else {
                self.save(&op);
                self.ledger.flush().await
            };
            if let Err(e) = stored {
                tracing::error!(op = %op.id, error = %e, "cannot store an operation's start");
            }
            let (result, totals) = self.attempt(&op, info, &mut cancel).await;
            op.output_bytes = totals.bytes;
            op.output_truncated = totals.truncated;
            // An outcome's error, with what could not be stored said too.
            let error = |e: Option<String>| match (e, &totals.unstored) {
                (Some(e), Some(u)) => Some(format!("{e}; {u}")),
                (e, u) => e.or_else(|| u.clone()),
            };
            match result {
                Ok(0) => {
                    return self
                        .finish(op, OpState::Succeeded, Some(0), error(None))
                        .await
                }
                Ok(code) => {
                    let err = RunError::Failed(format!("exit status {code}"));
                    if !self.retry(&mut op, &err, &mut cancel).await {
                        let state = if *cancel.borrow() {
                            OpState::Cancelled
                        } else {
                            OpState::Failed
                        };
                        return self
                            .finish(op, state, Some(code), error(Some(err.to_string())))
                            .await;
                    }
                }
                Err((RunError::Cancelled, _)) => {
                    return self
                        .finish(
                            op,
                            OpState::Cancelled,
                            None,
                            error(Some("cancelled".into())),
                        )
                        .await
                }
                // Nothing to do on the device: said, never run again.
                Err((RunError::Skipped(_), message)) => {
                    return self
                        .finish(op, OpState::Skipped, Some(0), error(Some(message)))
                        .await
                }
                // The change ran: exit status 0 says so, the error why it
                // is not taken as done. Never run again.
                Err((RunError::Unverified(_), message)) => {
                    return self
                        .finish(op, OpState::Failed, Some(0), error(Some(message)))
                        .await
                }
                Err((err, message)) => {
                    if !self.retry(&mut op, &err, &mut cancel).await {
                        let state = if *cancel.borrow() {
                            OpState::Cancelled
                        } else {
                            OpState::Failed
                        };
                        // Say what is known of the remote side: it may have run.
                        let message = match &err {
                            RunError::Dropped(_) if op.rerun == crate::domain::Rerun::Unreached => format!(
                                "{message}; the command may have run on the device, so it was not run again (set idempotent = true on the task where running it twice is safe)"
                            ),
                            RunError::Dropped(_) => {
                                format!("{message}; the command may have run on the device")
                            }
                            _ => message,
                        };
                        return self.finish(op, state, None, error(Some(message))).await;
                    }
                }
            }
        }
    }

    /// Waits out the backoff before another attempt; false when there is none.
    async fn retry(
        &self,
        op: &mut Operation,
        err: &RunError,
        cancel: &mut watch::Receiver<bool>,
    ) -> bool {
        if op.attempts >= op.max_attempts || !err.retryable(op.rerun) || *cancel.borrow() {
            return false;
        }
        op.state = OpState::Retrying;
        self.save(op);
        let delay = backoff(&self.limits, op.attempts);
        tracing::debug!(op = %op.id, attempt = op.attempts, delay_ms = delay.as_millis() as u64, "retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = cancelled(cancel) => false,
        }
    }

    /// One attempt: output captured and redacted, overall timeout, cancel.
    async fn attempt(
        &self,
        op: &Operation,
        batch: Batch,
        cancel: &mut watch::Receiver<bool>,
    ) -> (Result<i32, (RunError, String)>, output::OutputTotals) {
        let prepared = match prepare(&self.store, op) {
            Ok(p) => p,
            Err(e) => {
                let (tx, done) = output::start(
                    self.store.clone(),
                    self.notify.clone(),
                    op.id,
                    &[],
                    self.limits.output_cap,
                    self.already_stored(op),
                );
                let message = e.to_string();
                tx.system(format!("error: {message}")).await;
                drop(tx);
                let totals = done.await.unwrap_or_default();
                return (Err((e, message)), totals);
            }
        };
        let secrets = prepared.values.secrets();
        let redactor = Redactor::new(&secrets);
        let (tx, done) = output::start(
            self.store.clone(),
            self.notify.clone(),
            op.id,
            &secrets,
            self.limits.output_cap,
            self.already_stored(op),
        );
        tx.system(format!(
            "attempt {} of {} on {} ({}, template {} rev {})",
            op.attempts,
            op.max_attempts,
            op.device,
            prepared.where_,
            op.template,
            op.template_revision
        ))
        .await;
        let attempt_started = std::time::Instant::now();
        let timeout = Duration::from_secs(op.timeout_secs.max(1));
        // On timeout and on cancel the executor is told to stop (it ends
        // the remote work) and given a moment to; only then is it let go,
        // and what is known of the remote side is said.
        let (stop_tx, stop_rx) = watch::channel(false);
        let result = {
            let deadline = tokio::time::Instant::now() + timeout;
            let work = self.execute(op, &prepared, &tx, stop_rx, (deadline, batch));
            let mut work = std::pin::pin!(work);
            let ended = tokio::select! {
                r = &mut work => Some(r),
                _ = tokio::time::sleep(timeout) => None,
                _ = cancelled(cancel) => None,
            };
            match ended {
                Some(r) => r,
                None => {
                    let _ = stop_tx.send(true);
                    let stopped = tokio::time::timeout(STOP_WAIT, &mut work).await.is_ok();
                    let unsure = if stopped {
                        ""
                    } else {
                        "; the remote command may still be running"
                    };
                    if *cancel.borrow() {
                        if stopped {
                            Err(RunError::Cancelled)
                        } else {
                            Err(RunError::Failed(format!("cancelled{unsure}")))
                        }
                    } else {
                        Err(RunError::Failed(format!(
                            "the operation timed out after {} s{unsure}",
                            timeout.as_secs()
                        )))
                    }
                }
            }
        };
        let result = result.map_err(|e| {
            let message = redactor.redact_text(&e.to_string());
            (e, message)
        });
        tx.debug(format!(
            "attempt {} of {} took {} ms; {}",
            op.attempts,
            op.max_attempts,
            attempt_started.elapsed().as_millis(),
            match &result {
                Ok(_) | Err((RunError::Skipped(_), _)) => "the command ran to its end".to_string(),
                Err((e, _)) if op.attempts < op.max_attempts && e.retryable(op.rerun) =>
                    "another attempt follows".to_string(),
                Err((e, _)) if e.retryable(op.rerun) => "no attempt is left".to_string(),
                Err(_) => "this end is not retried".to_string(),
            }
        ))
        .await;
        match &result {
            Ok(code) => tx.system(format!("exit status {code}")).await,
            Err((RunError::Cancelled, _)) => tx.system("cancelled").await,
            Err((RunError::Skipped(_), message)) => tx.system(format!("skipped: {message}")).await,
            Err((_, message)) => tx.system(format!("error: {message}")).await,
        }
        drop(tx);
        let totals = done.await.unwrap_or_default();
        (result, totals)
    }

    async fn execute(
        &self,
        op: &Operation,
        p: &Prepared,
        out: &OutputTx,
        stop: watch::Receiver<bool>,
        (deadline, batch): (tokio::time::Instant, Batch),
    ) -> Result<i32, RunError> {
        let job = super::executor::Job {
            op,
            prepared: p,
            out,
            stop,
            deadline,
            batch,
            limits: &self.limits,
            handshakes: self.handshake_slot(&p.target.address, p.target.port),
        };
        let code = super::executor::of(op.executor).run(job).await?;
        if code == 0 {
            for target in &p.verify {
                self.verify(target, out, deadline).await?;
            }
        }
        Ok(code)
    }

    /// After a password change: logs in with the new password, by password
    /// alone, to show that it works before it is stored.
    async fn verify(
        &self,
        target: &Target,
        out: &OutputTx,
        deadline: tokio::time::Instant,
    ) -> Result<(), RunError> {
        let secret = if target.private_key.is_some() {
            "key"
        } else {
            "password"
        };
        out.system(format!(
            "verifying: logging in to {} as {} with the new {secret}",
            target.device, target.username
        ))
        .await;
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(self.limits.connect_timeout);
        match super::ssh::connect(target, left, self.limits.connect_timeout).await {
            Ok(session) => {
                session.close().await;
                out.system(format!("verified: the new {secret} logs in")).await;
                Ok(())
            }
            Err(e) => Err(RunError::Unverified(format!(
                "the change ran, but the new {secret} does not log in to '{}' as '{}' ({e}); the credential is marked out of sync",
                target.device, target.username
            ))),
        }
    }

    /// Stores the final state with its audit event, flushed, then tells.
    async fn finish(
        &self,
        op: Operation,
        state: OpState,
        exit: Option<i32>,
        error: Option<String>,
    ) {
        self.finish_as(op, state, exit, error, "operation.finish")
            .await
    }

    /// [`Runner::finish`] under another audit action.
    async fn finish_as(
        &self,
        mut op: Operation,
        state: OpState,
        exit: Option<i32>,
        error: Option<String>,
        action: &str,
    ) {
        op.state = state;
        op.exit_status = exit;
        op.error = error;
        op.finished_at = Some(Timestamp::now());
        let details = match (&op.exit_status, &op.error) {
            (_, Some(e)) => format!("{state} after {} attempt(s): {e}", op.attempts),
            (Some(code), None) => {
                format!("{state}, exit status {code}, {} attempt(s)", op.attempts)
            }
            (None, None) => state.to_string(),
        };
        let event = NewAuditEvent::new(&op.requested_by, action, op.audit_target(), details);
        // Committed and published (the operation and its audit event) in one step.
        if let Err(e) = self
            .ledger
            .commit(
                vec![Change::PutOperation(Box::new(op.clone()))],
                vec![event],
            )
            .await
        {
            tracing::error!(op = %op.id, error = %e, "cannot store an operation's end");
            // Still tell the watchers how it ended.
            self.ledger.note(&op);
        }
        let _ = self.finished.send(op);
    }
}

/// Resolves once cancel is asked; never otherwise.
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow() {
            return;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How often a held operation asks again whether it may go.
const HOLD_POLL: Duration = Duration::from_millis(250);

/// How long a stopped executor has to end its remote work before it is let go.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Exponential backoff with ±25 % jitter, capped.
fn backoff(limits: &Limits, attempt: u32) -> Duration {
    use rand::Rng;
    let exp = limits
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(limits.backoff_max);
    let jitter = rand::thread_rng().gen_range(0.75..1.25);
    capped.mul_f64(jitter)
}

/// Everything one attempt needs, loaded fresh from the store.
pub struct Prepared {
    /// The pinned template revision's content.
    pub content: String,
    /// ssh-script: what reads the script (blank: the shell or its `#!`).
    pub interpreter: String,
    /// ssh-script: on a PTY.
    pub pty: bool,
    /// A change: the changed credential on this device with each new
    /// secret alone, to log in with before the change counts.
    pub verify: Vec<Target>,
    /// The values of the template's masks, secrets among them.
    pub values: MaskValues,
    /// Where and as whom (for remote executors).
    pub target: Target,
    /// Where it runs, for the output's first line.
    where_: String,
    /// A dry run (a playbook's `--check --diff`): nothing may change.
    pub check: bool,
}

fn prepare(store: &Store, op: &Operation) -> Result<Prepared, RunError> {
    let invalid = |m: String| RunError::Invalid(m);
    let template = store
        .template_revision(op.template_id, op.template_revision)
        .map_err(|e| invalid(e.to_string()))?
        .ok_or_else(|| {
            invalid(format!(
                "template '{}' revision {} is missing",
                op.template, op.template_revision
            ))
        })?;
    let device: Device = match store
        .find(Kind::Device, &op.device)
        .map_err(|e| invalid(e.to_string()))?
    {
        Some(Record::Device(d)) => d,
        _ => return Err(invalid(format!("device '{}' no longer exists", op.device))),
    };
    if !device.meta.enabled {
        return Err(invalid(format!("device '{}' is disabled", op.device)));
    }
    let credential: Credential = match store
        .find(Kind::Credential, &op.credential)
        .map_err(|e| invalid(e.to_string()))?
    {
        Some(Record::Credential(c)) => c,
        // None at all: what runs on the Gatehouse host logs in nowhere.
        None if op.credential.is_empty() && !super::executor::of(op.executor).remote() => {
            Credential::default()
        }
        _ => {
            return Err(invalid(format!(
                "credential '{}' no longer exists",
                op.credential
            )))
        }
    };
    if !op.credential.is_empty() && !credential.meta.enabled {
        return Err(invalid(format!(
            "credential '{}' is disabled",
            op.credential
        )));
    }
    let secrets = Secrets::open(store, &credential)?;
    let (password, passphrase) = (secrets.password.clone(), secrets.passphrase.clone());
    // A JIT grant or revoke of a credential that names `change_with` logs
    // in as that login (root making or removing the account); USERNAME and
    // PASSWORD stay the credential's (the account the grant is about).
    let jit_op =
        op.jit_until.is_some() || matches!(op.trigger, crate::domain::Trigger::JitExpiry { .. });
    let jit_login = match (&credential.change_with, jit_op) {
        (Some(login), true) => match store
            .find(Kind::Credential, login)
            .map_err(|e| invalid(e.to_string()))?
        {
            Some(Record::Credential(c)) if c.meta.enabled => Some(c),
            _ => {
                return Err(invalid(format!(
                    "credential '{}' grants and revokes through '{login}' (change_with), which does not exist or is disabled",
                    credential.meta.name
                )))
            }
        },
        _ => None,
    };
    // A password change: the new password (sealed in the credential's
    // secret state until verified) and the old one.
    let change = match &op.trigger {
        crate::domain::Trigger::CredentialChange {
            credential: changed,
            ..
        } => Some(change_values(store, changed)?),
        _ => None,
    };

    let mut values = MaskValues::default();
    values.set("AUTH_USER", credential.username.clone());
    values.set("USERNAME", credential.username.clone());
    values.set("DEVICE", device.meta.name.clone());
    values.set("HOSTNAME", device.meta.name.clone());
    values.set("ADDRESS", device.address.clone());
    values.set("PORT", device.port.to_string());
    if let Some(p) = &password {
        values.set_secret("AUTH_PASSWORD", p.clone());
        values.set_secret("PASSWORD", p.clone());
    }
    if let Some(p) = &passphrase {
        values.set_secret("PASSPHRASE", p.clone());
    }
    let (credential, secrets) = match jit_login {
        Some(login) => {
            let login_secrets = Secrets::open(store, &login)?;
            values.set("AUTH_USER", login.username.clone());
            match &login_secrets.password {
                Some(p) => values.set_secret("AUTH_PASSWORD", p.clone()),
                None => values.remove("AUTH_PASSWORD"),
            }
            (login, login_secrets)
        }
        None => (credential, secrets),
    };
    // In a change, USERNAME and PASSWORD are the changed credential's (the
    // account whose password changes); AUTH_USER and AUTH_PASSWORD stay
    // the login's (root running chpasswd, or the same account).
    if let Some(change) = &change {
        values.set("USERNAME", change.credential.username.clone());
        if let Some(new) = &change.new_password {
            values.set_secret("NEW_PASSWORD", new.clone());
        }
        if let Some(old) = &change.old_password {
            values.set_secret("OLD_PASSWORD", old.clone());
            values.set_secret("PASSWORD", old.clone());
        }
        // Public keys are no secrets; the private halves never reach a template.
        if let Some(key) = &change.new_public_key {
            values.set("NEW_PUBLIC_KEY", key.clone());
        }
        if let Some(key) = &change.old_public_key {
            values.set("OLD_PUBLIC_KEY", key.clone());
        }
    }
    // Checked again here: the template may have changed its patterns since.
    for variable in &template.variables {
        let value = op
            .variables
            .get(&variable.name)
            .cloned()
            .or_else(|| variable.default.clone())
            .unwrap_or_default();
        crate::template::check_value(variable, &value).map_err(RunError::Invalid)?;
        values.set_declared(&variable.name, value);
    }
    // A dry run changes nothing: only a playbook (run with --check) has one.
    let check = matches!(op.trigger, crate::domain::Trigger::DryRun { .. });
    if check && template.executor != Executor::AnsiblePlaybook {
        return Err(invalid(format!(
            "a dry run is for playbooks; template '{}' runs {}",
            op.template,
            template.executor.as_str()
        )));
    }
    let where_ = match template.executor {
        Executor::Local => "this host".to_string(),
        _ => format!("{}@{}:{}", credential.username, device.address, device.port),
    };
    let target = if super::executor::of(template.executor).remote() {
        target_of(store, &device, &credential, secrets, 0)?
    } else {
        Target::local()
    };
    // Each new secret alone: a key the credential also holds would log in
    // whatever the password became, and the other way round.
    let mut verify = Vec::new();
    if let Some(change) = change {
        let credential = Credential {
            certificate: None,
            ..change.credential
        };
        if let Some(password) = change.new_password {
            let with_new = Secrets {
                password: Some(password),
                private_key: None,
                passphrase: None,
            };
            verify.push(target_of(store, &device, &credential, with_new, 0)?);
        }
        if let Some(key) = change.new_private_key {
            let with_new = Secrets {
                password: None,
                private_key: Some(key),
                passphrase: None,
            };
            verify.push(target_of(store, &device, &credential, with_new, 0)?);
        }
    }
    Ok(Prepared {
        content: template.content,
        interpreter: template.interpreter,
        pty: template.pty,
        verify,
        values,
        target,
        where_,
        check,
    })
}

/// What a password change fills in: the changed credential, its new
/// password and its current one.
struct ChangeValues {
    credential: Credential,
    new_password: Option<SecretString>,
    old_password: Option<SecretString>,
    new_private_key: Option<SecretString>,
    new_public_key: Option<String>,
    old_public_key: Option<String>,
}

fn change_values(store: &Store, name: &str) -> Result<ChangeValues, RunError> {
    let invalid = |m: String| RunError::Invalid(m);
    let credential = match store
        .find(Kind::Credential, name)
        .map_err(|e| invalid(e.to_string()))?
    {
        Some(Record::Credential(c)) => c,
        _ => return Err(invalid(format!("credential '{name}' no longer exists"))),
    };
    let state = store
        .secret_state(credential.meta.id)
        .map_err(|e| invalid(e.to_string()))?;
    let pending = state.and_then(|s| s.pending).ok_or_else(|| {
        invalid(format!(
            "credential '{name}' has no change under way (was it given up?)"
        ))
    })?;
    let open = |sealed: &crate::domain::Sealed| -> Result<SecretString, RunError> {
        let plain = store
            .cipher()
            .open(sealed)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(SecretString::from(
            String::from_utf8_lossy(&plain).into_owned(),
        ))
    };
    let new_password = pending.password.as_ref().map(open).transpose()?;
    let old_password = credential.password.as_ref().map(open).transpose()?;
    let new_private_key = pending.private_key.as_ref().map(open).transpose()?;
    // Public halves, as an authorized_keys line takes them.
    let public = |private: &SecretString, passphrase: Option<&SecretString>| {
        use secrecy::ExposeSecret;
        russh::keys::decode_secret_key(
            private.expose_secret(),
            passphrase.map(|p| p.expose_secret()),
        )
        .ok()
        .and_then(|k| k.public_key().to_openssh().ok())
    };
    let new_public_key = new_private_key.as_ref().and_then(|k| public(k, None));
    let old_passphrase = credential.passphrase.as_ref().map(open).transpose()?;
    let old_public_key = credential
        .private_key
        .as_ref()
        .map(open)
        .transpose()?
        .and_then(|k| public(&k, old_passphrase.as_ref()));
    if new_private_key.is_some() && new_public_key.is_none() {
        return Err(invalid(format!(
            "credential '{name}': the new key cannot be read back"
        )));
    }
    Ok(ChangeValues {
        credential,
        new_password,
        old_password,
        new_private_key,
        new_public_key,
        old_public_key,
    })
}

/// A credential's secrets, opened.
struct Secrets {
    password: Option<SecretString>,
    private_key: Option<SecretString>,
    passphrase: Option<SecretString>,
}

impl Secrets {
    fn open(store: &Store, credential: &Credential) -> Result<Secrets, RunError> {
        let open =
            |sealed: &Option<crate::domain::Sealed>| -> Result<Option<SecretString>, RunError> {
                match sealed {
                    None => Ok(None),
                    Some(s) => {
                        let plain = store
                            .cipher()
                            .open(s)
                            .map_err(|e| RunError::Invalid(e.to_string()))?;
                        Ok(Some(SecretString::from(
                            String::from_utf8_lossy(&plain).into_owned(),
                        )))
                    }
                }
            };
        Ok(Secrets {
            password: open(&credential.password)?,
            private_key: open(&credential.private_key)?,
            passphrase: open(&credential.passphrase)?,
        })
    }
}

/// Logs in to a device with a credential's stored secret (its password
/// alone when it holds one: that is what changes behind Gatehouse's back)
/// and out again: whether it still works.
pub async fn check_login(
    store: &Store,
    device: &Device,
    credential: &Credential,
    timeout: Duration,
) -> Result<(), RunError> {
    let mut secrets = Secrets::open(store, credential)?;
    let mut credential = credential.clone();
    if secrets.password.is_some() {
        secrets.private_key = None;
        secrets.passphrase = None;
        credential.certificate = None;
    }
    let target = target_of(store, device, &credential, secrets, 0)?;
    let session = super::ssh::connect(&target, timeout, timeout).await?;
    session.close().await;
    Ok(())
}

/// How to reach a device and log in to it with a credential, for a
/// privileged session: the secrets stay inside the target.
pub fn login_target(
    store: &Store,
    device: &Device,
    credential: &Credential,
) -> Result<Target, RunError> {
    let secrets = Secrets::open(store, credential)?;
    target_of(store, device, credential, secrets, 0)
}

/// How to reach a device to read its host keys: its algorithms and the
/// devices it goes through (logged in with their credentials); nobody
/// logs in to the device itself.
pub fn scan_target(store: &Store, device: &Device) -> Result<Target, RunError> {
    let nobody = Secrets {
        password: None,
        private_key: None,
        passphrase: None,
    };
    target_of(store, device, &Credential::default(), nobody, 0)
}

/// The most devices a connection goes through (`via` chains).
const MAX_VIA: usize = 4;

/// How to reach a device: its address, pinned keys and algorithms (its
/// environment's, changed by its own), the credential's login, and the
/// device it goes through, reached with that device's own credential.
fn target_of(
    store: &Store,
    device: &Device,
    credential: &Credential,
    secrets: Secrets,
    hops: usize,
) -> Result<Target, RunError> {
    let invalid = |m: String| RunError::Invalid(m);
    let environment = match store
        .find(Kind::Environment, &device.environment)
        .map_err(|e| invalid(e.to_string()))?
    {
        Some(Record::Environment(e)) => e.ssh_options,
        _ => Default::default(),
    };
    let preferred =
        super::algorithms::preferred(&device.ssh_options, &environment, &device.host_keys)
            .map_err(|e| invalid(format!("device '{}': {e}", device.meta.name)))?;
    let via = match &device.via {
        None => None,
        Some(_) if hops >= MAX_VIA => {
            return Err(invalid(format!(
                "device '{}' is reached through more than {MAX_VIA} devices (a loop of `via`?)",
                device.meta.name
            )))
        }
        Some(name) => {
            let jump = match store
                .find(Kind::Device, name)
                .map_err(|e| invalid(e.to_string()))?
            {
                Some(Record::Device(d)) if d.meta.enabled => d,
                Some(_) => {
                    return Err(invalid(format!(
                        "device '{}' is reached through device '{name}', which is disabled",
                        device.meta.name
                    )))
                }
                None => {
                    return Err(invalid(format!(
                        "device '{}' is reached through device '{name}', which does not exist",
                        device.meta.name
                    )))
                }
            };
            let owned = store
                .device_credentials(name)
                .map_err(|e| invalid(e.to_string()))?;
            let login = match owned.as_slice() {
                [one] => one,
                [] => {
                    return Err(invalid(format!(
                        "device '{}' is reached through device '{name}', and no enabled credential belongs to '{name}' (one with device = \"{name}\")",
                        device.meta.name
                    )))
                }
                many => {
                    return Err(invalid(format!(
                        "device '{}' is reached through device '{name}', to which several credentials belong ({}): keep one enabled",
                        device.meta.name,
                        many.iter().map(|c| c.meta.name.as_str()).collect::<Vec<_>>().join(", ")
                    )))
                }
            };
            let secrets = Secrets::open(store, login)?;
            Some(Box::new(target_of(store, &jump, login, secrets, hops + 1)?))
        }
    };
    Ok(Target {
        device: device.meta.name.clone(),
        address: device.address.clone(),
        port: device.port,
        pinned: device.host_keys.clone(),
        preferred,
        username: credential.username.clone(),
        password: secrets.password,
        private_key: secrets.private_key,
        passphrase: secrets.passphrase,
        certificate: credential.certificate.clone(),
        via,
    })
}
