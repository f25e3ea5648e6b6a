//! Applying the visibility rules of `access::visibility` to what the engine
//! answers and to the events each subscriber receives.

use super::{Engine, EngineError, Event};
use crate::access::{self, Effect, Principal};
use crate::domain::{
    ExecutionRequest, Id, Kind, Operation, Permission, Policy, Record, Role, User,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What decides visibility, read from the store at one moment.
pub(super) struct Facts {
    /// Task name → the environment it runs in.
    pub environments: HashMap<String, String>,
    pub policies: HashMap<String, Policy>,
}

impl Engine {
    pub(super) fn visibility_facts(&self) -> Result<Facts, EngineError> {
        let mut environments = HashMap::new();
        for r in self.store.list(Kind::Task)? {
            if let Record::Task(t) = r {
                environments.insert(t.meta.name, t.environment);
            }
        }
        let mut policies = HashMap::new();
        for r in self.store.list(Kind::Policy)? {
            if let Record::Policy(p) = r {
                policies.insert(p.meta.name.clone(), p);
            }
        }
        Ok(Facts {
            environments,
            policies,
        })
    }
}

/// Whether `login` decided request `id` (read only when it matters).
fn decided(store: &crate::store::Store, login: &str, id: Id) -> bool {
    matches!(store.request(id), Ok(Some(r)) if r.decisions.iter().any(|d| d.approver == login))
}

impl Facts {
    pub fn operation(
        &self,
        store: &crate::store::Store,
        who: &Principal<'_>,
        op: &Operation,
    ) -> bool {
        let environment = self.environments.get(&op.task).map(String::as_str);
        let see = |decided| {
            access::authorize(
                who,
                Effect::SeeOperation {
                    requested_by: &op.requested_by,
                    environment,
                    decided,
                },
                &access::NoFacts,
            )
            .is_ok()
        };
        // Only an approver can have decided it: others skip the read.
        see(false)
            || (self.approves_somewhere(who.member())
                && decided(store, &who.user.meta.name, op.request)
                && see(true))
    }

    /// Whether `who` may see a JIT grant: as they may see the operation
    /// that made it.
    pub fn grant(&self, who: &Principal<'_>, grant: &crate::domain::JitGrant) -> bool {
        access::authorize(
            who,
            Effect::SeeOperation {
                requested_by: &grant.requested_by,
                environment: self.environments.get(&grant.task).map(String::as_str),
                decided: false,
            },
            &access::NoFacts,
        )
        .is_ok()
    }

    fn approves_somewhere(&self, who: access::Member<'_>) -> bool {
        self.policies
            .values()
            .any(|p| p.approvers.iter().any(|a| who.is(&a.user)))
    }

    pub fn request(&self, who: &Principal<'_>, request: &ExecutionRequest) -> bool {
        access::authorize(
            who,
            Effect::SeeRequest {
                request,
                environment: self.environments.get(&request.task).map(String::as_str),
                policy: request.policy.as_ref().and_then(|p| self.policies.get(p)),
            },
            &access::NoFacts,
        )
        .is_ok()
    }
}

/// How often a subscriber's facts are read again without a change that
/// concerns them.
const REFRESH: Duration = Duration::from_secs(5);
/// Operations whose visibility a subscriber remembers.
const REMEMBERED: usize = 16_384;

/// One subscriber's view: which events it may receive. A change to users,
/// roles, tasks or policies is read again at once, so a disabled user's
/// connection ends with the event that disabled them.
pub struct EventFilter {
    login: String,
    user: User,
    roles: Vec<Role>,
    groups: Vec<String>,
    facts: Facts,
    read_at: Instant,
    operations: HashMap<Id, bool>,
}

/// What to do with one event.
pub enum Verdict {
    Send,
    Skip,
    /// The subscriber may not use Gatehouse any more: close its connection.
    Close(String),
}

impl Engine {
    /// The event filter of a subscriber.
    pub fn event_filter(&self, login: &str) -> Result<EventFilter, EngineError> {
        let person = self.principal_records(login)?;
        Ok(EventFilter {
            login: login.to_string(),
            user: person.user,
            roles: person.roles,
            groups: person.groups,
            facts: self.visibility_facts()?,
            read_at: Instant::now(),
            operations: HashMap::new(),
        })
    }

    /// Whether the subscriber of `filter` may receive `event`.
    pub fn judge(&self, filter: &mut EventFilter, event: &Event) -> Verdict {
        let concerns_access = matches!(
            event,
            Event::RecordChanged {
                kind: Kind::User | Kind::Role | Kind::Task | Kind::Policy,
                ..
            }
        );
        if concerns_access || filter.read_at.elapsed() > REFRESH {
            match self.principal_records(&filter.login) {
                Ok(person) => {
                    filter.user = person.user;
                    filter.roles = person.roles;
                    filter.groups = person.groups;
                }
                Err(e) => return Verdict::Close(e.to_string()),
            }
            match self.visibility_facts() {
                Ok(facts) => filter.facts = facts,
                Err(_) => return Verdict::Skip,
            }
            filter.read_at = Instant::now();
            filter.operations.clear();
        }
        let who = Principal {
            user: &filter.user,
            roles: filter.roles.iter().collect(),
            groups: &filter.groups,
        };
        let visible = match event {
            Event::ShuttingDown => true,
            Event::AuditAppended { .. } => {
                access::authorize(&who, Effect::Use(Permission::ViewAudit), &access::NoFacts)
                    .is_ok()
            }
            Event::RecordChanged { kind, .. } => {
                access::authorize(&who, Effect::List(*kind), &access::NoFacts).is_ok()
            }
            Event::OperationChanged(op) => {
                let seen = filter.facts.operation(&self.store, &who, op);
                remember(&mut filter.operations, op.id, seen);
                seen
            }
            Event::Output { id, .. } => match filter.operations.get(id) {
                Some(seen) => *seen,
                None => {
                    let seen = matches!(
                        self.store.operation(*id),
                        Ok(Some(op)) if filter.facts.operation(&self.store, &who, &op)
                    );
                    remember(&mut filter.operations, *id, seen);
                    seen
                }
            },
            Event::RequestChanged(request) => filter.facts.request(&who, request),
            Event::JitChanged(grant) => filter.facts.grant(&who, grant),
            Event::SessionChanged(session) => {
                let environment = self.device_environment(&session.device).ok().flatten();
                access::authorize(
                    &who,
                    Effect::SeeSession {
                        user: &session.user,
                        environment: environment.as_deref(),
                    },
                    &access::NoFacts,
                )
                .is_ok()
            }
        };
        if visible {
            Verdict::Send
        } else {
            Verdict::Skip
        }
    }
}

fn remember(operations: &mut HashMap<Id, bool>, id: Id, seen: bool) {
    if operations.len() >= REMEMBERED {
        operations.clear();
    }
    operations.insert(id, seen);
}
