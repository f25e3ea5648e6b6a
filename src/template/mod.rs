//! The template language: parsing and checking at save time, mask
//! substitution at run time and redaction of secrets from everything that
//! leaves an executor.

mod glob;
mod parse;
mod redact;
mod substitute;

pub use glob::glob_matches;
pub use parse::{check, parse_expect, Step, StepKind, TemplateError};
pub use redact::Redactor;
pub use substitute::{shell_quote, substitute, MaskValues};

/// Masks every template may use without declaring them (the domain's
/// list: a variable may not take one of these names).
pub use crate::domain::BUILTIN_MASKS;

/// Built-in masks whose values are secrets and are redacted wherever they appear.
pub const SECRET_MASKS: [&str; 3] = ["AUTH_PASSWORD", "PASSWORD", "NEW_PASSWORD"];

/// Checks a value for a declared variable against its pattern; the refusal
/// names the variable.
pub fn check_value(variable: &crate::domain::Variable, value: &str) -> Result<(), String> {
    let pattern = variable.effective_pattern();
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("variable {}: its pattern is invalid: {e}", variable.name))?;
    if re.is_match(value) {
        Ok(())
    } else {
        Err(format!(
            "variable {}: the value {:?} does not match its pattern {pattern}",
            variable.name, value
        ))
    }
}
