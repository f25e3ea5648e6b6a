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

    /// Forgets a mask's value (plain or secret).
    pub fn remove(&mut self, name: &str) {
        self.plain.remove(name);
        self.secret.remove(name);
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.plain
            .get(name)
            .map(String::as_str)
            .or_else(|| self.secret.get(name).map(|s| s.expose_secret()))
    }

    /// The first mask whose value holds a line break or another control
    /// character: such a value cannot be typed into a shell as one line.
    pub fn with_control_characters(&self) -> Option<&str> {
        self.plain
            .iter()
            .map(|(k, v)| (k, v.as_str()))
            .chain(self.secret.iter().map(|(k, v)| (k, v.expose_secret())))
            .find(|(_, v)| v.chars().any(char::is_control))
            .map(|(k, _)| k.as_str())
    }

    /// The declared variables with their values (a playbook's extra
    /// variables), in the order they were declared.
    pub fn declared_values(&self) -> Vec<(String, String)> {
        self.declared
            .iter()
            .filter_map(|name| Some((name.clone(), self.plain.get(name)?.clone())))
            .collect()
    }

    /// The secret values with their mask names, for a [`super::Redactor`].
    pub fn secrets(&self) -> Vec<(String, SecretString)> {
        self.secret
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Replaces every mask in `text`. With `for_shell`, the values of declared
/// variables and of secrets are shell-quoted, since a shell parses the
/// result: each stays one word, taken literally (`'pa$$'`). A mask without a
/// value is left as it is (the checker refuses undeclared masks at save time).
pub fn substitute(text: &str, values: &MaskValues, for_shell: bool) -> String {
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
                let quoted =
                    values.declared.iter().any(|d| d == name) || values.secret.contains_key(name);
                if for_shell && quoted {
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
            "systemctl status 'nginx; rm -rf /' on web-1 's3cret' [#X#]"
        );
        // A secret with shell syntax stays one literal word in a script.
        v.set_secret("PASSWORD", SecretString::from("x$(id -un >f)y'q"));
        assert_eq!(
            substitute("echo [#PASSWORD#]", &v, true),
            r"echo 'x$(id -un >f)y'\''q'"
        );
        assert_eq!(v.with_control_characters(), None);
        v.set_declared("LINE", "a\nid");
        assert_eq!(v.with_control_characters(), Some("LINE"));
        assert_eq!(substitute("[#[#DEVICE#] [#", &v, false), "[#web-1 [#");
        let raw = substitute("[#SERVICE#]", &v, false);
        assert_eq!(raw, "nginx; rm -rf /");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
