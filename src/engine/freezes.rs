//! Change freezes as the engine meets them: the freezes stored, and the
//! one (if any) that holds a run's environments at a moment.

use super::{Engine, EngineError};
use crate::access::freeze::{freeze_over, refusal};
use crate::domain::{Freeze, Kind, Record, Task};
use chrono::{DateTime, Utc};

impl Engine {
    /// Every stored freeze.
    pub(super) fn freezes(&self) -> Result<Vec<Freeze>, EngineError> {
        Ok(self
            .store
            .list(Kind::Freeze)?
            .into_iter()
            .filter_map(|r| match r {
                Record::Freeze(f) => Some(f),
                _ => None,
            })
            .collect())
    }

    /// The environments a run of `task` on `devices` reaches: the task's
    /// and its devices'.
    fn run_environments(
        &self,
        task: &Task,
        devices: &[String],
    ) -> Result<Vec<String>, EngineError> {
        let mut envs = vec![task.environment.clone()];
        for name in devices {
            if let Some(Record::Device(d)) = self.store.find(Kind::Device, name)? {
                if !envs.contains(&d.environment) {
                    envs.push(d.environment);
                }
            }
        }
        Ok(envs)
    }

    /// The freeze that holds a run of `task` on `devices` at `at`, with
    /// the refusal that names it and its end.
    pub(super) fn freeze_on(
        &self,
        task: &Task,
        devices: &[String],
        at: DateTime<Utc>,
    ) -> Result<Option<(Freeze, String)>, EngineError> {
        let freezes = self.freezes()?;
        if freezes.is_empty() {
            return Ok(None);
        }
        let envs = self.run_environments(task, devices)?;
        let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
        Ok(freeze_over(&freezes, &envs, at).map(|f| (f.clone(), refusal(f, &envs))))
    }
}
