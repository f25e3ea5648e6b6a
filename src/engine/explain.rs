//! `policy explain`: how every policy judges a request of a task by
//! someone at some moment. The verdicts are the decision's own
//! (`access::policy::explain_task`), never a second reading of the rules.

use super::{Engine, EngineError, Response};
use crate::access::policy::explain_task;
use crate::access::{Effect, Principal};
use crate::domain::{Record, Timestamp};
use crate::engine::api::{ExplainSpec, Explanation};

impl Engine {
    pub(super) fn explain(
        &self,
        who: &Principal<'_>,
        spec: ExplainSpec,
    ) -> Result<Response, EngineError> {
        let login = spec
            .user
            .clone()
            .unwrap_or_else(|| who.user.meta.name.clone());
        self.authorize(who, Effect::ExplainFor { login: &login })?;
        let task = self.task(&spec.task)?;
        // Only about a task the caller may see.
        self.authorize(who, Effect::Read(&Record::Task(task.clone())))?;
        let person = self.principal_records(&login)?;
        let them = person.principal();
        let devices = if spec.devices.is_empty() {
            task.devices.clone()
        } else {
            spec.devices.clone()
        };
        let at = spec.at.unwrap_or_else(Timestamp::now);
        let permission = crate::access::authorize(
            &them,
            Effect::Request(&task),
            &super::StoreFacts(&self.store),
        )
        .map_err(|d| d.message);
        let verdicts = explain_task(
            &self.policies()?,
            them.member(),
            &task,
            &devices,
            at.to_utc(),
        );
        let freeze = self
            .freeze_on(&task, &devices, at.to_utc())?
            .map(|(_, why)| why);
        Ok(Response::Explanation(Box::new(Explanation {
            user: login,
            task: task.meta.name.clone(),
            devices,
            at,
            permission,
            verdicts,
            freeze,
            superuser: them.is_superuser(),
        })))
    }
}
