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

/// What each built-in mask holds at run time (the legend the template
/// editor shows beside the content).
pub fn builtin_meaning(name: &str) -> &'static str {
    match name {
        "AUTH_USER" => "user the run logs in as",
        "AUTH_PASSWORD" => "that login's password (secret)",
        "USERNAME" => "credential's user (changed one)",
        "PASSWORD" => "its password (old in a change)",
        "NEW_PASSWORD" => "new password in a change",
        "OLD_PASSWORD" => "old password in a change",
        "NEW_PUBLIC_KEY" => "new public key in a key change",
        "OLD_PUBLIC_KEY" => "old public key in a key change",
        "DEVICE" => "the device's name",
        "HOSTNAME" => "the device's name, as DEVICE",
        "ADDRESS" => "the device's address",
        "PORT" => "the device's SSH port",
        _ => "",
    }
}

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

/// What a template will send to a device, for the people who decide on
/// it: the values a run shows (device, address, port, the login's user
/// name, declared variables with their defaults) in place, every secret
/// left as its mask's name. Declared variables are shell-quoted where a
/// shell reads the result, as at run time.
pub fn preview(
    template: &crate::domain::Template,
    device: &crate::domain::Device,
    username: &str,
    variables: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut values = MaskValues::default();
    values.set("AUTH_USER", username);
    values.set("USERNAME", username);
    values.set("DEVICE", device.meta.name.clone());
    values.set("HOSTNAME", device.meta.name.clone());
    values.set("ADDRESS", device.address.clone());
    values.set("PORT", device.port.to_string());
    for v in &template.variables {
        if let Some(value) = variables.get(&v.name).or(v.default.as_ref()) {
            values.set_declared(&v.name, value.clone());
        }
    }
    let for_shell = template.executor != crate::domain::Executor::SshExpect;
    substitute(&template.content, &values, for_shell)
}
