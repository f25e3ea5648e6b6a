//! Times and durations as people type them, shared by the CLI flags and
//! the TUI's request form. Errors say what was expected.

use super::Timestamp;

/// Splits "30m" into (30, "m").
fn number_and_unit(text: &str) -> Option<(i64, &str)> {
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(at);
    number.parse().ok().map(|n| (n, unit))
}

/// A duration: `90s`, `30m` (minutes when no unit), `2h`, `1d`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let (n, unit) = number_and_unit(text.trim())
        .ok_or_else(|| format!("'{text}' is not a duration like 30m, 2h or 1d"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" | "" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{text}': the unit must be s, m, h or d")),
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// A start time: RFC 3339 (`2026-11-26T18:00:00Z`), or `+30s`, `+5m`, `+2h` from `now`.
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('+') {
        let (n, unit) = number_and_unit(rest)
            .ok_or_else(|| format!("'{text}': expected +N followed by s, m or h"))?;
        let millis = match unit {
            "s" | "" => n * 1000,
            "m" => n * 60_000,
            "h" => n * 3_600_000,
            _ => return Err(format!("'{text}': the unit must be s, m or h")),
        };
        return Ok(Timestamp(now.0 + millis));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Timestamp(t.timestamp_millis()))
        .map_err(|_| format!("'{text}' is not a time: use RFC 3339 (2026-11-26T18:00:00Z) or +5m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("15"), Ok(900_000));
        assert!(parse_duration_ms("2w").unwrap_err().contains("unit"));
        assert!(parse_duration_ms("soon")
            .unwrap_err()
            .contains("not a duration"));
        let now = Timestamp(1_000_000);
        assert_eq!(parse_time("+5m", now), Ok(Timestamp(1_300_000)));
        assert_eq!(
            parse_time("1970-01-01T00:00:10Z", now),
            Ok(Timestamp(10_000))
        );
        assert!(parse_time("tomorrow", now)
            .unwrap_err()
            .contains("RFC 3339"));
    }
}
