//! The Dashboard's numbers, counted by the engine over the operations the
//! caller may see: executions per hour and failures in the last 24 hours,
//! what runs and waits now, requests waiting for the caller. No screen
//! derives them from whatever page another screen loaded.

use super::{Engine, EngineError, Response};
use crate::access::Principal;
use crate::domain::{OpState, Operation, RequestState, Timestamp};
use serde::{Deserialize, Serialize};

const HOUR_MS: i64 = 3_600_000;
/// The failures a Dashboard lists by name.
const RECENT_FAILURES: usize = 3;

/// What the Dashboard shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// When these were counted.
    pub at: Timestamp,
    /// Operations created in each of the last 24 hours, oldest hour first.
    pub per_hour: Vec<u64>,
    /// Failed or interrupted operations created in the last 24 hours.
    pub failed: u64,
    /// The newest of those.
    pub recent_failures: Vec<Operation>,
    pub running: u64,
    pub queued: u64,
    /// Requests the caller may decide now.
    pub waiting: u64,
    /// Credentials the caller may see, by the state of their password
    /// (`ok`, `changing`, `out-of-sync`, `change-failed`), in that order.
    pub passwords: Vec<(String, u64)>,
    /// The credentials out of sync or whose change failed, by name.
    pub password_alerts: Vec<String>,
    /// Privileged sessions open now that the caller may see.
    pub open_sessions: u64,
    /// Sessions of the last 24 hours with commands outside their declared
    /// change: "session ID USER on DEVICE: N outside change CODE".
    pub deviations: Vec<String>,
    /// Emergency runs the caller may review that nobody has, and those of
    /// them older than the review time (`[approvals] review_within_hours`).
    pub awaiting_review: u64,
    pub overdue_reviews: Vec<String>,
}

/// Counts `ops` (newest first, all of the last 24 hours at least) as of `now`.
pub fn tally<'a>(ops: impl IntoIterator<Item = &'a Operation>, now: Timestamp) -> Metrics {
    let mut m = Metrics {
        at: now,
        per_hour: vec![0; 24],
        ..Metrics::default()
    };
    for o in ops {
        let age = now.0 - o.created_at.0;
        if !(0..24 * HOUR_MS).contains(&age) {
            continue;
        }
        m.per_hour[23 - (age / HOUR_MS) as usize] += 1;
        if matches!(o.state, OpState::Failed | OpState::Interrupted) {
            m.failed += 1;
            if m.recent_failures.len() < RECENT_FAILURES {
                m.recent_failures.push(o.clone());
            }
        }
    }
    m
}

impl Engine {
    /// The Dashboard's numbers for `who`.
    pub(super) fn metrics(&self, who: &Principal<'_>) -> Result<Response, EngineError> {
        let now = Timestamp::now();
        let facts = self.visibility_facts()?;
        let mut day = Vec::new();
        self.store.visit_newest_first(|op| {
            if now.0 - op.created_at.0 >= 24 * HOUR_MS {
                return false;
            }
            if facts.operation(&self.store, who, op) {
                day.push(op.clone());
            }
            true
        })?;
        let mut m = tally(&day, now);
        for op in self.store.unfinished_operations()? {
            if !facts.operation(&self.store, who, &op) {
                continue;
            }
            match op.state {
                OpState::Queued => m.queued += 1,
                _ => m.running += 1,
            }
        }
        if let Response::Requests(queue) = self.queue(who)? {
            m.waiting = queue
                .iter()
                .filter(|r| matches!(r.state, RequestState::Pending { .. }))
                .count() as u64;
            // The queue holds only emergencies nobody reviewed yet.
            let due = now.0 - self.review_within.as_millis() as i64;
            for r in queue.iter().filter(|r| r.state == RequestState::Emergency) {
                m.awaiting_review += 1;
                if r.created_at.0 < due {
                    m.overdue_reviews.push(format!(
                        "#{} {} by {}, {} h ago",
                        r.id,
                        r.what(),
                        r.requester,
                        (now.0 - r.created_at.0) / 3_600_000
                    ));
                }
            }
        }
        // Passwords, for whoever may see credentials.
        if let Ok(Response::CredentialStates(states)) = self.credential_states(who) {
            for word in ["ok", "changing", "out-of-sync", "change-failed"] {
                let n = states.iter().filter(|s| s.status.word() == word).count() as u64;
                m.passwords.push((word.to_string(), n));
            }
            m.password_alerts = states
                .iter()
                .filter(|s| matches!(s.status.word(), "out-of-sync" | "change-failed"))
                .map(|s| format!("{} {}", s.name, s.status.word()))
                .collect();
        }
        // Sessions: open now, and the last day's deviations.
        if let Response::Sessions(sessions) = self.sessions(who, false, None)? {
            for s in sessions {
                if s.is_open() {
                    m.open_sessions += 1;
                }
                if !s.deviations.is_empty() && now.0 - s.started_at.0 < 24 * HOUR_MS {
                    m.deviations.push(format!(
                        "session {} {} on {}: {} outside change {}",
                        s.id,
                        s.user,
                        s.device,
                        s.deviations.len(),
                        s.change.as_ref().map(|c| c.code.as_str()).unwrap_or("-")
                    ));
                }
            }
        }
        Ok(Response::Metrics(Box::new(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Executor, Id, Trigger};

    fn op(id: u64, hours_ago: i64, state: OpState, now: i64) -> Operation {
        Operation {
            id: Id(id),
            request: Id(id),
            task: "t".into(),
            template: "t".into(),
            template_id: Id(1),
            template_revision: 1,
            executor: Executor::Local,
            device: "d".into(),
            credential: "c".into(),
            variables: Default::default(),
            trigger: Trigger::User,
            requested_by: "alice".into(),
            superuser_bypass: false,
            state,
            attempts: 1,
            max_attempts: 1,
            rerun: Default::default(),
            timeout_secs: 1,
            exit_status: None,
            created_at: Timestamp(now - hours_ago * HOUR_MS - 1),
            not_before: Timestamp(0),
            started_at: None,
            finished_at: None,
            error: None,
            jit_until: None,
            output_bytes: 0,
            output_truncated: false,
        }
    }

    #[test]
    fn counts_the_last_24_hours_by_hour_and_the_failures_in_them() {
        let now = 100 * HOUR_MS;
        let ops = [
            op(4, 0, OpState::Failed, now),
            op(3, 1, OpState::Succeeded, now),
            op(2, 23, OpState::Interrupted, now),
            op(1, 30, OpState::Failed, now),
        ];
        let m = tally(&ops, Timestamp(now));
        assert_eq!(m.per_hour.iter().sum::<u64>(), 3);
        assert_eq!(m.per_hour[23], 1);
        assert_eq!(m.per_hour[22], 1);
        assert_eq!(m.per_hour[0], 1);
        assert_eq!(m.failed, 2);
        assert_eq!(m.recent_failures[0].id, Id(4));
    }
}
