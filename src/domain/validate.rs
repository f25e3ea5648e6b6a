//! Field checks every record passes before it is saved.

use super::*;
use std::fmt;

/// A record that failed a check, naming the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Checks of a record's own fields (references to other records are the store's job).
pub trait Validate {
    fn validate(&self) -> Result<(), FieldError>;
}

/// Names are shown in one-line lists and typed on command lines: printable,
/// no surrounding blanks, no control characters, at most 64 characters.
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.trim() != name {
        return Err(FieldError::new(field, "must not start or end with a blank"));
    }
    if name.chars().count() > 64 {
        return Err(FieldError::new(field, "must be at most 64 characters"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            format!("must not hold the control character {:?}", c),
        ));
    }
    Ok(())
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), FieldError> {
    if text.len() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(FieldError::new(
            field,
            format!("must not hold the control character {:?}", c),
        ));
    }
    Ok(())
}

/// Logins, or `@group` for the members of an OS group.
fn check_people(field: &str, names: &[String]) -> Result<(), FieldError> {
    for (i, n) in names.iter().enumerate() {
        check_name(&format!("{field}[{i}]"), n.strip_prefix('@').unwrap_or(n))?;
        if names[..i].contains(n) {
            return Err(FieldError::new(field, format!("names '{n}' twice")));
        }
    }
    Ok(())
}

fn check_names(field: &str, names: &[String]) -> Result<(), FieldError> {
    for (i, n) in names.iter().enumerate() {
        check_name(&format!("{field}[{i}]"), n)?;
        if names[..i].contains(n) {
            return Err(FieldError::new(field, format!("names '{n}' twice")));
        }
    }
    Ok(())
}

/// The characters a variable name may hold: it appears inside `[#…#]`.
pub fn is_mask_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl Validate for Record {
    fn validate(&self) -> Result<(), FieldError> {
        check_name("name", self.name())?;
        match self {
            Record::Environment(e) => {
                if let Some(policy) = &e.password_policy {
                    policy
                        .check()
                        .map_err(|m| FieldError::new("password_policy", m))?;
                }
                check_ssh_options(&e.ssh_options)
            }
            Record::System(_) | Record::Reason(_) => Ok(()),
            Record::Freeze(f) => {
                check_text("reason", &f.reason, 1024)?;
                check_names("environments", &f.environments)?;
                match f.problem() {
                    Some((field, message)) => Err(FieldError::new(field, message)),
                    None => Ok(()),
                }
            }
            Record::Device(d) => {
                if d.address.trim().is_empty() {
                    return Err(FieldError::new("address", "must not be empty"));
                }
                if d.address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(FieldError::new("address", "must not hold blanks"));
                }
                check_address(&d.address)?;
                if d.port == 0 {
                    return Err(FieldError::new("port", "must be between 1 and 65535"));
                }
                check_name("environment", &d.environment)?;
                check_name("system", &d.system)?;
                check_text("product", &d.product, 64)?;
                check_names("tags", &d.tags)?;
                check_ssh_options(&d.ssh_options)?;
                if let Some(via) = &d.via {
                    check_name("via", via)?;
                    if *via == d.meta.name {
                        return Err(FieldError::new(
                            "via",
                            "a device cannot be reached through itself",
                        ));
                    }
                }
                Ok(())
            }
            Record::Credential(c) => {
                check_name("username", &c.username)?;
                if c.jit_grant_template.is_some() != c.jit_revoke_template.is_some() {
                    return Err(FieldError::new(
                        "jit_revoke_template",
                        "JIT needs both a grant and a revoke template",
                    ));
                }
                if let Some(policy) = &c.password_policy {
                    policy
                        .check()
                        .map_err(|m| FieldError::new("password_policy", m))?;
                }
                if let Some(window) = &c.rotation_window {
                    window
                        .minutes()
                        .map_err(|(f, m)| FieldError::new(format!("rotation_window.{f}"), m))?;
                }
                if c.checkout_secs.is_some() && !c.rotate_after_view {
                    return Err(FieldError::new(
                        "checkout",
                        "a check-out period is the time before the change rotate_after_view asks for: set rotate_after_view too",
                    ));
                }
                for (field, other) in [
                    ("change_with", &c.change_with),
                    ("reconcile_with", &c.reconcile_with),
                ] {
                    if let Some(other) = other {
                        check_name(field, other)?;
                        if *other == c.meta.name {
                            return Err(FieldError::new(
                                field,
                                "names the credential itself; leave it out to log in as the credential",
                            ));
                        }
                    }
                }
                check_names("children", &c.children)?;
                if c.children.contains(&c.meta.name) {
                    return Err(FieldError::new(
                        "children",
                        "a credential cannot be its own child",
                    ));
                }
                // change_with also administers a JIT credential's account
                // (its grant and revoke run as it).
                if ((c.change_with.is_some() && c.jit_grant_template.is_none())
                    || c.reconcile_with.is_some()
                    || c.rotate_every_secs.is_some()
                    || c.rotate_after_view
                    || c.rotate_after_use
                    || !c.children.is_empty())
                    && c.change_template.is_none()
                {
                    return Err(FieldError::new(
                        "change_template",
                        "change_with (unless the credential has JIT templates), reconcile_with, children, rotate_every, rotate_after_view and rotate_after_use need a change template",
                    ));
                }
                if c.passphrase.is_some() && c.private_key.is_none() {
                    return Err(FieldError::new(
                        "passphrase",
                        "a passphrase needs a private key to open",
                    ));
                }
                Ok(())
            }
            Record::Template(t) => {
                check_text("description", &t.description, 4096)?;
                check_text("content", &t.content, 256 * 1024)?;
                if t.executor != super::Executor::SshScript {
                    if !t.interpreter.is_empty() {
                        return Err(FieldError::new(
                            "interpreter",
                            "is for ssh-script templates",
                        ));
                    }
                    if t.pty {
                        return Err(FieldError::new(
                            "pty",
                            "is for ssh-script templates (ssh-expect always has one)",
                        ));
                    }
                }
                if !t.interpreter.is_empty()
                    && !t
                        .interpreter
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
                {
                    return Err(FieldError::new(
                        "interpreter",
                        format!(
                            "'{}' must be a program name or path (letters, digits, '/', '.', '_', '-'), such as bash or /usr/bin/python3",
                            crate::text::clipped(&t.interpreter, 40)
                        ),
                    ));
                }
                for (i, v) in t.variables.iter().enumerate() {
                    let field = format!("variable[{i}]");
                    if !is_mask_name(&v.name) {
                        return Err(FieldError::new(
                            format!("{field}.name"),
                            format!(
                                "'{}' must be upper-case letters, digits and '_' (it is used as [#NAME#])",
                                v.name
                            ),
                        ));
                    }
                    if super::BUILTIN_MASKS.contains(&v.name.as_str()) {
                        return Err(FieldError::new(
                            format!("{field}.name"),
                            format!("'{}' is a built-in mask", v.name),
                        ));
                    }
                    if t.variables[..i].iter().any(|o| o.name == v.name) {
                        return Err(FieldError::new(
                            format!("{field}.name"),
                            format!("'{}' is declared twice", v.name),
                        ));
                    }
                    let pattern = regex::Regex::new(&format!("^(?:{})$", v.effective_pattern()))
                        .map_err(|e| {
                            FieldError::new(
                                format!("{field}.pattern"),
                                format!("is not a valid regular expression: {e}"),
                            )
                        })?;
                    if let Some(default) = &v.default {
                        if !pattern.is_match(default) {
                            return Err(FieldError::new(
                                format!("{field}.default"),
                                format!(
                                    "'{default}' does not match the pattern {}",
                                    v.effective_pattern()
                                ),
                            ));
                        }
                    }
                }
                Ok(())
            }
            Record::Task(t) => {
                check_text("description", &t.description, 4096)?;
                check_name("template", &t.template)?;
                check_name("environment", &t.environment)?;
                check_name("system", &t.system)?;
                // No credential is for a template that runs on the Gatehouse
                // host: the engine asks the template's executor.
                if !t.credential.is_empty() {
                    check_name("credential", &t.credential)?;
                }
                if t.devices.is_empty() {
                    return Err(FieldError::new(
                        "devices",
                        "a task needs at least one device",
                    ));
                }
                check_names("devices", &t.devices)?;
                check_names("children", &t.children)?;
                if t.children.contains(&t.meta.name) {
                    return Err(FieldError::new(
                        "children",
                        "a task cannot be its own child",
                    ));
                }
                if let Some(schedule) = &t.schedule {
                    parse_schedule(schedule).map_err(|e| FieldError::new("schedule", e))?;
                }
                if t.timeout_secs == 0 {
                    return Err(FieldError::new("timeout", "must be at least 1 second"));
                }
                if t.parallelism == 0 {
                    return Err(FieldError::new("parallelism", "must be at least 1"));
                }
                if t.retries > 20 {
                    return Err(FieldError::new("retries", "must be at most 20"));
                }
                Ok(())
            }
            Record::User(u) => {
                if !u
                    .meta
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                {
                    return Err(FieldError::new(
                        "login",
                        "an OS login holds only letters, digits, '.', '_' and '-'",
                    ));
                }
                check_text("display_name", &u.display_name, 128)?;
                check_names("roles", &u.roles)
            }
            Record::Role(r) => {
                check_text("description", &r.description, 4096)?;
                check_names("os_groups", &r.os_groups)?;
                if r.meta.name == crate::domain::SUPERUSER_ROLE && !r.os_groups.is_empty() {
                    return Err(FieldError::new(
                        "os_groups",
                        "the Superuser role is given to users, never to a group",
                    ));
                }
                for (i, g) in r.grants.iter().enumerate() {
                    if !g.environments.is_empty() && !g.action.is_scoped_by_environment() {
                        return Err(FieldError::new(
                            format!("grants[{i}].environments"),
                            format!(
                                "{} does not concern records in an environment, so it cannot be scoped to some",
                                g.action.as_str()
                            ),
                        ));
                    }
                }
                for (i, g) in r.resources.iter().enumerate() {
                    if !matches!(g.kind, Kind::Task | Kind::Template | Kind::Device) {
                        return Err(FieldError::new(
                            format!("resources[{i}].kind"),
                            "resource access names a task, a template or a device",
                        ));
                    }
                    if g.levels.is_empty() {
                        return Err(FieldError::new(
                            format!("resources[{i}].levels"),
                            "must name at least one of read, run, write, delete",
                        ));
                    }
                }
                Ok(())
            }
            Record::Policy(p) => {
                check_text("description", &p.description, 4096)?;
                check_people("users", &p.users)?;
                check_names("devices", &p.devices)?;
                check_names("environments", &p.environments)?;
                check_names("systems", &p.systems)?;
                check_names("credentials", &p.credentials)?;
                if p.covers.names().is_empty() {
                    return Err(FieldError::new(
                        "covers",
                        "must name at least one of tasks, sessions, reveals",
                    ));
                }
                for (i, pattern) in p.deny_commands.iter().enumerate() {
                    if pattern.trim().is_empty() {
                        return Err(FieldError::new(
                            format!("deny_commands[{i}]"),
                            "is blank: it would deny nothing (or, as `*`, everything)",
                        ));
                    }
                    check_text(&format!("deny_commands[{i}]"), pattern, 256)?;
                }
                for (field, list) in [
                    ("products", &p.products),
                    ("device_tags", &p.device_tags),
                    ("usernames", &p.usernames),
                ] {
                    if !list.is_empty() && !p.covers.sessions {
                        return Err(FieldError::new(
                            field,
                            "chooses what sessions may open: the policy must cover sessions",
                        ));
                    }
                    for (i, v) in list.iter().enumerate() {
                        if v.trim().is_empty() {
                            return Err(FieldError::new(format!("{field}[{i}]"), "is blank"));
                        }
                        check_text(&format!("{field}[{i}]"), v, 128)?;
                    }
                }
                if p.covers.reveals {
                    // A reveal judges a credential, not a run on devices:
                    // devices and systems would be silently ignored for it.
                    for (field, list) in [("devices", &p.devices), ("systems", &p.systems)] {
                        if !list.is_empty() {
                            return Err(FieldError::new(
                                field,
                                "a policy that covers reveals chooses credentials and \
                                 environments, not devices or systems (use another policy)",
                            ));
                        }
                    }
                }
                if p.requires_approval && p.approvers.is_empty() {
                    return Err(FieldError::new(
                        "approvers",
                        "a policy that requires approval needs at least one approver",
                    ));
                }
                for (i, a) in p.approvers.iter().enumerate() {
                    if a.level == 0 || a.level > 9 {
                        return Err(FieldError::new(
                            format!("approvers[{i}].level"),
                            "must be between 1 and 9",
                        ));
                    }
                }
                // Separation of duties: each level is decided by other people.
                for (i, a) in p.approvers.iter().enumerate() {
                    if let Some(other) = p.approvers[..i]
                        .iter()
                        .find(|b| b.user == a.user && b.level != a.level)
                    {
                        return Err(FieldError::new(
                            format!("approvers[{i}]"),
                            format!(
                                "'{}' is an approver at levels {} and {}; each level needs different people",
                                a.user,
                                other.level.min(a.level),
                                other.level.max(a.level)
                            ),
                        ));
                    }
                }
                let mut levels: Vec<u8> = p.approvers.iter().map(|a| a.level).collect();
                levels.sort();
                levels.dedup();
                if levels.iter().enumerate().any(|(i, l)| *l as usize != i + 1) {
                    return Err(FieldError::new(
                        "approvers",
                        "approval levels must run 1, 2, 3… without a gap",
                    ));
                }
                if let Some(tz) = &p.timezone {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        return Err(FieldError::new(
                            "timezone",
                            format!("'{tz}' is not an IANA time zone (like Europe/Berlin or America/New_York)"),
                        ));
                    }
                }
                for (i, w) in p.windows.iter().enumerate() {
                    if w.days.is_empty() || w.days.iter().any(|d| !(1..=7).contains(d)) {
                        return Err(FieldError::new(
                            format!("window[{i}].days"),
                            "must list weekdays (mon … sun)",
                        ));
                    }
                    // `to` before `from` runs past midnight into the next day.
                    if w.from_minute == w.to_minute
                        || w.to_minute > 24 * 60
                        || w.from_minute >= 24 * 60
                    {
                        return Err(FieldError::new(
                            format!("window[{i}].to"),
                            "must differ from `from` (earlier runs past midnight), at most 24:00",
                        ));
                    }
                    if let (Some(a), Some(b)) = (w.start_date, w.end_date) {
                        if a > b {
                            return Err(FieldError::new(
                                format!("window[{i}].end_date"),
                                "must not be before start_date",
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// A device's address: a host name, an IPv4 address, or an IPv6 address
/// with or without brackets (`::1`, `[::1]`); never a port.
fn check_address(address: &str) -> Result<(), FieldError> {
    let inner = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if inner.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let host_name = inner
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if host_name && inner != address {
        return Err(FieldError::new(
            "address",
            format!("'{address}': brackets hold an IPv6 address only"),
        ));
    }
    if !host_name || inner.is_empty() {
        return Err(FieldError::new(
            "address",
            format!(
                "'{address}' is neither a host name nor an IP address (write an IPv6 address as ::1 or [::1], and the port in `port`)"
            ),
        ));
    }
    Ok(())
}

/// Parses a cron schedule: five fields (minute hour day month weekday) as
/// crontab has them, or six/seven with seconds (and year).
pub fn parse_schedule(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {text}")
    } else {
        text.to_string()
    };
    full.parse::<cron::Schedule>()
        .map_err(|e| format!("'{text}' is not a cron expression: {e}"))
}

/// The algorithm lists of an environment or a device, under their key.
fn check_ssh_options(o: &super::SshOptions) -> Result<(), FieldError> {
    o.check()
        .map_err(|(list, message)| FieldError::new(format!("ssh_options.{}", list.key()), message))
}

#[cfg(test)]
mod tests {
    use super::check_address;

    #[test]
    fn addresses_are_host_names_or_ip_literals_without_a_port() {
        for ok in [
            "web-1.example.com",
            "10.0.0.5",
            "::1",
            "[::1]",
            "fe80::1",
            "db_2",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in ["10.0.0.5:22", "[web-1]", "host/x", "[::1]:22", "a@b"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    /// A policy that covers reveals chooses credentials: devices or
    /// systems there would be ignored, so they are refused by field; a
    /// policy that covers nothing is refused too.
    #[test]
    fn a_reveal_policy_refuses_devices_and_systems() {
        use super::Validate;
        use crate::domain::{Covers, Meta, Policy, Record};
        let mut p = Policy {
            meta: Meta::named("reveals"),
            covers: Covers {
                tasks: false,
                sessions: false,
                reveals: true,
            },
            credentials: vec!["db-root".into()],
            ..Policy::default()
        };
        assert!(Record::Policy(p.clone()).validate().is_ok());
        p.systems = vec!["web".into()];
        let err = Record::Policy(p.clone()).validate().unwrap_err();
        assert_eq!(err.field, "systems");
        p.systems.clear();
        p.devices = vec!["web-1".into()];
        assert_eq!(
            Record::Policy(p.clone()).validate().unwrap_err().field,
            "devices"
        );
        p.devices.clear();
        p.covers.reveals = false;
        assert_eq!(Record::Policy(p).validate().unwrap_err().field, "covers");
    }

    /// Products, device tags and usernames choose sessions: on a policy
    /// that covers none, they would be silently ignored.
    #[test]
    fn session_criteria_need_a_policy_that_covers_sessions() {
        use super::Validate;
        use crate::domain::{Meta, Policy, Record};
        let mut p = Policy {
            meta: Meta::named("tasks-only"),
            usernames: vec!["svc-*".into()],
            ..Policy::default()
        };
        assert_eq!(
            Record::Policy(p.clone()).validate().unwrap_err().field,
            "usernames"
        );
        p.covers.sessions = true;
        assert!(Record::Policy(p.clone()).validate().is_ok());
        p.products = vec![" ".into()];
        assert_eq!(
            Record::Policy(p).validate().unwrap_err().field,
            "products[0]"
        );
    }
}
