//! Refusals are audited (a refused connection, a refused change), but a
//! flood of them must not flood the audit log: one event per actor and kind
//! of refusal a minute, the next one saying how many were left out.

use super::{Engine, EngineError};
use crate::store::NewAuditEvent;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Actors and kinds remembered; beyond, the oldest windows are forgotten.
const REMEMBERED: usize = 4096;

/// When each actor's kind of refusal was last audited, and how many since.
#[derive(Default)]
pub(super) struct RefusalLog {
    seen: Mutex<HashMap<(String, String), (Instant, u64)>>,
}

impl RefusalLog {
    /// `Some(left out before)` when this refusal is to be audited.
    fn admit(&self, actor: &str, action: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= REMEMBERED {
            seen.retain(|_, (at, _)| now.duration_since(*at) < WINDOW);
        }
        match seen.get_mut(&(actor.to_string(), action.to_string())) {
            Some((at, left_out)) if now.duration_since(*at) < WINDOW => {
                *left_out += 1;
                None
            }
            Some((at, left_out)) => {
                let before = *left_out;
                *at = now;
                *left_out = 0;
                Some(before)
            }
            None => {
                seen.insert((actor.to_string(), action.to_string()), (now, 0));
                Some(0)
            }
        }
    }
}

impl Engine {
    /// Audits a refusal, coalesced per actor and kind a minute.
    pub async fn refused(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        why: &str,
    ) -> Result<(), EngineError> {
        let Some(left_out) = self.refusals.admit(actor, action, Instant::now()) else {
            return Ok(());
        };
        let mut details = crate::text::clipped(why, 500);
        if left_out > 0 {
            details.push_str(&format!(
                " ({left_out} more such refusals in the minute before were not audited one by one)"
            ));
        }
        self.audit(vec![NewAuditEvent::new(
            &crate::text::clipped(actor, 100),
            action,
            crate::text::clipped(target, 200),
            details,
        )])
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_one_event_a_minute_with_the_count() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit("eve", "connection.refused", t0), Some(0));
        for _ in 0..500 {
            assert_eq!(log.admit("eve", "connection.refused", t0), None);
        }
        // Another actor, or another kind, has its own minute.
        assert_eq!(log.admit("mallory", "connection.refused", t0), Some(0));
        assert_eq!(log.admit("eve", "records.import.refused", t0), Some(0));
        assert_eq!(
            log.admit("eve", "connection.refused", t0 + WINDOW),
            Some(500)
        );
    }
}
