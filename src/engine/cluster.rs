//! Several servers on one shared store (one per jump host): what changes
//! on one reaches the clients of every other, through the store's
//! notifications (PostgreSQL's LISTEN/NOTIFY). A message names what
//! changed, never its content: the receiver reads the current state from
//! the store, so a late or reordered message shows nothing stale, and no
//! record, output or secret travels in a notification.

use super::Event;
use crate::domain::{Id, Kind};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What changed, by name or id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Told {
    Record { kind: Kind, name: String },
    Operation { id: Id },
    Request { id: Id },
    Jit { id: Id },
    Session { id: Id },
    Audit { seq: u64 },
    Output { id: Id, seq: u64 },
}

/// One message: which server says it, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    server: u64,
    #[serde(flatten)]
    told: Told,
}

/// What a local event tells the other servers (a shutdown is this
/// server's own business).
pub fn told_of(event: &Event) -> Option<Told> {
    Some(match event {
        Event::RecordChanged { kind, name } => Told::Record {
            kind: *kind,
            name: name.clone(),
        },
        Event::OperationChanged(op) => Told::Operation { id: op.id },
        Event::RequestChanged(r) => Told::Request { id: r.id },
        Event::JitChanged(g) => Told::Jit { id: g.id },
        Event::SessionChanged(s) => Told::Session { id: s.id },
        Event::AuditAppended { seq } => Told::Audit { seq: *seq },
        Event::Output { id, chunk } => Told::Output {
            id: *id,
            seq: chunk.seq,
        },
        Event::ShuttingDown => return None,
    })
}

/// The event a message stands for, as the store has it now (none when
/// the store no longer has it).
pub fn event_of(store: &Store, told: Told) -> Option<Event> {
    let read = |what: &str, e: crate::store::StoreError| {
        tracing::warn!(error = %e, what, "cannot read what another server changed");
    };
    match told {
        Told::Record { kind, name } => Some(Event::RecordChanged { kind, name }),
        Told::Audit { seq } => Some(Event::AuditAppended { seq }),
        Told::Operation { id } => match store.operation(id) {
            Ok(op) => op.map(|op| Event::OperationChanged(Box::new(op))),
            Err(e) => {
                read("operation", e);
                None
            }
        },
        Told::Request { id } => match store.request(id) {
            Ok(r) => r.map(|r| Event::RequestChanged(Box::new(r))),
            Err(e) => {
                read("request", e);
                None
            }
        },
        Told::Session { id } => match store.session(id) {
            Ok(s) => s.map(|s| Event::SessionChanged(Box::new(s))),
            Err(e) => {
                read("session", e);
                None
            }
        },
        Told::Jit { id } => match store.jit_grants() {
            Ok(all) => all
                .into_iter()
                .find(|g| g.id == id)
                .map(|g| Event::JitChanged(Box::new(g))),
            Err(e) => {
                read("JIT grant", e);
                None
            }
        },
        Told::Output { id, seq } => match store.output(id, seq, 1) {
            Ok(chunks) => chunks
                .into_iter()
                .find(|c| c.seq == seq)
                .map(|chunk| Event::Output { id, chunk }),
            Err(e) => {
                read("output", e);
                None
            }
        },
    }
}

/// This server's voice among the others of a shared store.
pub struct Relay {
    server: u64,
    store: Arc<Store>,
}

impl Relay {
    /// A relay when the store is shared; none for a store of one's own.
    pub fn for_store(store: &Arc<Store>) -> Option<Arc<Relay>> {
        store.shared().then(|| {
            let mut bytes = [0u8; 8];
            // A random name: two servers never take each other's messages
            // for their own. Without the OS's randomness, the pid and the
            // clock make one (said in the log).
            if let Err(e) = getrandom::fill(&mut bytes) {
                tracing::warn!(error = %e, "no OS randomness for this server's name; using its pid and the clock");
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                bytes = (nanos ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
            }
            Arc::new(Relay {
                server: u64::from_le_bytes(bytes),
                store: store.clone(),
            })
        })
    }

    /// Tells the other servers about a local event.
    pub fn tell(&self, event: &Event) {
        let Some(told) = told_of(event) else {
            return;
        };
        let message = Message {
            server: self.server,
            told,
        };
        match serde_json::to_string(&message) {
            Ok(text) => self.store.notify(text),
            Err(e) => tracing::warn!(error = %e, "cannot write a message to the other servers"),
        }
    }

    /// Publishes what the other servers tell, as local events, from now
    /// on: `events` for changes, `output` for output.
    pub fn listen(
        self: &Arc<Self>,
        events: tokio::sync::broadcast::Sender<Event>,
        output: tokio::sync::broadcast::Sender<Event>,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        self.store.listen(tx);
        let relay = self.clone();
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                let message: Message = match serde_json::from_str(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "a message from another server cannot be read");
                        continue;
                    }
                };
                if message.server == relay.server {
                    continue;
                }
                let store = relay.store.clone();
                let told = message.told;
                let event = tokio::task::spawn_blocking(move || event_of(&store, told)).await;
                match event {
                    Ok(Some(e @ Event::Output { .. })) => {
                        let _ = output.send(e);
                    }
                    Ok(Some(e)) => {
                        let _ = events.send(e);
                    }
                    Ok(None) | Err(_) => {}
                }
            }
        });
    }
}

/// This server's membership of a shared store's servers.
pub struct Membership {
    pub id: u64,
    /// The environments this server runs operations in (empty: all).
    pub environments: Vec<String>,
    /// A server that has not renewed its entry for this long is dead.
    pub lease: std::time::Duration,
    started_at: crate::domain::Timestamp,
    /// Whether this server leads (the live server with the smallest id):
    /// housekeeping that two servers would do twice is the leader's.
    leads: std::sync::atomic::AtomicBool,
}

impl Membership {
    pub fn new(id: u64, lease: std::time::Duration, environments: Vec<String>) -> Membership {
        Membership {
            id,
            environments,
            lease,
            started_at: crate::domain::Timestamp::now(),
            leads: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn entry(&self) -> crate::store::cluster::ServerEntry {
        crate::store::cluster::ServerEntry {
            id: self.id,
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            pid: std::process::id(),
            started_at: self.started_at,
            renewed_at: crate::domain::Timestamp::now(),
            environments: self.environments.clone(),
        }
    }
}

impl Relay {
    /// This server's name among the others.
    pub fn id(&self) -> u64 {
        self.server
    }
}

impl super::Engine {
    /// This server's name on a shared store (none on a store of its own).
    pub(super) fn server_id(&self) -> Option<u64> {
        self.cluster.as_ref().map(|m| m.id)
    }

    /// Whether this server does the housekeeping: always on a store of its
    /// own; on a shared one, when it leads.
    pub(super) fn leads(&self) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|m| m.leads.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether a live server other than this one runs operation `op`.
    pub(super) fn runs_elsewhere(&self, op: Id) -> Result<bool, super::EngineError> {
        let Some(m) = &self.cluster else {
            return Ok(false);
        };
        let Some(owner) = self.store.operation_claim(op)? else {
            return Ok(false);
        };
        if owner == m.id {
            return Ok(false);
        }
        let now = crate::domain::Timestamp::now();
        Ok(self
            .store
            .servers()?
            .iter()
            .any(|s| s.id == owner && s.alive(now, m.lease_ms())))
    }

    /// On a shared store: enters this server, then renews it, works out
    /// who leads and takes over the work of servers that stopped renewing.
    pub(super) async fn join_cluster(self: &Arc<Self>) -> Result<(), super::EngineError> {
        let Some(m) = &self.cluster else {
            return Ok(());
        };
        self.store.renew_server(&m.entry())?;
        self.cluster_round()?;
        let engine = Arc::downgrade(self);
        let every = (m.lease / 4).max(std::time::Duration::from_millis(250));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if let Err(e) = engine.cluster_turn().await {
                    tracing::error!(error = %e, "cluster membership");
                }
            }
        });
        Ok(())
    }

    /// Renews this server; leads if it is the live server with the
    /// smallest id; returns the dead servers it buried.
    fn cluster_round(&self) -> Result<Vec<u64>, super::EngineError> {
        let Some(m) = &self.cluster else {
            return Ok(Vec::new());
        };
        self.store.renew_server(&m.entry())?;
        let now = crate::domain::Timestamp::now();
        let servers = self.store.servers()?;
        let leader = servers
            .iter()
            .filter(|s| s.alive(now, m.lease_ms()))
            .map(|s| s.id)
            .min();
        m.leads
            .store(leader == Some(m.id), std::sync::atomic::Ordering::Relaxed);
        let mut buried = Vec::new();
        for s in servers
            .iter()
            .filter(|s| s.id != m.id && !s.alive(now, m.lease_ms()))
        {
            // One survivor buries it and takes its work; the others see it gone.
            if self.store.bury_server(s.id, now, m.lease_ms())? {
                tracing::warn!(server = s.id, host = %s.host, pid = s.pid, "a server stopped renewing");
                buried.push(s.id);
            }
        }
        Ok(buried)
    }

    /// Where the store is and which servers serve it, each with the
    /// unfinished operations it holds.
    pub(super) fn cluster_status(&self) -> Result<super::api::ClusterStatus, super::EngineError> {
        let now = crate::domain::Timestamp::now();
        let mut held: std::collections::BTreeMap<u64, u64> = Default::default();
        let mut unclaimed = 0u64;
        for (_, claim) in self.store.unfinished_with_claims()? {
            match claim {
                Some(owner) => *held.entry(owner).or_default() += 1,
                None => unclaimed += 1,
            }
        }
        let (servers, lease) = match &self.cluster {
            Some(m) => (
                self.store
                    .servers()?
                    .into_iter()
                    .map(|s| super::api::ServerStatus {
                        alive: s.alive(now, m.lease_ms()),
                        this_server: s.id == m.id,
                        operations: held.get(&s.id).copied().unwrap_or(0),
                        environments: s.environments.clone(),
                        id: s.id,
                        host: s.host,
                        pid: s.pid,
                        started_at: s.started_at,
                        renewed_at: s.renewed_at,
                    })
                    .collect(),
                m.lease,
            ),
            // A store of its own: this server alone, holding everything.
            None => {
                let me = Membership::new(0, std::time::Duration::ZERO, Vec::new()).entry();
                (
                    vec![super::api::ServerStatus {
                        id: 0,
                        host: me.host,
                        pid: me.pid,
                        started_at: me.started_at,
                        renewed_at: now,
                        alive: true,
                        this_server: true,
                        operations: unclaimed + held.values().sum::<u64>(),
                        environments: Vec::new(),
                    }],
                    std::time::Duration::ZERO,
                )
            }
        };
        Ok(super::api::ClusterStatus {
            store: self.store.describe(),
            shared: self.store.shared(),
            lease_secs: lease.as_secs(),
            servers,
        })
    }

    /// On a shared store, says this server has stopped: a survivor takes
    /// over what it leaves at its next round instead of after the lease.
    pub fn leave_cluster(&self) {
        let Some(m) = &self.cluster else {
            return;
        };
        let mut entry = m.entry();
        entry.renewed_at = crate::domain::Timestamp(0);
        if let Err(e) = self.store.renew_server(&entry) {
            tracing::warn!(error = %e, "cannot say this server has stopped");
        }
    }

    async fn cluster_turn(&self) -> Result<(), super::EngineError> {
        for dead in self.cluster_round()? {
            self.take_over(dead).await?;
        }
        self.end_sessions_asked_elsewhere()?;
        self.pick_up_unclaimed()
    }

    /// Whether this server runs operations on `device` (by its
    /// environment; every device when it names no environments).
    pub(super) fn reaches(&self, device: &str) -> bool {
        let Some(m) = self.cluster.as_ref().filter(|m| !m.environments.is_empty()) else {
            return true;
        };
        match self.store.find(Kind::Device, device) {
            Ok(Some(crate::domain::Record::Device(d))) => m.environments.contains(&d.environment),
            _ => false,
        }
    }

    /// Queued operations that no server claimed (their creator cannot
    /// reach their environment): this server claims and runs those it reaches.
    fn pick_up_unclaimed(&self) -> Result<(), super::EngineError> {
        let Some(m) = &self.cluster else {
            return Ok(());
        };
        let mut by_task: std::collections::BTreeMap<String, Vec<crate::domain::Operation>> =
            Default::default();
        for (op, claim) in self.store.unfinished_with_claims()? {
            if op.state != crate::domain::OpState::Queued
                || claim.is_some()
                || !self.reaches(&op.device)
            {
                continue;
            }
            if self.store.try_claim(m.id, op.id)? {
                tracing::info!(op = %op.id, device = %op.device, "running an operation another server cannot reach");
                by_task.entry(op.task.clone()).or_default().push(op);
            }
        }
        for (task, ops) in by_task {
            let parallelism = self
                .task(&task)
                .map(|t| t.parallelism as usize)
                .unwrap_or(10);
            self.runner.submit(ops, parallelism);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_what_changed_and_carries_no_content() {
        let message = Message {
            server: 7,
            told: Told::Output { id: Id(41), seq: 3 },
        };
        let text = serde_json::to_string(&message).unwrap_or_default();
        assert_eq!(text, r#"{"server":7,"what":"output","id":41,"seq":3}"#);
        let back: Message = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.told, message.told);
        assert_eq!(told_of(&Event::ShuttingDown), None);
    }
}
