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

    pub(super) async fn scan_host_key(
        &self,
        who: &Principal<'_>,
        name: &str,
    ) -> Result<Response, EngineError> {
        let device = self.device_for_change(who, name)?;
        let key = crate::exec::scan_host_key(&device.address, device.port, Duration::from_secs(10))
            .await
            .map_err(|e| {
                EngineError::Denied(format!("cannot read the host key of device '{name}': {e}"))
            })?;
        Ok(Response::HostKey(key))
    }

    pub(super) async fn pin_host_key(
        &self,
        who: &Principal<'_>,
        name: &str,
        key: HostKey,
    ) -> Result<Response, EngineError> {
        let _guard = self.write_lock.lock().await;
        let mut device = self.device_for_change(who, name)?;
        let before = device
            .host_key
            .as_ref()
            .map(|k| k.fingerprint())
            .unwrap_or_else(|| "nothing".into());
        let login = who.user.meta.name.clone();
        let details = format!("pinned {} (was {before})", key.fingerprint());
        device.host_key = Some(key);
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
