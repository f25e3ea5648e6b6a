//! RFC 5424 syslog messages for audit events. The structured data carries
//! the event's place in the chain (sequence number, hash, previous hash),
//! and the message is the event as one JSON object, the same line
//! `audit export` writes.

use crate::store::AuditEvent;

/// Our structured-data id; 32473 is the private enterprise number RFC 5612
/// sets aside for documentation and examples.
pub const SD_ID: &str = "gatehouse@32473";

/// Syslog facilities by name (RFC 5424 table 1), for the configuration.
pub const FACILITIES: [(&str, u8); 12] = [
    ("auth", 4),
    ("authpriv", 10),
    ("daemon", 3),
    ("user", 1),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

pub fn facility(name: &str) -> Option<u8> {
    FACILITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, code)| *code)
}

const ALERT: u8 = 1;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;

/// Break-glass (an emergency run, or one flagged at its review) is an
/// alert a SIEM rule can page on; refusals and failures are warnings;
/// everything else is a notice.
fn severity(event: &AuditEvent) -> u8 {
    if event.action == "request.emergency"
        || (event.action == "request.review" && event.details.starts_with("flagged"))
    {
        return ALERT;
    }
    let bad = ["refused", "reject", "void", "failed", "interrupted"];
    let failed = event.action == "operation.finish" && !event.details.starts_with("succeeded");
    if failed || bad.iter().any(|b| event.action.contains(b)) {
        WARNING
    } else {
        NOTICE
    }
}

/// The host name, as RFC 5424 allows it (printable ASCII, at most 255), or "-".
pub fn hostname() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let clean = header_field(&name, 255);
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// A header field: printable US-ASCII without spaces, cut to `max`.
fn header_field(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect()
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped, control characters dropped.
fn param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One event as an RFC 5424 message (without transport framing).
pub fn format(event: &AuditEvent, facility: u8, hostname: &str, pid: u32) -> String {
    let pri = u16::from(facility) * 8 + u16::from(severity(event));
    let time = event
        .time
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let msgid = header_field(&event.action, 32);
    format!(
        "<{pri}>1 {time} {hostname} gatehouse {pid} {msgid} [{SD_ID} seq=\"{}\" hash=\"{}\" prev=\"{}\" actor=\"{}\" target=\"{}\"] {}",
        event.seq,
        event.hash_hex(),
        hex::encode(event.prev_hash),
        param_value(&event.actor),
        param_value(&event.target),
        event.to_json(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn event(action: &str, details: &str, target: &str) -> AuditEvent {
        let mut e = AuditEvent {
            seq: 7,
            time: Timestamp(1_700_000_000_000),
            actor: "alice".into(),
            action: action.into(),
            target: target.into(),
            details: details.into(),
            prev_hash: [1; 32],
            hash: [0; 32],
        };
        e.hash = e.compute_hash();
        e
    }

    #[test]
    fn a_message_has_every_rfc5424_part() {
        let e = event("request.approve", "level 1", "request 3");
        let m = format(&e, 10, "jump1", 42);
        let pri = 10 * 8 + 5;
        assert!(m.starts_with(&format!("<{pri}>1 2023-11-14T22:13:20.000000Z jump1 gatehouse 42 request.approve [gatehouse@32473 seq=\"7\" hash=\"{}\"", e.hash_hex())), "{m}");
        let json: serde_json::Value =
            serde_json::from_str(&m[m.find("] {").unwrap() + 2..]).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["hash"], e.hash_hex());
    }

    #[test]
    fn failures_are_warnings_and_param_values_are_escaped() {
        let m = format(
            &event(
                "operation.finish",
                "failed, exit status 1",
                "a\"b]c\\d\u{1b}",
            ),
            4,
            "h",
            1,
        );
        assert!(m.starts_with(&format!("<{}>1 ", 4 * 8 + 4)), "{m}");
        assert!(m.contains(r#"target="a\"b\]c\\d""#), "{m}");
        assert!(!m.contains('\u{1b}'));
        let ok = format(
            &event("operation.finish", "succeeded, exit status 0", "t"),
            4,
            "h",
            1,
        );
        assert!(ok.starts_with(&format!("<{}>1 ", 4 * 8 + 5)), "{ok}");
    }

    #[test]
    fn break_glass_is_an_alert_a_siem_can_page_on() {
        let pri = |action: &str, details: &str| {
            let m = format(&event(action, details, "request 9 (task t)"), 4, "h", 1);
            m[1..m.find('>').unwrap()].parse::<u16>().unwrap() % 8
        };
        assert_eq!(pri("request.emergency", "policy p; emergency"), 1);
        assert_eq!(
            pri("request.review", "flagged for follow-up the emergency run"),
            1
        );
        assert_eq!(pri("request.review", "accepted the emergency run"), 5);
        assert_eq!(pri("request.create", "policy p"), 5);
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        assert_eq!(header_field("a b\u{e9}c", 32), "a_b_c");
        assert_eq!(header_field(&"x".repeat(40), 32).len(), 32);
    }
}
