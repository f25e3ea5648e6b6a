//! Access policies: which policy lets a user request a task on some devices
//! now, and what that policy requires of the request. Pure functions.

use super::Member;
use crate::domain::{Policy, Task, Window};
use chrono::{Datelike, NaiveDateTime, Timelike};

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A window as people read it: "Mon–Fri 08:00–18:00".
pub fn describe_window(w: &Window) -> String {
    let mut days: Vec<u8> = w.days.clone();
    days.sort();
    days.dedup();
    let contiguous = days.windows(2).all(|p| p[1] == p[0] + 1);
    let day_text = match (days.first(), days.last()) {
        (Some(a), Some(b)) if contiguous && days.len() > 2 => {
            format!(
                "{}–{}",
                DAY_NAMES[*a as usize - 1],
                DAY_NAMES[*b as usize - 1]
            )
        }
        _ => days
            .iter()
            .map(|d| DAY_NAMES[*d as usize - 1])
            .collect::<Vec<_>>()
            .join(","),
    };
    let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    let mut text = format!("{day_text} {}–{}", hm(w.from_minute), hm(w.to_minute));
    if w.to_minute < w.from_minute {
        text.push_str(" the next day");
    }
    if let Some(d) = w.start_date {
        text.push_str(&format!(" from {d}"));
    }
    if let Some(d) = w.end_date {
        text.push_str(&format!(" until {d}"));
    }
    text
}

/// Whether `now` (the wall-clock time of the window's zone) falls inside
/// the window. A window whose `to` is before its `from` runs past
/// midnight: `days` (and the dates) name the day it starts.
pub fn window_contains(w: &Window, now: NaiveDateTime) -> bool {
    let minute = (now.hour() * 60 + now.minute()) as u16;
    let starts_on = |date: chrono::NaiveDate| {
        let day = date.weekday().number_from_monday() as u8;
        w.days.contains(&day)
            && w.start_date.is_none_or(|d| date >= d)
            && w.end_date.is_none_or(|d| date <= d)
    };
    if w.from_minute < w.to_minute {
        starts_on(now.date()) && minute >= w.from_minute && minute < w.to_minute
    } else {
        (starts_on(now.date()) && minute >= w.from_minute)
            || (minute < w.to_minute && now.date().pred_opt().is_some_and(starts_on))
    }
}

/// The wall-clock time a policy's windows are read in: its zone's, or
/// the server's when it names none (or one that no longer parses).
pub fn policy_time(p: &Policy, now: chrono::DateTime<chrono::Utc>) -> NaiveDateTime {
    match p
        .timezone
        .as_deref()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
    {
        Some(tz) => now.with_timezone(&tz).naive_local(),
        None => now
            .with_timezone(&crate::domain::zone::machine_zone())
            .naive_local(),
    }
}

/// The zone a policy's windows are read in, as people read it.
pub fn zone_of(p: &Policy) -> String {
    match &p.timezone {
        Some(z) => z.clone(),
        None => format!("the server's time, {}", crate::domain::zone::machine_zone()),
    }
}

/// What a request or a session would reach, as a policy's scope judges it.
struct Scope<'a> {
    /// "tasks" or "sessions", and whether the policy covers that.
    what: &'static str,
    covered: bool,
    credential: &'a str,
    environment: &'a str,
    system: &'a str,
    devices: &'a [&'a str],
}

/// One policy judged against one request, session or reveal: the
/// conditions it met, in the order they are asked, and the first it
/// failed. The decision and every explanation come from this one judge.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub policy: String,
    /// Conditions met, in order: enabled, user, covers, credential,
    /// environment, system, devices, (product, tags, username,) window.
    pub passed: Vec<String>,
    /// The first condition failed and why; none: the policy covers it.
    pub failed: Option<(String, String)>,
}

impl Verdict {
    /// Whether the policy covers what was asked.
    pub fn covers(&self) -> bool {
        self.failed.is_none()
    }

    /// Whether it could apply to the person at all (enabled and lists them).
    fn could_apply(&self) -> bool {
        self.passed.iter().any(|c| c == "user")
    }
}

/// Asks a policy's conditions in order and stops at the first that fails.
struct Judge {
    passed: Vec<String>,
    failed: Option<(String, String)>,
}

impl Judge {
    fn new() -> Judge {
        Judge {
            passed: Vec::new(),
            failed: None,
        }
    }

    fn check(&mut self, condition: &str, why_not: impl FnOnce() -> Option<String>) -> &mut Judge {
        if self.failed.is_none() {
            match why_not() {
                None => self.passed.push(condition.to_string()),
                Some(why) => self.failed = Some((condition.to_string(), why)),
            }
        }
        self
    }

    fn verdict(&mut self, p: &Policy) -> Verdict {
        Verdict {
            policy: p.meta.name.clone(),
            passed: std::mem::take(&mut self.passed),
            failed: self.failed.take(),
        }
    }
}

/// The conditions of a policy's scope: enabled, listing the user (or a
/// group of theirs), covering that kind, the credential, the environment,
/// the system and every device.
fn judge_scope(judge: &mut Judge, p: &Policy, user: Member<'_>, scope: &Scope<'_>) {
    let name = &p.meta.name;
    judge
        .check("enabled", || {
            (!p.meta.enabled).then(|| format!("policy {name} is disabled"))
        })
        .check("user", || {
            (!user.in_list(&p.users)).then(|| {
                format!(
                    "policy {name} does not list user '{}' (or a group of theirs)",
                    user.login
                )
            })
        })
        .check("covers", || {
            (!scope.covered).then(|| {
                format!(
                    "policy {name} covers {}, not {}",
                    p.covers.names().join(" and "),
                    scope.what
                )
            })
        })
        .check("credential", || {
            (!p.credentials.is_empty() && !p.credentials.iter().any(|c| c == scope.credential))
                .then(|| {
                    format!(
                        "policy {name} does not cover credential '{}'",
                        scope.credential
                    )
                })
        })
        .check("environment", || {
            (!p.environments.is_empty() && !p.environments.iter().any(|e| e == scope.environment))
                .then(|| {
                    format!(
                        "policy {name} does not cover environment '{}'",
                        scope.environment
                    )
                })
        })
        .check("system", || {
            (!p.systems.is_empty() && !p.systems.iter().any(|s| s == scope.system))
                .then(|| format!("policy {name} does not cover system '{}'", scope.system))
        })
        .check("devices", || {
            if p.devices.is_empty() {
                return None;
            }
            scope
                .devices
                .iter()
                .find(|d| !p.devices.iter().any(|pd| pd == *d))
                .map(|d| format!("policy {name} does not cover device '{d}'"))
        });
}

/// One policy judged against a request of `task` on `devices` at `now`.
pub fn judge_task(
    p: &Policy,
    user: Member<'_>,
    task: &Task,
    devices: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Verdict {
    let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
    let scope = Scope {
        what: "tasks",
        covered: p.covers.tasks,
        credential: &task.credential,
        environment: &task.environment,
        system: &task.system,
        devices: &devices,
    };
    let mut judge = Judge::new();
    judge_scope(&mut judge, p, user, &scope);
    judge.check("window", || outside_windows(p, now));
    judge.verdict(p)
}

/// Why `now` lies outside every window of a policy that has windows
/// (read in the policy's zone).
fn outside_windows(p: &Policy, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let local = policy_time(p, now);
    if !p.windows.is_empty() && !p.windows.iter().any(|w| window_contains(w, local)) {
        let windows: Vec<String> = p.windows.iter().map(describe_window).collect();
        return Some(format!(
            "outside the access window of policy {}: {} ({}; {} there)",
            p.meta.name,
            windows.join("; "),
            zone_of(p),
            local.format("%a %H:%M")
        ));
    }
    None
}

/// Every policy judged, most promising first: those that cover, then by
/// how many conditions they met (ties in the policies' order).
/// Each verdict keeps the index of its policy.
fn ranked(policies: &[Policy], judge: impl Fn(&Policy) -> Verdict) -> Vec<(usize, Verdict)> {
    let mut verdicts: Vec<(usize, Verdict)> = policies.iter().map(judge).enumerate().collect();
    verdicts.sort_by_key(|(_, v)| {
        (
            std::cmp::Reverse(v.covers()),
            std::cmp::Reverse(v.passed.len()),
        )
    });
    verdicts
}

/// Every policy judged against a request of `task` on `devices` at `at`,
/// most promising first: `policy explain`'s table, and the decision's
/// own reasoning.
pub fn explain_task<'m>(
    policies: &[Policy],
    user: impl Into<Member<'m>>,
    task: &Task,
    devices: &[String],
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<Verdict> {
    let user = user.into();
    ranked(policies, |p| judge_task(p, user, task, devices, at))
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// A refusal from ranked verdicts: the most promising policy's reason
/// first, then each policy that could apply (enabled, listing the person)
/// with the condition it fails and those it met; `nobody` when none could.
pub fn refusal_of(verdicts: &[Verdict], nobody: impl FnOnce() -> String) -> String {
    let could: Vec<&Verdict> = verdicts.iter().filter(|v| v.could_apply()).collect();
    let Some(best) = could.first().and_then(|v| v.failed.as_ref()) else {
        return nobody();
    };
    let mut text = best.1.clone();
    text.push_str("\npolicies that could apply, most promising first:");
    for v in &could {
        if let Some((condition, why)) = &v.failed {
            text.push_str(&format!(
                "\n  {}: fails {condition}: {why} (met: {})",
                v.policy,
                v.passed.join(", ")
            ));
        }
    }
    text
}

/// The policy that covers, from ranked verdicts, or the refusal.
fn decide(
    policies: &[Policy],
    verdicts: Vec<(usize, Verdict)>,
    nobody: impl FnOnce() -> String,
) -> Result<&Policy, String> {
    match verdicts.first() {
        Some((i, v)) if v.covers() => Ok(&policies[*i]),
        _ => {
            let verdicts: Vec<Verdict> = verdicts.into_iter().map(|(_, v)| v).collect();
            Err(refusal_of(&verdicts, nobody))
        }
    }
}

/// The enabled policies that cover reveals of `credential` (in
/// `environment`): when there is one, its password is revealed only under
/// one of them.
pub fn governing_reveals<'a>(
    policies: &'a [Policy],
    credential: &str,
    environment: Option<&str>,
) -> Vec<&'a Policy> {
    policies
        .iter()
        .filter(|p| {
            p.meta.enabled
                && p.covers.reveals
                && (p.credentials.is_empty() || p.credentials.iter().any(|c| c == credential))
                && (p.environments.is_empty()
                    || environment.is_some_and(|e| p.environments.iter().any(|pe| pe == e)))
        })
        .collect()
}

/// The first of the policies governing a credential's reveals that lets
/// `user` reveal it now, or why none does (the closest one's reason).
pub fn covering_reveal<'a, 'm>(
    governing: &[&'a Policy],
    user: impl Into<Member<'m>>,
    credential: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'a Policy, String> {
    let user = user.into();
    let mut closest: Option<String> = None;
    for p in governing {
        if !user.in_list(&p.users) {
            continue;
        }
        match outside_windows(p, now) {
            None => return Ok(p),
            Some(why) => {
                closest.get_or_insert(why);
            }
        }
    }
    Err(closest.unwrap_or_else(|| {
        format!(
            "credential {credential} is revealed only under a policy, and none lists '{}'",
            user.login
        )
    }))
}

/// The first enabled policy that lets `user` request `task` on `devices`
/// at `now`, or the refusal that explains every policy that could apply.
pub fn covering_policy<'a, 'm>(
    policies: &'a [Policy],
    user: impl Into<Member<'m>>,
    task: &Task,
    devices: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'a Policy, String> {
    let user = user.into();
    let verdicts = ranked(policies, |p| judge_task(p, user, task, devices, now));
    decide(policies, verdicts, || {
        format!(
            "no enabled access policy lets '{}' request task '{}'",
            user.login, task.meta.name
        )
    })
}

/// What a session would be: who, on which device, with which credential.
pub struct SessionTarget<'a> {
    pub device: &'a crate::domain::Device,
    pub credential: &'a str,
    /// The account the credential logs in as.
    pub username: &'a str,
}

/// One policy judged against a session.
fn judge_session(
    p: &Policy,
    user: Member<'_>,
    target: &SessionTarget<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Verdict {
    let name = &p.meta.name;
    let device = target.device;
    let scope = Scope {
        what: "sessions",
        covered: p.covers.sessions,
        credential: target.credential,
        environment: &device.environment,
        system: &device.system,
        devices: &[device.meta.name.as_str()],
    };
    let matches = |patterns: &[String], value: &str| {
        patterns.iter().any(|p| crate::text::glob_matches(p, value))
    };
    let mut judge = Judge::new();
    judge_scope(&mut judge, p, user, &scope);
    judge
        .check("product", || {
            (!p.products.is_empty() && !matches(&p.products, &device.product)).then(|| {
                format!(
                    "policy {name} does not cover product '{}' (of device '{}')",
                    device.product, device.meta.name
                )
            })
        })
        .check("tags", || {
            (!p.device_tags.is_empty() && !device.tags.iter().any(|t| p.device_tags.contains(t)))
                .then(|| {
                    format!(
                        "policy {name} covers devices tagged {}, and device '{}' is not",
                        p.device_tags.join(" or "),
                        device.meta.name
                    )
                })
        })
        .check("username", || {
            (!p.usernames.is_empty() && !matches(&p.usernames, target.username)).then(|| {
                format!(
                    "policy {name} does not cover username '{}' (of credential '{}')",
                    target.username, target.credential
                )
            })
        })
        .check("window", || outside_windows(p, now));
    judge.verdict(p)
}

/// The first enabled policy that lets `user` open this session now, or
/// the refusal that explains every policy that could apply.
pub fn covering_session<'a, 'm>(
    policies: &'a [Policy],
    user: impl Into<Member<'m>>,
    target: &SessionTarget<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'a Policy, String> {
    let user = user.into();
    let verdicts = ranked(policies, |p| judge_session(p, user, target, now));
    decide(policies, verdicts, || {
        format!(
            "no enabled access policy lets '{}' open a session on device '{}'",
            user.login, target.device.meta.name
        )
    })
}

/// What a request brings that a policy may require.
pub struct RequestFields<'a> {
    pub reason: Option<&'a str>,
    /// Whether the named reason exists and is enabled.
    pub reason_enabled: bool,
    pub justification: Option<&'a str>,
    pub governance_id: Option<&'a str>,
    pub emergency: bool,
    /// The declared change's code, if any.
    pub change: Option<&'a str>,
}

/// Checks a request's fields against its policy; the refusal names the field.
pub fn check_fields(p: &Policy, f: &RequestFields<'_>) -> Result<(), String> {
    let name = &p.meta.name;
    let blank = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
    if p.requires_justification && blank(f.justification) {
        return Err(format!(
            "policy {name} requires a justification (--justification)"
        ));
    }
    if p.requires_governance_id && blank(f.governance_id) {
        return Err(format!(
            "policy {name} requires a governance id (--governance-id)"
        ));
    }
    if p.requires_reason && blank(f.reason) {
        return Err(format!(
            "policy {name} requires an access reason (--reason)"
        ));
    }
    if let Some(r) = f.reason {
        if !f.reason_enabled {
            return Err(format!("access reason '{r}' does not exist or is disabled"));
        }
    }
    if p.requires_change && blank(f.change) {
        return Err(format!(
            "policy {name} requires the change it is for (--change CODE)"
        ));
    }
    if f.emergency && !p.emergency_access {
        return Err(format!("policy {name} does not allow emergency access"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Meta;

    fn policy() -> Policy {
        Policy {
            meta: Meta::named("prod-web"),
            users: vec!["alice".into()],
            environments: vec!["production".into()],
            systems: vec!["web".into()],
            windows: vec![Window {
                days: vec![1, 2, 3, 4, 5],
                from_minute: 8 * 60,
                to_minute: 18 * 60,
                start_date: None,
                end_date: None,
            }],
            ..Policy::default()
        }
    }

    fn task(env: &str, system: &str) -> Task {
        Task {
            meta: Meta::named("restart"),
            environment: env.into(),
            system: system.into(),
            ..Task::default()
        }
    }

    /// A wall-clock time in the server's zone, as a moment.
    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        use chrono::TimeZone;
        chrono::Local
            .from_local_datetime(&naive(text))
            .earliest()
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn naive(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    // 2026-11-26 is a Thursday.
    const THURSDAY_NOON: &str = "2026-11-26 12:00";

    #[test]
    fn each_failed_condition_is_named() {
        let p = [policy()];
        let t = task("production", "web");
        let now = at(THURSDAY_NOON);
        assert!(covering_policy(&p, "alice", &t, &[], now).is_ok());
        let cases = [
            (
                "bob",
                task("production", "web"),
                now,
                "no enabled access policy lets 'bob'",
            ),
            (
                "alice",
                task("staging", "web"),
                now,
                "does not cover environment 'staging'",
            ),
            (
                "alice",
                task("production", "db"),
                now,
                "does not cover system 'db'",
            ),
            (
                "alice",
                t.clone(),
                at("2026-11-26 19:30"),
                "outside the access window of policy prod-web: Mon–Fri 08:00–18:00",
            ),
            (
                "alice",
                t.clone(),
                at("2026-11-28 12:00"),
                "outside the access window",
            ),
        ];
        for (user, task, when, expected) in cases {
            let err = covering_policy(&p, user, &task, &[], when).unwrap_err();
            assert!(err.contains(expected), "{user}: {err}");
        }
        let mut disabled = policy();
        disabled.meta.enabled = false;
        assert!(covering_policy(&[disabled], "alice", &t, &[], now).is_err());
        let mut scoped = policy();
        scoped.devices = vec!["web-1".into()];
        let err = covering_policy(&[scoped], "alice", &t, &["web-2".into()], now).unwrap_err();
        assert!(err.contains("does not cover device 'web-2'"), "{err}");
    }

    /// alice asks for a production web task on Thursday evening. Three
    /// policies list her; the one that failed only on its window comes
    /// first and gives the headline, the others follow with what they
    /// failed and what they met; a policy that does not list her is not
    /// told to her, though `policy explain` (explain_task) judges it.
    #[test]
    fn a_refusal_explains_every_policy_that_could_apply_closest_first() {
        let mut lab = policy();
        lab.meta.name = "lab-ops".into();
        lab.environments = vec!["lab".into()];
        lab.windows.clear();
        let mut db = policy();
        db.meta.name = "prod-db".into();
        db.systems = vec!["db".into()];
        let web = policy();
        let mut others = policy();
        others.meta.name = "bobs-only".into();
        others.users = vec!["bob".into()];
        let policies = [lab, db, others, web];
        let t = task("production", "web");
        let evening = at("2026-11-26 19:30");
        let err = covering_policy(&policies, "alice", &t, &[], evening).unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("outside the access window of policy prod-web"),
            "{err}"
        );
        assert_eq!(lines[1], "policies that could apply, most promising first:");
        assert!(lines[2].starts_with("  prod-web: fails window: "), "{err}");
        assert!(
            lines[2].ends_with(
                "(met: enabled, user, covers, credential, environment, system, devices)"
            ),
            "{err}"
        );
        assert_eq!(
            lines[3],
            "  prod-db: fails system: policy prod-db does not cover system 'web' (met: enabled, user, covers, credential, environment)"
        );
        assert_eq!(
            lines[4],
            "  lab-ops: fails environment: policy lab-ops does not cover environment 'production' (met: enabled, user, covers, credential)"
        );
        assert_eq!(lines.len(), 5, "bobs-only is not told to alice: {err}");
        // The explainer judges every policy, with the same verdicts.
        let all = explain_task(&policies, "alice", &t, &[], evening);
        let order: Vec<&str> = all.iter().map(|v| v.policy.as_str()).collect();
        assert_eq!(order, ["prod-web", "prod-db", "lab-ops", "bobs-only"]);
        assert_eq!(all[3].failed.as_ref().unwrap().0, "user");
        // Positive control: at noon prod-web covers, and is chosen.
        let noon = at(THURSDAY_NOON);
        let chosen = covering_policy(&policies, "alice", &t, &[], noon).unwrap();
        assert_eq!(chosen.meta.name, "prod-web");
        assert!(explain_task(&policies, "alice", &t, &[], noon)[0].covers());
    }

    #[test]
    fn date_ranges_bound_a_window() {
        let mut w = policy().windows[0].clone();
        w.start_date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1);
        assert!(!window_contains(&w, naive(THURSDAY_NOON)));
        assert!(window_contains(&w, naive("2026-12-01 09:00")));
        assert!(describe_window(&w).contains("from 2026-12-01"));
    }

    #[test]
    fn required_fields_are_named() {
        let mut p = policy();
        p.requires_justification = true;
        p.requires_governance_id = true;
        p.requires_reason = true;
        let mut f = RequestFields {
            reason: None,
            reason_enabled: false,
            justification: Some(" "),
            governance_id: None,
            emergency: false,
            change: None,
        };
        assert!(check_fields(&p, &f).unwrap_err().contains("justification"));
        f.justification = Some("disk full");
        assert!(check_fields(&p, &f).unwrap_err().contains("governance id"));
        f.governance_id = Some("CHG-1");
        assert!(check_fields(&p, &f).unwrap_err().contains("access reason"));
        f.reason = Some("gone");
        assert!(check_fields(&p, &f).unwrap_err().contains("disabled"));
        f.reason_enabled = true;
        assert!(check_fields(&p, &f).is_ok());
        f.emergency = true;
        assert!(check_fields(&p, &f).unwrap_err().contains("emergency"));
    }

    /// A policy covers what it says: one that covers reveals of a
    /// credential does not cover a task in its environment, and governs
    /// that credential's reveals only.
    #[test]
    fn a_reveal_policy_covers_its_credentials_reveals_only() {
        let mut p = policy();
        p.systems.clear();
        p.windows[0].days = vec![1];
        p.covers = crate::domain::Covers {
            tasks: false,
            sessions: false,
            reveals: true,
        };
        p.credentials = vec!["db-root".into()];
        let monday_noon = at("2026-11-30 12:00");
        let policies = [p];
        let err = covering_policy(
            &policies,
            "alice",
            &task("production", "web"),
            &[],
            monday_noon,
        )
        .unwrap_err();
        assert!(err.contains("covers reveals, not tasks"), "{err}");
        let governing = governing_reveals(&policies, "db-root", Some("production"));
        assert_eq!(governing.len(), 1);
        assert!(governing_reveals(&policies, "other", Some("production")).is_empty());
        assert!(governing_reveals(&policies, "db-root", Some("lab")).is_empty());
        // Covered: listed, inside the window.
        assert!(covering_reveal(&governing, "alice", "db-root", monday_noon).is_ok());
        let err =
            covering_reveal(&governing, "alice", "db-root", at("2026-12-01 12:00")).unwrap_err();
        assert!(err.contains("outside the access window"), "{err}");
        let err = covering_reveal(&governing, "bob", "db-root", monday_noon).unwrap_err();
        assert!(err.contains("none lists 'bob'"), "{err}");
    }

    /// Sessions: a policy must cover sessions, the device's environment,
    /// system and name, and the credential; the closest refusal is named.
    #[test]
    fn a_session_is_covered_by_a_policy_that_covers_sessions() {
        let device = crate::domain::Device {
            meta: Meta::named("web-1"),
            environment: "production".into(),
            system: "web".into(),
            ..Default::default()
        };
        let target = SessionTarget {
            device: &device,
            credential: "ops",
            username: "svc-ops",
        };
        let monday_noon = at("2026-11-30 12:00");
        let tasks_only = [policy()];
        let err = covering_session(&tasks_only, "alice", &target, monday_noon).unwrap_err();
        assert!(err.contains("covers tasks, not sessions"), "{err}");
        let mut p = policy();
        p.covers.sessions = true;
        p.credentials = vec!["root".into()];
        let err =
            covering_session(std::slice::from_ref(&p), "alice", &target, monday_noon).unwrap_err();
        assert!(err.contains("credential 'ops'"), "{err}");
        p.credentials = vec!["ops".into()];
        assert!(covering_session(std::slice::from_ref(&p), "alice", &target, monday_noon).is_ok());
        // The reference's criteria: product, device tags, credential username.
        p.products = vec!["MySQL*".into()];
        let err =
            covering_session(std::slice::from_ref(&p), "alice", &target, monday_noon).unwrap_err();
        assert!(err.contains("product ''"), "{err}");
        p.products = vec!["*".into()];
        p.device_tags = vec!["pci".into()];
        let err =
            covering_session(std::slice::from_ref(&p), "alice", &target, monday_noon).unwrap_err();
        assert!(err.contains("devices tagged pci"), "{err}");
        p.device_tags.clear();
        p.usernames = vec!["root".into()];
        let err =
            covering_session(std::slice::from_ref(&p), "alice", &target, monday_noon).unwrap_err();
        assert!(err.contains("username 'svc-ops'"), "{err}");
        p.usernames = vec!["svc-*".into()];
        assert!(covering_session(std::slice::from_ref(&p), "alice", &target, monday_noon).is_ok());
        let err =
            covering_session(std::slice::from_ref(&p), "bob", &target, monday_noon).unwrap_err();
        assert!(err.contains("no enabled access policy lets 'bob'"), "{err}");
    }

    /// A window from 22:00 to 06:00 starts on the day it names and runs
    /// into the next morning: Friday night is Friday's, Saturday morning
    /// too; Saturday night is not.
    #[test]
    fn an_overnight_window_covers_the_night_after_the_day_it_names() {
        let w = Window {
            days: vec![5],
            from_minute: 22 * 60,
            to_minute: 6 * 60,
            start_date: None,
            end_date: None,
        };
        // 2026-11-27 is a Friday.
        assert!(window_contains(&w, naive("2026-11-27 23:30")));
        assert!(window_contains(&w, naive("2026-11-28 05:59")));
        assert!(!window_contains(&w, naive("2026-11-28 06:00")));
        assert!(!window_contains(&w, naive("2026-11-28 23:00")));
        assert!(
            !window_contains(&w, naive("2026-11-27 05:00")),
            "Friday morning is Thursday night's"
        );
        assert!(describe_window(&w).contains("22:00–06:00 the next day"));
    }

    /// A policy's windows are read in its zone: 08:00–18:00 in Berlin is
    /// open at 08:30 Berlin time (07:30 UTC in winter) and closed at 17:30
    /// UTC (18:30 in Berlin); in summer the same window is an hour earlier
    /// in UTC.
    #[test]
    fn windows_are_read_in_the_policys_time_zone() {
        let mut p = policy();
        p.timezone = Some("Europe/Berlin".into());
        let utc = |text: &str| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
                .unwrap()
                .and_utc()
        };
        let t = task("production", "web");
        // Thursday 2026-11-26, CET (UTC+1).
        assert!(covering_policy(
            std::slice::from_ref(&p),
            "alice",
            &t,
            &[],
            utc("2026-11-26 07:30")
        )
        .is_ok());
        let err = covering_policy(
            std::slice::from_ref(&p),
            "alice",
            &t,
            &[],
            utc("2026-11-26 17:30"),
        )
        .unwrap_err();
        assert!(
            err.contains("Europe/Berlin") && err.contains("Thu 18:30"),
            "{err}"
        );
        // Thursday 2026-07-02, CEST (UTC+2): 06:30 UTC is 08:30 there.
        assert!(covering_policy(
            std::slice::from_ref(&p),
            "alice",
            &t,
            &[],
            utc("2026-07-02 06:30")
        )
        .is_ok());
        assert!(covering_policy(
            std::slice::from_ref(&p),
            "alice",
            &t,
            &[],
            utc("2026-07-02 16:30")
        )
        .is_err());
    }
}
