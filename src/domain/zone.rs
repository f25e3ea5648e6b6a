//! The time zone a person reads times in. Every time Gatehouse shows
//! names its zone: a client shows times in its viewer's zone (the
//! `timezone` key of their configuration, else `TZ`, else the machine's),
//! and a server writes its messages in its own.

use super::Timestamp;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::OnceLock;

static VIEW: OnceLock<Tz> = OnceLock::new();

static MACHINE: OnceLock<Tz> = OnceLock::new();

/// The machine's zone as an IANA name: `TZ` when it names one (a leading
/// `:` is dropped), else the system's (`/etc/localtime`), else UTC.
/// Read once per process: policies ask it at every decision.
pub fn machine_zone() -> Tz {
    *MACHINE.get_or_init(read_machine_zone)
}

fn read_machine_zone() -> Tz {
    let named = std::env::var("TZ")
        .ok()
        .and_then(|tz| tz.trim_start_matches(':').parse::<Tz>().ok());
    named
        .or_else(|| {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|z| z.parse().ok())
        })
        .unwrap_or(Tz::UTC)
}

/// Sets the zone this process shows times in (once, at start; later
/// calls keep the first).
pub fn set_view_zone(tz: Tz) {
    let _ = VIEW.set(tz);
}

/// The zone this process shows times in.
pub fn view_zone() -> Tz {
    *VIEW.get_or_init(machine_zone)
}

/// Parses an IANA zone name; the error says what was expected.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("'{name}' is not a time zone name like Europe/Berlin, America/New_York or UTC")
    })
}

impl Timestamp {
    /// The time in `tz`.
    pub fn in_zone(self, tz: Tz) -> DateTime<Tz> {
        self.to_utc().with_timezone(&tz)
    }

    /// Date and minute in the viewer's zone, without the zone
    /// (`2026-12-01 10:30`), for columns whose header names it.
    pub fn short(self) -> String {
        self.in_zone(view_zone())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// Month, day and minute in the viewer's zone (`12-01 10:30`).
    pub fn brief(self) -> String {
        self.in_zone(view_zone()).format("%m-%d %H:%M").to_string()
    }
}

impl Timestamp {
    /// Month, day, minute and zone in the viewer's zone (`12-01 10:30 CET`).
    pub fn brief_zoned(self) -> String {
        self.in_zone(view_zone())
            .format("%m-%d %H:%M %Z")
            .to_string()
    }
}

/// The abbreviation of the viewer's zone now (`CET`, `EST`, `UTC`), for a
/// column header.
pub fn view_zone_abbreviation() -> String {
    Utc::now()
        .with_timezone(&view_zone())
        .format("%Z")
        .to_string()
}

/// A time with its zone, in the viewer's zone: `2026-12-01 10:30:00 CET`.
pub fn show(t: Timestamp) -> String {
    t.in_zone(view_zone())
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_shown_in_the_zone_asked_with_its_abbreviation() {
        // 2026-07-01 12:00 UTC is 14:00 summer time in Berlin, 08:00 in New York.
        let t = Timestamp(1_782_907_200_000);
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            t.in_zone(berlin).format("%H:%M %Z").to_string(),
            "14:00 CEST"
        );
        assert_eq!(t.in_zone(ny).format("%H:%M %Z").to_string(), "08:00 EDT");
    }

    #[test]
    fn a_zone_name_that_is_not_one_is_refused_saying_what_is_expected() {
        assert!(parse_zone("Europe/Berlin").is_ok());
        let e = parse_zone("Mars/Olympus").unwrap_err();
        assert!(e.contains("'Mars/Olympus' is not a time zone name"), "{e}");
    }
}
