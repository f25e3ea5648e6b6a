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
