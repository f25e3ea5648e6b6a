//! Stored values: one value-format byte, then bincode 2 (serde) with its
//! standard configuration. Keys are written by hand, big-endian.
//!
//! Bincode is positional: a value says nothing of its fields' names, so a
//! field added, removed or moved, or an enum variant inserted before
//! others, re-maps stored data without an error. `tests/golden.rs` pins the
//! bytes of a sample of every stored type and every kind of record, and
//! fails when one changes. The recipe for changing a stored type:
//!
//! 1. New enum variants go last (the enums whose order is stored say so);
//!    that needs no migration, but the golden sample of the type must
//!    still match (it does when the sample does not use the new variant).
//! 2. Any other change (a field added, removed, retyped or moved): copy the
//!    old layout into `schema.rs` as a private type, bump `SCHEMA_VERSION`,
//!    and add a migration that decodes every stored value with the old
//!    type and writes it in the new (version 4 does this for requests:
//!    `Pinned.children` and `ExecutionRequest.schedule`). Test it with a
//!    value of the old layout written by hand (`tests/store.rs`).
//! 3. Regenerate the golden files (`GOLDEN_UPDATE=1 cargo test --test
//!    golden`) and commit them with the migration.
//!
//! The format byte changes only when the encoding itself changes (another
//! codec); schema versions that only add trees or indexes (as version 2
//! did) leave values as they are.

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
