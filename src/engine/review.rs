//! Break-glass with a review: an emergency run stays in its approvers'
//! queues until one of them reviews it, accepting it or flagging it for
//! follow-up, with why. The review is stored apart and audited.

use super::api::Decided;
use super::{Engine, EngineError, Response};
use crate::access::approval::may_review;
use crate::access::Principal;
use crate::domain::{EmergencyReview, Id, Timestamp};
use crate::engine::Event;
use crate::store::{Change, NewAuditEvent};

impl Engine {
    pub(super) async fn review_emergencies(
        &self,
        who: &Principal<'_>,
        ids: Vec<Id>,
        accepted: bool,
        comment: String,
    ) -> Result<Response, EngineError> {
        if ids.is_empty() {
            return Err(EngineError::Denied("name at least one request".into()));
        }
        let mut outcomes = Vec::new();
        for id in ids {
            let outcome = self
                .review_one(who, id, accepted, &comment)
                .await
                .map(|()| {
                    if accepted {
                        "emergency reviewed: accepted".to_string()
                    } else {
                        "emergency reviewed: flagged for follow-up".to_string()
                    }
                })
                .map_err(|e| e.to_string());
            outcomes.push(Decided { id, outcome });
        }
        Ok(Response::Decided(outcomes))
    }

    async fn review_one(
        &self,
        who: &Principal<'_>,
        id: Id,
        accepted: bool,
        comment: &str,
    ) -> Result<(), EngineError> {
        let _guard = self.write_lock.lock().await;
        let login = who.user.meta.name.clone();
        let request = self.load_request(id)?;
        let policy = self.policy(request.policy.as_deref().unwrap_or_default())?;
        let earlier = self.store.review(id)?;
        if let Err(why) = may_review(
            &policy,
            &request,
            who.member(),
            earlier.as_ref().map(|r| r.reviewer.as_str()),
            comment,
        ) {
            self.audit(vec![NewAuditEvent::new(
                &login,
                "request.review.refused",
                request.target(),
                why.clone(),
            )])
            .await?;
            return Err(EngineError::Denied(why));
        }
        let review = EmergencyReview {
            request: id,
            reviewer: login.clone(),
            time: Timestamp::now(),
            accepted,
            comment: comment.to_string(),
        };
        self.journal
            .commit(
                vec![Change::PutReview(Box::new(review))],
                vec![NewAuditEvent::new(
                    &login,
                    "request.review",
                    request.target(),
                    format!(
                        "{} the emergency run of {} (requested {}): {}",
                        if accepted {
                            "accepted"
                        } else {
                            "flagged for follow-up"
                        },
                        request.requester,
                        request.created_at,
                        crate::text::printable(comment)
                    ),
                )],
            )
            .await?;
        // Queues change: the request leaves its approvers' queues.
        self.journal
            .publish(Event::RequestChanged(Box::new(request)));
        Ok(())
    }
}
