//! What several servers on one shared store agree on through it: who is
//! up (each renews its entry; one that stops renewing is dead after the
//! lease), which server runs which operation, and which server fires each
//! schedule's due run. Every decision that two servers could both take is
//! a compare-and-set under the backend's lock.

use super::kv::Write;
use super::{decode, encode, Store, StoreResult};
use crate::domain::{Id, Timestamp};
use serde::{Deserialize, Serialize};

const SERVERS_TREE: &str = "cluster_servers";
const CLAIMS_TREE: &str = "operation_claims";
const SCHEDULES_TREE: &str = "schedules";
/// Ends of sessions asked on one server for a session another holds.
const SESSION_ENDS_TREE: &str = "session_ends";

/// Someone who monitors sessions asked to end one that another server
/// holds: that server ends it at its next round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEndAsk {
    pub by: String,
    pub reason: String,
    pub at: Timestamp,
}

/// A server of a shared store, as it last said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    pub id: u64,
    pub host: String,
    pub pid: u32,
    pub started_at: Timestamp,
    pub renewed_at: Timestamp,
    /// The environments it runs operations in (empty: all).
    pub environments: Vec<String>,
}

impl ServerEntry {
    /// Whether it renewed within `lease_ms` of `now`.
    pub fn alive(&self, now: Timestamp, lease_ms: i64) -> bool {
        now.0 - self.renewed_at.0 < lease_ms
    }
}

impl Store {
    /// Writes (or renews) this server's entry.
    pub fn renew_server(&self, entry: &ServerEntry) -> StoreResult<()> {
        self.kv.apply(vec![Write::put(
            SERVERS_TREE,
            entry.id.to_be_bytes(),
            encode(entry)?,
        )])
    }

    /// Asks the server holding session `id` to end it (durable at once).
    pub fn ask_session_end(&self, id: Id, ask: &SessionEndAsk) -> StoreResult<()> {
        self.kv
            .apply(vec![Write::put(SESSION_ENDS_TREE, id.key(), encode(ask)?)])
    }

    /// Whether someone asked to end session `id`, and who and why.
    pub fn session_end_asked(&self, id: Id) -> StoreResult<Option<SessionEndAsk>> {
        match self.kv.get(SESSION_ENDS_TREE, &id.key())? {
            Some(v) => Ok(Some(decode(SESSION_ENDS_TREE, &v)?)),
            None => Ok(None),
        }
    }

    /// Forgets the ask to end session `id` (it ended).
    pub fn forget_session_end(&self, id: Id) -> StoreResult<()> {
        self.kv
            .apply(vec![Write::delete(SESSION_ENDS_TREE, id.key())])
    }

    /// Every server that has an entry.
    pub fn servers(&self) -> StoreResult<Vec<ServerEntry>> {
        self.values(SERVERS_TREE)
    }

    /// Removes a server's entry if it is still there and still dead;
    /// returns whether this call removed it (the caller then takes over
    /// its work, and no other server does).
    pub fn bury_server(&self, id: u64, now: Timestamp, lease_ms: i64) -> StoreResult<bool> {
        let mut buried = false;
        self.kv
            .update_locked(SERVERS_TREE, &id.to_be_bytes(), &mut |entry| {
                buried = false;
                let Some((_, v)) = entry else {
                    return Ok(Vec::new());
                };
                let entry: ServerEntry = decode(SERVERS_TREE, &v)?;
                if entry.alive(now, lease_ms) {
                    return Ok(Vec::new());
                }
                buried = true;
                Ok(vec![Write::delete(SERVERS_TREE, id.to_be_bytes())])
            })?;
        Ok(buried)
    }

    /// Records that `server` runs these operations.
    pub fn claim_operations(&self, server: u64, ops: &[Id]) -> StoreResult<()> {
        self.kv.apply(
            ops.iter()
                .map(|id| Write::put(CLAIMS_TREE, id.key(), server.to_be_bytes()))
                .collect(),
        )
    }

    /// Lets go of operations (for a server that reaches them to claim).
    pub fn release_claims(&self, ops: &[Id]) -> StoreResult<()> {
        self.kv.apply(
            ops.iter()
                .map(|id| Write::delete(CLAIMS_TREE, id.key()))
                .collect(),
        )
    }

    /// Claims an operation nobody has claimed; true when this call did.
    pub fn try_claim(&self, server: u64, op: Id) -> StoreResult<bool> {
        let mut claimed = false;
        self.kv
            .update_locked(CLAIMS_TREE, &op.key(), &mut |owner| {
                claimed = owner.is_none();
                Ok(if claimed {
                    vec![Write::put(CLAIMS_TREE, op.key(), server.to_be_bytes())]
                } else {
                    Vec::new()
                })
            })?;
        Ok(claimed)
    }

    /// Every unfinished operation with the server that claimed it, its
    /// claims read in one go (the cluster's rounds and its status ask
    /// every few seconds).
    pub fn unfinished_with_claims(
        &self,
    ) -> StoreResult<Vec<(crate::domain::Operation, Option<u64>)>> {
        let ops = self.unfinished_operations()?;
        let keys: Vec<Vec<u8>> = ops.iter().map(|o| o.id.key().to_vec()).collect();
        let claims = self.kv.get_many(CLAIMS_TREE, &keys)?;
        Ok(ops
            .into_iter()
            .zip(claims)
            .map(|(op, claim)| {
                let owner =
                    claim.and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes));
                (op, owner)
            })
            .collect())
    }

    /// The server that runs an operation, if one claimed it.
    pub fn operation_claim(&self, op: Id) -> StoreResult<Option<u64>> {
        Ok(self
            .kv
            .get(CLAIMS_TREE, &op.key())?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes)))
    }

    /// Moves a schedule's mark from `seen` to `now` if no other server
    /// moved it meanwhile: true when this server fires the run.
    pub fn take_schedule_run(
        &self,
        task: &str,
        seen: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut taken = false;
        self.kv
            .update_locked(SCHEDULES_TREE, task.as_bytes(), &mut |mark| {
                let current = mark.and_then(|(_, v)| {
                    v.as_slice()
                        .try_into()
                        .ok()
                        .map(|b: [u8; 8]| Timestamp(i64::from_be_bytes(b)))
                });
                taken = current == seen;
                Ok(if taken {
                    vec![Write::put(
                        SCHEDULES_TREE,
                        task.as_bytes(),
                        now.0.to_be_bytes(),
                    )]
                } else {
                    Vec::new()
                })
            })?;
        Ok(taken)
    }
}
