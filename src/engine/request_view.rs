//! What a request will run, device by device: the pinned template
//! rendered with the request's values and the variables' defaults,
//! secrets as their masks' names, with the credential and the chained
//! tasks. For its requester and approvers, and whoever may read the
//! template.

use super::api::{ChildRun, DeviceRun, RequestView};
use super::{Engine, EngineError, Response};
use crate::access::Principal;
use crate::domain::{Id, Kind, Record};

impl Engine {
    pub(super) fn request_view(
        &self,
        who: &Principal<'_>,
        id: Id,
    ) -> Result<Response, EngineError> {
        let request = self.load_request(id)?;
        self.may_see_what_runs(who, &request)?;
        let pinned = &request.pinned;
        let template = self
            .store
            .template_revision(pinned.template_id, pinned.template_revision)?;
        let template_now = match self.store.get(Kind::Template, pinned.template_id)? {
            Some(t) if t.meta().revision != pinned.template_revision => Some(t.meta().revision),
            _ => None,
        };
        let task = self.store.find(Kind::Task, &request.task)?;
        let credential_name = match &task {
            Some(Record::Task(t)) => t.credential.clone(),
            _ => String::new(),
        };
        let username = match self.store.find(Kind::Credential, &credential_name)? {
            Some(Record::Credential(c)) => c.username,
            _ => String::new(),
        };
        let mut variables = Vec::new();
        let mut runs: Vec<DeviceRun> = Vec::new();
        if let Some(t) = &template {
            for v in &t.variables {
                match request.variables.get(&v.name) {
                    Some(value) => variables.push((v.name.clone(), value.clone(), false)),
                    None => variables.push((
                        v.name.clone(),
                        v.default.clone().unwrap_or_default(),
                        true,
                    )),
                }
            }
            for name in &request.devices {
                let Some(Record::Device(mut device)) = self.store.find(Kind::Device, name)? else {
                    runs.push(DeviceRun {
                        devices: vec![name.clone()],
                        text: format!("(device '{name}' no longer exists: nothing runs there)"),
                    });
                    continue;
                };
                // An address is for those who may see the device
                // (view-devices); others see the mask's name.
                let shown = Record::Device(device.clone());
                if self
                    .authorize(who, crate::access::Effect::Read(&shown))
                    .is_err()
                {
                    device.address = "[#ADDRESS#]".into();
                }
                let text = crate::template::preview(t, &device, &username, &request.variables);
                match runs.iter_mut().find(|r| r.text == text) {
                    Some(run) => run.devices.push(name.clone()),
                    None => runs.push(DeviceRun {
                        devices: vec![name.clone()],
                        text,
                    }),
                }
            }
        }
        let mut children = Vec::new();
        for child in &pinned.children {
            let content = self
                .store
                .template_revision(child.template_id, child.template_revision)?;
            children.push(ChildRun {
                task: child.task.clone(),
                template: content
                    .as_ref()
                    .map(|t| t.meta.name.clone())
                    .unwrap_or_default(),
                template_revision: child.template_revision,
                content: content.map(|t| t.content).unwrap_or_default(),
            });
        }
        let review = self.store.review(id)?;
        // Only a playbook has dry runs: other requests skip the walk back
        // through the operations made since.
        let dry_runs = if template
            .as_ref()
            .is_some_and(|t| t.executor == crate::domain::Executor::AnsiblePlaybook)
        {
            self.dry_runs_of(&request)?
        } else {
            Vec::new()
        };
        Ok(Response::RequestView(Box::new(RequestView {
            review,
            dry_runs,
            credential: credential_name,
            username,
            template: template
                .as_ref()
                .map(|t| t.meta.name.clone())
                .unwrap_or_default(),
            template_revision: pinned.template_revision,
            executor: template
                .as_ref()
                .map(|t| t.executor.as_str().to_string())
                .unwrap_or_default(),
            template_now,
            variables,
            runs,
            children,
            request,
        })))
    }
}
