//! A change freeze: a stretch of time during which no request and no
//! schedule runs in its environments, except emergency requests.

use super::Meta;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// From `from` to `to`, wall-clock times in `timezone`, as the team that
/// wrote it reads them: every jump host and every viewer judges the same
/// instants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Freeze {
    pub meta: Meta,
    /// Why: the end of the quarter, a release weekend.
    pub reason: String,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    /// The IANA zone `from` and `to` are read in.
    pub timezone: String,
    /// The environments it holds; none: every environment.
    pub environments: Vec<String>,
}

/// How a wall-clock time becomes an instant in a zone.
#[derive(Clone, Copy)]
enum Edge {
    /// A freeze's start: in a repeated hour, its first occurrence.
    Start,
    /// A freeze's end: in a repeated hour, its second.
    End,
}

fn instant(tz: Tz, at: NaiveDateTime, edge: Edge) -> Option<DateTime<Utc>> {
    let local = tz.from_local_datetime(&at);
    let pick = match edge {
        Edge::Start => local.earliest(),
        Edge::End => local.latest(),
    };
    pick.map(|t| t.with_timezone(&Utc))
}

impl Freeze {
    /// The zone its times are read in (UTC if the name no longer parses;
    /// validation refuses such a name when the record is saved).
    pub fn zone(&self) -> Tz {
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// The instant it starts. A time the clocks skip (spring forward)
    /// cannot be saved; if the zone's rules changed since, it starts an
    /// hour later.
    pub fn starts(&self) -> DateTime<Utc> {
        self.edge(self.from, Edge::Start)
    }

    /// The instant it ends.
    pub fn ends(&self) -> DateTime<Utc> {
        self.edge(self.to, Edge::End)
    }

    fn edge(&self, at: NaiveDateTime, edge: Edge) -> DateTime<Utc> {
        let tz = self.zone();
        instant(tz, at, edge)
            .or_else(|| instant(tz, at + chrono::Duration::hours(1), edge))
            .unwrap_or_else(|| at.and_utc())
    }

    /// Whether it holds `environment`.
    pub fn holds(&self, environment: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment)
    }

    /// Whether it is in force at `at` (enabled, started, not ended).
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.meta.enabled && self.starts() <= at && at < self.ends()
    }

    /// Its end as people read it: `2027-01-04 08:00 Europe/Berlin`.
    pub fn end_text(&self) -> String {
        format!("{} {}", self.to.format("%Y-%m-%d %H:%M"), self.timezone)
    }

    /// Its start as people read it.
    pub fn start_text(&self) -> String {
        format!("{} {}", self.from.format("%Y-%m-%d %H:%M"), self.timezone)
    }

    /// What is wrong with it, naming the field.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let Ok(tz) = self.timezone.parse::<Tz>() else {
            return Some((
                "timezone",
                format!(
                    "'{}' is not a time zone name like Europe/Berlin, America/New_York or UTC",
                    self.timezone
                ),
            ));
        };
        for (field, at, edge) in [("from", self.from, Edge::Start), ("to", self.to, Edge::End)] {
            if instant(tz, at, edge).is_none() {
                return Some((
                    field,
                    format!(
                        "{} does not happen in {} (the clocks skip that hour)",
                        at.format("%Y-%m-%d %H:%M"),
                        self.timezone
                    ),
                ));
            }
        }
        if self.ends() <= self.starts() {
            return Some(("to", "must be later than `from`".into()));
        }
        None
    }
}

/// Parses a freeze's `from` or `to` as written: `2026-12-20 18:00` (or
/// with seconds, or a `T`).
pub fn parse_wall_clock(text: &str) -> Result<NaiveDateTime, String> {
    let t = text.trim();
    [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| format!("'{text}' is not a date and time like 2026-12-20 18:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freeze(from: &str, to: &str, tz: &str) -> Freeze {
        Freeze {
            meta: Meta {
                enabled: true,
                ..Meta::named("year-end")
            },
            reason: "end of year".into(),
            from: parse_wall_clock(from).unwrap(),
            to: parse_wall_clock(to).unwrap(),
            timezone: tz.into(),
            environments: vec!["prod".into()],
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_freeze_is_read_in_its_own_zone_the_same_for_every_server() {
        // 18:00 in Berlin in December is 17:00 UTC.
        let f = freeze("2026-12-20 18:00", "2027-01-04 08:00", "Europe/Berlin");
        assert!(f.problem().is_none());
        assert!(!f.in_force(utc("2026-12-20T16:59:59Z")));
        assert!(f.in_force(utc("2026-12-20T17:00:00Z")));
        assert!(f.in_force(utc("2027-01-04T06:59:59Z")));
        assert!(!f.in_force(utc("2027-01-04T07:00:00Z")));
        assert_eq!(f.end_text(), "2027-01-04 08:00 Europe/Berlin");
    }

    #[test]
    fn a_disabled_freeze_holds_nothing_and_one_without_environments_holds_all() {
        let mut f = freeze("2026-12-20 18:00", "2027-01-04 08:00", "UTC");
        assert!(f.holds("prod") && !f.holds("lab"));
        f.environments.clear();
        assert!(f.holds("lab"));
        f.meta.enabled = false;
        assert!(!f.in_force(utc("2026-12-25T12:00:00Z")));
    }

    #[test]
    fn a_skipped_hour_is_refused_and_a_repeated_one_covers_both_occurrences() {
        // Berlin skips 02:00–03:00 on 2027-03-28.
        let f = freeze("2027-03-28 02:30", "2027-03-29 00:00", "Europe/Berlin");
        assert_eq!(f.problem().unwrap().0, "from");
        // New York repeats 01:00–02:00 on 2026-11-01: a freeze ending at
        // 01:30 ends at the second 01:30 (06:30 UTC, not 05:30).
        let f = freeze("2026-10-31 12:00", "2026-11-01 01:30", "America/New_York");
        assert!(f.problem().is_none());
        assert!(f.in_force(utc("2026-11-01T06:29:00Z")));
        assert!(!f.in_force(utc("2026-11-01T06:30:00Z")));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut f = freeze("2026-12-20 18:00", "2026-12-20 08:00", "UTC");
        assert_eq!(f.problem().unwrap().0, "to");
        f.timezone = "Mars/Base".into();
        assert_eq!(f.problem().unwrap().0, "timezone");
        assert!(parse_wall_clock("next friday").is_err());
        assert!(parse_wall_clock("2026-12-20").is_ok());
    }
}
