//! Stored values: one value-format byte, then bincode 2 (serde) with its
//! standard configuration. Keys are written by hand, big-endian.
//!
//! The format byte changes only when a stored type's layout changes, and a
//! schema migration then rewrites every value of it; schema versions that
//! only add trees or indexes (as version 2 did) leave values as they are.

use super::{StoreError, StoreResult};

/// The layout of stored values this program reads and writes.
pub const VALUE_FORMAT: u8 = 1;
use serde::{de::DeserializeOwned, Serialize};

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value behind the current value format.
pub fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    let mut out = vec![VALUE_FORMAT];
    let body = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    out.extend(body);
    Ok(out)
}

/// Decodes a value written by [`encode`] in the current value format.
pub fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> StoreResult<T> {
    let corrupt = |message: String| StoreError::Corrupt {
        tree: tree.to_string(),
        message,
    };
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty value".into()))?;
    if version != VALUE_FORMAT {
        return Err(corrupt(format!(
            "value format version {version}, expected {VALUE_FORMAT} (was the migration skipped?)"
        )));
    }
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| corrupt(e.to_string()))?;
    if used != body.len() {
        return Err(corrupt(format!("{} trailing bytes", body.len() - used)));
    }
    Ok(value)
}
