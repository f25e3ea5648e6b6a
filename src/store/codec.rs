//! Stored values: one schema-version byte, then bincode 2 (serde) with its
//! standard configuration. Keys are written by hand, big-endian.

use super::{StoreError, StoreResult, SCHEMA_VERSION};
use serde::{de::DeserializeOwned, Serialize};

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value behind the current schema version.
pub fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    let mut out = vec![SCHEMA_VERSION as u8];
    let body = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    out.extend(body);
    Ok(out)
}

/// Decodes a value written by [`encode`] in the current schema version.
pub fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> StoreResult<T> {
    let corrupt = |message: String| StoreError::Corrupt {
        tree: tree.to_string(),
        message,
    };
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty value".into()))?;
    if u32::from(version) != SCHEMA_VERSION {
        return Err(corrupt(format!(
            "schema version {version}, expected {SCHEMA_VERSION} (was the migration skipped?)"
        )));
    }
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| corrupt(e.to_string()))?;
    if used != body.len() {
        return Err(corrupt(format!("{} trailing bytes", body.len() - used)));
    }
    Ok(value)
}
