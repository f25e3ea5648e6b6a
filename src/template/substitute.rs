//! Putting values in place of `[#NAME#]` masks at run time.

use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

/// The values masks stand for in one run. Secret values are kept as secrets
/// and handed to the redactor as well.
#[derive(Default)]
pub struct MaskValues {
    plain: BTreeMap<String, String>,
    secret: BTreeMap<String, SecretString>,
    /// Declared variables; in scripts these are shell-quoted.
    declared: Vec<String>,
}

impl MaskValues {
    /// A value that may be shown (a device name, a port).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.plain.insert(name.to_string(), value.into());
    }

    /// A value of a declared variable, checked against its pattern beforehand.
    pub fn set_declared(&mut self, name: &str, value: impl Into<String>) {
        self.declared.push(name.to_string());
        self.set(name, value);
    }

    /// A value that must never be shown.
    pub fn set_secret(&mut self, name: &str, value: SecretString) {
        self.secret.insert(name.to_string(), value);
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.plain
            .get(name)
            .map(String::as_str)
            .or_else(|| self.secret.get(name).map(|s| s.expose_secret()))
    }

    /// The secret values with their mask names, for a [`super::Redactor`].
    pub fn secrets(&self) -> Vec<(String, SecretString)> {
        self.secret
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Replaces every mask in `text`. With `quote_declared`, declared variables'
/// values are shell-quoted, since a shell parses the result. A mask without a
/// value is left as it is (the checker refuses undeclared masks at save time).
pub fn substitute(text: &str, values: &MaskValues, quote_declared: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("[#") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("#]").and_then(|close| {
            let name = &after[..close];
            values.lookup(name).map(|v| (name, v, close))
        });
        match value {
            Some((name, v, close)) => {
                if quote_declared && values.declared.iter().any(|d| d == name) {
                    out.push_str(&shell_quote(v));
                } else {
                    out.push_str(v);
                }
                rest = &after[close + 2..];
            }
            // Not a mask with a value: keep the "[#" and look again right
            // after it, so "[#[#NAME#]" still finds [#NAME#].
            None => {
                out.push_str("[#");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Quotes a value for a POSIX shell so that it stays one word, literally.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_builtins_plainly_and_quotes_declared_values_in_scripts() {
        let mut v = MaskValues::default();
        v.set("DEVICE", "web-1");
        v.set_declared("SERVICE", "nginx; rm -rf /");
        v.set_secret("AUTH_PASSWORD", SecretString::from("s3cret"));
        let out = substitute(
            "systemctl status [#SERVICE#] on [#DEVICE#] [#AUTH_PASSWORD#] [#X#]",
            &v,
            true,
        );
        assert_eq!(
            out,
            "systemctl status 'nginx; rm -rf /' on web-1 s3cret [#X#]"
        );
        assert_eq!(substitute("[#[#DEVICE#] [#", &v, false), "[#web-1 [#");
        let raw = substitute("[#SERVICE#]", &v, false);
        assert_eq!(raw, "nginx; rm -rf /");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
