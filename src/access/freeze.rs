//! Change freezes: whether one holds a run's environments at a moment,
//! and what a refusal says. Pure; the engine asks before a request is
//! filed, before an approved run starts and before a schedule fires.

use crate::domain::Freeze;
use chrono::{DateTime, Utc};

/// The freeze in force at `at` over any of `environments`, if one is.
pub fn freeze_over<'a>(
    freezes: &'a [Freeze],
    environments: &[&str],
    at: DateTime<Utc>,
) -> Option<&'a Freeze> {
    freezes
        .iter()
        .filter(|f| f.in_force(at))
        .find(|f| environments.iter().any(|e| f.holds(e)))
}

/// Why nothing but an emergency request runs now: the freeze, what it
/// holds and when it ends.
pub fn refusal(freeze: &Freeze, environments: &[&str]) -> String {
    let held: Vec<&str> = environments
        .iter()
        .copied()
        .filter(|e| freeze.holds(e))
        .collect();
    format!(
        "freeze '{}' holds {} until {}{}: only emergency requests run",
        freeze.meta.name,
        match held.as_slice() {
            [one] => format!("environment '{one}'"),
            many => format!("environments {}", many.join(", ")),
        },
        freeze.end_text(),
        if freeze.reason.trim().is_empty() {
            String::new()
        } else {
            format!(" ({})", crate::text::printable(freeze.reason.trim()))
        },
    )
}

/// Freezes in force now or starting later, soonest first (the
/// Dashboard's list).
pub fn current_and_coming(freezes: &[Freeze], now: DateTime<Utc>) -> Vec<&Freeze> {
    let mut list: Vec<&Freeze> = freezes
        .iter()
        .filter(|f| f.meta.enabled && f.ends() > now)
        .collect();
    list.sort_by_key(|f| f.starts());
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{parse_wall_clock, Meta};

    fn freeze(name: &str, from: &str, to: &str, envs: &[&str]) -> Freeze {
        Freeze {
            meta: Meta {
                enabled: true,
                ..Meta::named(name)
            },
            reason: "release weekend".into(),
            from: parse_wall_clock(from).unwrap(),
            to: parse_wall_clock(to).unwrap(),
            timezone: "UTC".into(),
            environments: envs.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_freeze_holds_only_its_environments_while_in_force() {
        let fs = [freeze(
            "rel",
            "2026-12-05 00:00",
            "2026-12-07 00:00",
            &["prod"],
        )];
        let inside = at("2026-12-06T12:00:00Z");
        assert_eq!(
            freeze_over(&fs, &["lab", "prod"], inside).map(|f| f.meta.name.as_str()),
            Some("rel")
        );
        assert!(freeze_over(&fs, &["lab"], inside).is_none());
        assert!(freeze_over(&fs, &["prod"], at("2026-12-07T00:00:00Z")).is_none());
        let why = refusal(&fs[0], &["lab", "prod"]);
        assert_eq!(
            why,
            "freeze 'rel' holds environment 'prod' until 2026-12-07 00:00 UTC (release weekend): only emergency requests run"
        );
    }

    #[test]
    fn the_dashboard_lists_current_then_coming_freezes_and_not_ended_ones() {
        let fs = [
            freeze("later", "2026-12-20 00:00", "2026-12-21 00:00", &[]),
            freeze("over", "2026-11-01 00:00", "2026-11-02 00:00", &[]),
            freeze("now", "2026-12-01 00:00", "2026-12-02 00:00", &[]),
        ];
        let names: Vec<&str> = current_and_coming(&fs, at("2026-12-01T12:00:00Z"))
            .iter()
            .map(|f| f.meta.name.as_str())
            .collect();
        assert_eq!(names, ["now", "later"]);
    }
}
