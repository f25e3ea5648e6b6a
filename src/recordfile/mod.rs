//! The TOML records file that `import` reads and `export` writes:
//! `[[environment]]`, `[[device]]`, `[[template]]` with `[[template.variable]]`,
//! `[[policy]]` with `[[policy.window]]`, and so on.

mod docs;
pub mod fields;

pub use docs::RecordsFile;

use crate::domain::Record;
use crate::engine::ImportItem;
use std::fmt;
use std::path::Path;

/// A records file that cannot be read, with the line where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsFileError {
    pub line: usize,
    pub message: String,
    /// The field at fault and what is wrong with it, where one is.
    pub field: Option<(String, String)>,
}

impl fmt::Display for RecordsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for RecordsFileError {}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Parses a records file into import items. `base` is where relative
/// `private_key_file` paths start from.
pub fn parse(text: &str, base: &Path) -> Result<Vec<ImportItem>, RecordsFileError> {
    let file: RecordsFile = toml::from_str(text).map_err(|e| RecordsFileError {
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
        message: e.message().to_string(),
        field: None,
    })?;
    file.into_items(text, base)
}

/// Prints records in the import format. Secrets are never printed.
pub fn print(records: &[Record]) -> String {
    let file = RecordsFile::from_records(records);
    let body =
        toml::to_string_pretty(&file).unwrap_or_else(|e| format!("# cannot print records: {e}\n"));
    format!(
        "# Gatehouse records, exported {}. Secrets are not exported.\n\n{body}",
        crate::domain::Timestamp::now()
    )
}

/// What changed between two versions of a record, key by key as the
/// import format spells it: `port: 22 → 2222`. Secrets are not part of
/// the format, so never here (the caller says which changed). A long
/// value (a template's content) is told by its size.
pub fn field_changes(old: &Record, new: &Record) -> Vec<String> {
    fn doc(r: &Record) -> toml::Table {
        let file = RecordsFile::from_records(std::slice::from_ref(r));
        toml::Value::try_from(&file)
            .ok()
            .and_then(|v| {
                v.as_table()?
                    .values()
                    .next()?
                    .as_array()?
                    .first()?
                    .as_table()
                    .cloned()
            })
            .unwrap_or_default()
    }
    fn shown(v: Option<&toml::Value>) -> String {
        match v {
            None => "(default)".into(),
            Some(v) => crate::text::printable(&v.to_string()),
        }
    }
    let (before, after) = (doc(old), doc(new));
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            let (a, b) = (shown(before.get(k)), shown(after.get(k)));
            if a.chars().count() + b.chars().count() > 160 {
                format!(
                    "{k} changed ({} → {} characters)",
                    a.chars().count(),
                    b.chars().count()
                )
            } else {
                format!("{k}: {a} → {b}")
            }
        })
        .collect()
}

#[cfg(test)]
mod change_tests {
    use super::*;
    use crate::domain::{Device, Meta};

    #[test]
    fn an_update_names_each_changed_key_with_old_and_new_values() {
        let old = Record::Device(Device {
            meta: Meta::named("web-1"),
            address: "10.0.0.1".into(),
            port: 22,
            environment: "prod".into(),
            system: "web".into(),
            tags: vec!["pci".into()],
            ..Default::default()
        });
        let mut new = old.clone();
        if let Record::Device(d) = &mut new {
            d.port = 2222;
            d.tags.clear();
            d.meta.enabled = false;
        }
        assert_eq!(
            field_changes(&old, &new),
            [
                "enabled: (default) → false",
                "port: 22 → 2222",
                "tags: [\"pci\"] → (default)"
            ]
        );
        assert!(field_changes(&old, &old).is_empty());
    }
}
