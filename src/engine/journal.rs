//! The one way a change reaches the store: records, operations, requests,
//! JIT grants and audit events go in one transaction, flushed, and then
//! the events that say so are published — one per changed record (one per
//! kind when several of a kind changed at once), one per operation,
//! request and grant, and one for the audit log's new end. No path, in the
//! engine or in the runner, writes and then forgets to tell the clients.

use super::Event;
use crate::domain::{Kind, Operation};
use crate::store::{AuditEvent, Change, NewAuditEvent, Store, StoreResult};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The store's writer and the events' publisher, together.
#[derive(Clone)]
pub struct Journal {
    store: Arc<Store>,
    events: broadcast::Sender<Event>,
    /// The other servers of a shared store, told of every change.
    relay: Option<Arc<super::cluster::Relay>>,
}

impl Journal {
    pub fn new(
        store: Arc<Store>,
        events: broadcast::Sender<Event>,
        relay: Option<Arc<super::cluster::Relay>>,
    ) -> Journal {
        Journal {
            store,
            events,
            relay,
        }
    }

    /// Commits `changes` and `audit` in one transaction, flushed, then
    /// publishes what changed; returns the audit events as appended.
    pub async fn commit(
        &self,
        changes: Vec<Change>,
        audit: Vec<NewAuditEvent>,
    ) -> StoreResult<Vec<AuditEvent>> {
        let published = events_for(&changes);
        let appended = if changes.is_empty() {
            self.store.append_audit(audit).await?
        } else {
            self.store.commit(changes, audit).await?
        };
        for event in published {
            self.publish(event);
        }
        if let Some(last) = appended.last() {
            self.publish(Event::AuditAppended { seq: last.seq });
        }
        Ok(appended)
    }

    /// An operation's state while it runs: stored without a flush (its
    /// start and end are flushed), and published.
    pub fn note(&self, op: &Operation) {
        if let Err(e) = self.store.put_operation_unflushed(op) {
            tracing::error!(op = %op.id, error = %e, "cannot store an operation's state");
        }
        self.publish(Event::OperationChanged(Box::new(op.clone())));
    }

    /// Sends an event that no store change carries (a shutdown).
    pub fn publish(&self, event: Event) {
        if let Some(relay) = &self.relay {
            relay.tell(&event);
        }
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// The events that say what `changes` changed: records coalesced per kind
/// (the name when one record of the kind changed, empty when several did).
fn events_for(changes: &[Change]) -> Vec<Event> {
    let mut records: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for change in changes {
        match change {
            Change::Put(record) => records
                .entry(record.kind())
                .or_default()
                .push(record.name().to_string()),
            Change::Delete(kind, _) => records.entry(*kind).or_default().push(String::new()),
            Change::PutOperation(op) => out.push(Event::OperationChanged(op.clone())),
            Change::PutRequest(req) => out.push(Event::RequestChanged(req.clone())),
            Change::PutJit(grant) => out.push(Event::JitChanged(grant.clone())),
            Change::PutSession(session) => out.push(Event::SessionChanged(session.clone())),
            // The reviewer's engine publishes the request itself.
            Change::PutReview(_) => {}
            // Lists show where each credential's secret stands.
            Change::PutSecretState(_) => records
                .entry(Kind::Credential)
                .or_default()
                .push(String::new()),
        }
    }
    let mut changed: Vec<Event> = records
        .into_iter()
        .map(|(kind, names)| Event::RecordChanged {
            kind,
            name: match names.as_slice() {
                [one] => one.clone(),
                _ => String::new(),
            },
        })
        .collect();
    changed.extend(out);
    changed
}

impl crate::exec::Ledger for Journal {
    fn commit<'a>(
        &'a self,
        changes: Vec<Change>,
        audit: Vec<NewAuditEvent>,
    ) -> Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'a>> {
        Box::pin(async move { Journal::commit(self, changes, audit).await.map(|_| ()) })
    }

    fn note(&self, op: &Operation) {
        Journal::note(self, op)
    }

    fn flush<'a>(&'a self) -> Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'a>> {
        Box::pin(self.store.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Device, Meta, Record};

    fn device(name: &str) -> Change {
        Change::Put(Box::new(Record::Device(Device {
            meta: Meta::named(name),
            ..Device::default()
        })))
    }

    #[test]
    fn records_are_told_once_per_kind_with_the_name_when_one_changed() {
        let one = events_for(&[device("web-1")]);
        assert_eq!(
            one,
            vec![Event::RecordChanged {
                kind: Kind::Device,
                name: "web-1".into()
            }]
        );
        let two = events_for(&[device("web-1"), device("web-2")]);
        assert_eq!(
            two,
            vec![Event::RecordChanged {
                kind: Kind::Device,
                name: String::new()
            }]
        );
    }
}
