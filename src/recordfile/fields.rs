//! The keys of each kind's import document as forms edit them: label,
//! whether required, what kind of value, the hint. They live beside the
//! documents (`docs`) they describe; the TUI's record forms are built from
//! them, and a test checks each is a key the import format knows.

use crate::domain::{Executor, Kind};

/// How a key of the record file is edited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Spec {
    Line,
    Int,
    Bool,
    /// Comma-separated words.
    List,
    Choice(&'static [&'static str]),
    /// The name of another record of this kind (optional ones may be blank).
    Ref(Kind),
    /// Names of records of this kind.
    Refs(Kind),
    Secret,
    /// Multi-line text (template content).
    Text,
    /// A TOML value (arrays of tables: variables, grants, approvers…).
    Toml,
    /// NAME=value pairs, comma-separated.
    Pairs,
}

/// One key of a kind's import document, as a form edits it.
pub struct Key {
    pub key: &'static str,
    pub label: &'static str,
    pub required: bool,
    pub spec: Spec,
    /// The hint under the field.
    pub help: &'static str,
}

const fn k(
    key: &'static str,
    label: &'static str,
    required: bool,
    spec: Spec,
    help: &'static str,
) -> Key {
    Key {
        key,
        label,
        required,
        spec,
        help,
    }
}

const ENABLED: Key = k(
    "enabled",
    "Enabled",
    false,
    Spec::Bool,
    "Space toggles; a disabled record is kept but not used",
);

const SSH_OPTIONS: Key = k(
    "ssh_options",
    "SSH options",
    false,
    Spec::Toml,
    "{ kex = \"+diffie-hellman-group14-sha1\", macs = \"+hmac-sha1\" }: OpenSSH's +/-/^ syntax",
);

/// The keys of a kind's import document that its form offers, in order.
/// The match is exhaustive: a new kind does not compile until it has its
/// table here, beside its document (`docs`).
pub fn keys(kind: Kind) -> Vec<Key> {
    use Spec::*;
    let name = k(
        "name",
        "Name",
        true,
        Line,
        "letters, digits, '-', '_' and '.'",
    );
    let mut keys = match kind {
        Kind::Environment => vec![name, SSH_OPTIONS],
        Kind::System => vec![name],
        Kind::Reason => vec![
            name,
            k(
                "type",
                "Type",
                true,
                Choice(&["incident", "change", "maintenance", "emergency", "other"]),
                "←/→ choose",
            ),
        ],
        Kind::Device => vec![
            name,
            k("address", "Address", true, Line, "host name or IP address"),
            k("port", "Port", false, Int, "SSH port (22)"),
            k(
                "product",
                "Product",
                false,
                Line,
                "what runs there, for people",
            ),
            k("tags", "Tags", false, List, "comma-separated"),
            k(
                "environment",
                "Environment",
                true,
                Ref(Kind::Environment),
                "←/→ choose",
            ),
            k("system", "System", true, Ref(Kind::System), "←/→ choose"),
            k(
                "host_keys",
                "Host keys",
                false,
                List,
                "pinned keys (\"ssh-ed25519 AAAA…\"), comma-separated; t on the device list scans and trusts",
            ),
            k(
                "via",
                "Via",
                false,
                Ref(Kind::Device),
                "reach it through this device (ProxyJump), or none",
            ),
            SSH_OPTIONS,
        ],
        Kind::Credential => vec![
            name,
            k(
                "username",
                "Username",
                true,
                Line,
                "the account on the device",
            ),
            k(
                "device",
                "Device",
                false,
                Ref(Kind::Device),
                "the device it belongs to, if one",
            ),
            k(
                "password",
                "Password",
                false,
                Secret,
                "typed masked, stored sealed, never shown back",
            ),
            k(
                "private_key_file",
                "Private key file",
                false,
                Line,
                "path of a key file to read and seal",
            ),
            k(
                "passphrase",
                "Passphrase",
                false,
                Secret,
                "of the private key; never shown back",
            ),
            k(
                "certificate_file",
                "Certificate file",
                false,
                Line,
                "OpenSSH user certificate for the key (id_…-cert.pub)",
            ),
            k(
                "jit_grant_template",
                "JIT grant template",
                false,
                Ref(Kind::Template),
                "template that grants the privilege",
            ),
            k(
                "jit_revoke_template",
                "JIT revoke template",
                false,
                Ref(Kind::Template),
                "template that takes it back",
            ),
        ],
        Kind::Template => vec![
            name,
            k("description", "Description", false, Line, ""),
            k(
                "executor",
                "Executor",
                true,
                Choice(&Executor::NAMES),
                "←/→ choose",
            ),
            k(
                "execution_type",
                "Execution type",
                false,
                Choice(&["task", "password-change", "jit-grant", "jit-revoke"]),
                "←/→ choose",
            ),
            k(
                "content",
                "Content",
                true,
                Text,
                "masks like [#NAME#]; ssh-expect: expect \"glob\" [timeout N], exec …, end",
            ),
            k(
                "interpreter",
                "Interpreter",
                false,
                Line,
                "ssh-script: bash, /usr/bin/python3…; blank: sh or the #! line",
            ),
            k(
                "pty",
                "PTY",
                false,
                Bool,
                "ssh-script: run on a terminal (sudo with requiretty)",
            ),
            k(
                "variable",
                "Variables",
                false,
                Toml,
                "[{ name = \"X\", description = \"…\", default = \"…\", pattern = \"…\" }]",
            ),
        ],
        Kind::Task => vec![
            name,
            k("description", "Description", false, Line, ""),
            k(
                "template",
                "Template",
                true,
                Ref(Kind::Template),
                "←/→ choose",
            ),
            k(
                "environment",
                "Environment",
                true,
                Ref(Kind::Environment),
                "←/→ choose",
            ),
            k("system", "System", true, Ref(Kind::System), "←/→ choose"),
            k(
                "devices",
                "Devices",
                true,
                Refs(Kind::Device),
                "←/→ move, Space picks, a picks all",
            ),
            k(
                "credential",
                "Credential",
                false,
                Ref(Kind::Credential),
                "←/→ choose; none for a local template",
            ),
            k(
                "variables",
                "Variable values",
                false,
                Pairs,
                "NAME=value, NAME2=value",
            ),
            k(
                "schedule",
                "Schedule",
                false,
                Line,
                "cron: \"0 30 2 * * *\" (seconds first), or blank",
            ),
            k("timeout", "Timeout (s)", false, Int, "seconds per device"),
            k("retries", "Retries", false, Int, "extra attempts"),
            k(
                "retry_on_failure",
                "Retry on failure",
                false,
                Bool,
                "also retry runs that failed (not only connections)",
            ),
            k(
                "idempotent",
                "Idempotent",
                false,
                Bool,
                "safe to run again after a run was cut off",
            ),
            k("parallelism", "Parallelism", false, Int, "devices at once"),
            k(
                "children",
                "Then run",
                false,
                Refs(Kind::Task),
                "tasks chained after success, on the same device",
            ),
        ],
        Kind::User => vec![
            k(
                "login",
                "Login",
                true,
                Line,
                "the OS account name on this host",
            ),
            k("display_name", "Display name", false, Line, ""),
            k(
                "roles",
                "Roles",
                false,
                Refs(Kind::Role),
                "←/→ move, Space picks",
            ),
        ],
        Kind::Role => vec![
            name,
            k("description", "Description", false, Line, ""),
            k(
                "grants",
                "Grants",
                false,
                Toml,
                "[{ action = \"request-tasks\", environments = [\"prod\"] }]",
            ),
            k(
                "resources",
                "Resources",
                false,
                Toml,
                "[{ kind = \"task\", name = \"restart\", levels = [\"read\", \"run\"] }]",
            ),
            k(
                "os_groups",
                "OS groups",
                false,
                List,
                "members of these OS groups hold the role",
            ),
        ],
        Kind::Freeze => vec![
            name,
            k(
                "reason",
                "Reason",
                false,
                Line,
                "why: end of quarter, release weekend",
            ),
            k(
                "from",
                "From",
                true,
                Line,
                "2026-12-20 18:00 (in the time zone below)",
            ),
            k("to", "To", true, Line, "2027-01-04 08:00"),
            k(
                "timezone",
                "Time zone",
                true,
                Line,
                "Europe/Berlin, America/New_York, UTC",
            ),
            k(
                "environments",
                "Environments",
                false,
                Refs(Kind::Environment),
                "none: every environment",
            ),
        ],
        Kind::Policy => vec![
            name,
            k("description", "Description", false, Line, ""),
            k(
                "users",
                "Users",
                false,
                Refs(Kind::User),
                "who may request under it",
            ),
            k(
                "environments",
                "Environments",
                false,
                Refs(Kind::Environment),
                "what it covers",
            ),
            k("systems", "Systems", false, Refs(Kind::System), ""),
            k("devices", "Devices", false, Refs(Kind::Device), ""),
            k(
                "covers",
                "Covers",
                false,
                List,
                "tasks, sessions, reveals (default tasks)",
            ),
            k(
                "credentials",
                "Credentials",
                false,
                Refs(Kind::Credential),
                "",
            ),
            k("requires_approval", "Requires approval", false, Bool, ""),
            k(
                "requires_approval_comment",
                "Approvals need a comment",
                false,
                Bool,
                "every approval says why",
            ),
            k(
                "approvers",
                "Approvers",
                false,
                Toml,
                "[{ user = \"bob\", level = 1 }]",
            ),
            k(
                "requires_justification",
                "Requires justification",
                false,
                Bool,
                "",
            ),
            k(
                "requires_governance_id",
                "Requires governance id",
                false,
                Bool,
                "",
            ),
            k("requires_reason", "Requires reason", false, Bool, ""),
            k("requires_mfa", "Requires MFA", false, Bool, ""),
            k("emergency_access", "Emergency access", false, Bool, ""),
            k("requires_change", "Requires a change code", false, Bool, ""),
            k(
                "products",
                "Session device products",
                false,
                List,
                "sessions only on these products (* and ? match)",
            ),
            k(
                "device_tags",
                "Session device tags",
                false,
                List,
                "sessions only on devices with one of these tags",
            ),
            k(
                "usernames",
                "Session usernames",
                false,
                List,
                "sessions only as these credential usernames (* and ? match)",
            ),
            k(
                "deny_commands",
                "Denied command lines",
                false,
                Toml,
                "[\"rm -rf /*\", \"shutdown*\"] (a guard rail, not a control)",
            ),
            k(
                "timezone",
                "Time zone",
                false,
                Line,
                "IANA name (Europe/Berlin) its windows are read in; blank: the server's",
            ),
            k(
                "window",
                "Windows",
                false,
                Toml,
                "[{ days = [\"mon\", \"fri\"], from = \"08:00\", to = \"18:00\" }]",
            ),
        ],
    };
    keys.push(ENABLED);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form's field table and the import format are two lists of the
    /// same names: every field a form offers is a key the import format
    /// knows, for every kind (a key it does not know is refused as unknown).
    #[test]
    fn every_form_field_is_a_key_of_the_import_format() {
        let probe = |kind: Kind, key: &str| -> Option<String> {
            // Any value: a wrong type is fine, an unknown key is not.
            let text = format!("[[{}]]\n{key} = 0\n", kind.as_str());
            match super::super::parse(&text, std::path::Path::new(".")) {
                Err(e) if e.message.contains("unknown field") => Some(e.message),
                _ => None,
            }
        };
        // Positive control: a key no kind has is found out.
        assert!(probe(Kind::Device, "no_such_key").is_some());
        for kind in Kind::ALL {
            for key in keys(kind) {
                assert_eq!(
                    probe(kind, key.key),
                    None,
                    "{kind} form field `{}`",
                    key.key
                );
            }
        }
    }
}
