//! Pinning devices' host keys: scan what a device offers, then pin exactly that.

use super::{Engine, EngineError, Response};
use crate::access::{self, Principal};
use crate::domain::{HostKey, Kind, Record, Timestamp};
use crate::store::{Change, NewAuditEvent};
use std::time::Duration;

impl Engine {
    fn device_for_change(
        &self,
        who: &Principal<'_>,
        name: &str,
    ) -> Result<crate::domain::Device, EngineError> {
        let record = self.store.find(Kind::Device, name)?;
        let Some(Record::Device(device)) = &record else {
            return Err(EngineError::NotFound {
                kind: Kind::Device,
                name: name.to_string(),
            });
        };
        // Scanning and pinning change the device in place.
        let record = Record::Device(device.clone());
        self.authorize(
            who,
            access::Effect::Change {
                stored: Some(&record),
                incoming: &record,
            },
        )?;
        Ok(device.clone())
    }

    pub(super) async fn scan_host_keys(
        &self,
        who: &Principal<'_>,
        name: &str,
    ) -> Result<Response, EngineError> {
        let device = self.device_for_change(who, name)?;
        let cannot = |e: String| {
            EngineError::Failed(format!("cannot read the host keys of device '{name}': {e}"))
        };
        let target =
            crate::exec::scan_target(&self.store, &device).map_err(|e| cannot(e.to_string()))?;
        let keys = crate::exec::scan_host_keys(&target, Duration::from_secs(10))
            .await
            .map_err(|e| cannot(e.to_string()))?;
        Ok(Response::HostKeys(keys))
    }

    /// Pins exactly these keys (the ones a scan showed and a person
    /// checked), replacing those pinned before.
    pub(super) async fn pin_host_keys(
        &self,
        who: &Principal<'_>,
        name: &str,
        keys: Vec<HostKey>,
    ) -> Result<Response, EngineError> {
        if keys.is_empty() {
            return Err(EngineError::Denied(format!(
                "no host key to pin for device '{name}'"
            )));
        }
        let _guard = self.write_lock.lock().await;
        let mut device = self.device_for_change(who, name)?;
        let list = |keys: &[HostKey]| {
            if keys.is_empty() {
                "nothing".to_string()
            } else {
                keys.iter()
                    .map(|k| k.fingerprint())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let login = who.user.meta.name.clone();
        let details = format!("pinned {} (was {})", list(&keys), list(&device.host_keys));
        device.host_keys = keys;
        device.meta.revision += 1;
        device.meta.updated_by = login.clone();
        device.meta.updated_at = Timestamp::now();
        self.journal
            .commit(
                vec![Change::Put(Box::new(Record::Device(device)))],
                vec![NewAuditEvent::new(
                    &login,
                    "device.trust",
                    format!("device {name}"),
                    details,
                )],
            )
            .await?;
        Ok(Response::Done)
    }
}
