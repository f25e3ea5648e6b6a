//! Audit: the newest audit events and the chain's verification state.

use super::visible_table;
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Paragraph, Row};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [state_area, list_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let (text, color) = match (&app.audit_state, &app.audit_refused) {
        (_, Some(why)) => (crate::text::printable(why), app.theme.dim),
        (None, None) => ("verifying the audit chain…".to_string(), app.theme.dim),
        (Some(Ok(n)), None) => (format!("chain verified: {n} events intact"), app.theme.ok),
        (Some(Err(broken)), None) => (format!("CHAIN BROKEN at {broken}"), app.theme.error),
    };
    frame.render_widget(Paragraph::new(text).style(app.theme.fg(color)), state_area);
    let events = app.audit_view();
    let selected = app.audit.selected.min(events.len().saturating_sub(1));
    let title = if app.audit.filter.is_empty() {
        format!(" Audit log (newest {}) ", app.audit.events.len())
    } else {
        format!(
            " Audit log: {} of the newest {} match '{}' ",
            events.len(),
            app.audit.events.len(),
            crate::text::printable(&app.audit.filter)
        )
    };
    // Column widths for the pane: at 80 columns the time loses its year
    // and the columns narrow; cells end in `…` where they are cut, never
    // mid-number silently.
    let wide = list_area.width >= 110;
    let widths: [usize; 5] = if wide {
        [7, 16, 12, 18, 24]
    } else {
        [6, 11, 8, 16, 16]
    };
    let details_width =
        (list_area.width as usize).saturating_sub(2 + widths.iter().sum::<usize>() + widths.len());
    let fit = crate::text::fit;
    let constraints: Vec<Constraint> = widths
        .iter()
        .map(|w| Constraint::Length(*w as u16))
        .chain([Constraint::Min(10)])
        .collect();
    visible_table(
        frame,
        list_area,
        app,
        title,
        Row::new(vec![
            "Seq".to_string(),
            format!("Time {}", crate::domain::zone::view_zone_abbreviation()),
            "Actor".into(),
            "Action".into(),
            "Target".into(),
            "Details".into(),
        ]),
        &constraints,
        events.len(),
        selected,
        |i| {
            let e = events[i];
            Row::new(vec![
                e.seq.to_string(),
                if wide { e.time.short() } else { e.time.brief() },
                fit(&crate::text::printable(&e.actor), widths[2]),
                fit(&crate::text::printable(&e.action), widths[3]),
                fit(&crate::text::printable(&e.target), widths[4]),
                fit(&crate::text::printable(&e.details), details_width),
            ])
        },
    );
}

/// Everything about one event, for its detail view: each field whole, its
/// hash and the previous one, whether the hash matches its fields, and
/// where it stands in the chain as last verified.
pub fn event_detail(app: &App, e: &crate::store::AuditEvent) -> Vec<String> {
    use crate::text::printable;
    let mut lines = vec![
        format!(
            "time      {} ({})",
            e.time,
            e.time
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        format!("actor     {}", printable(&e.actor)),
        format!("action    {}", printable(&e.action)),
        format!("target    {}", printable(&e.target)),
        "details".to_string(),
    ];
    lines.extend(
        crate::text::printable_lines(&e.details)
            .lines()
            .map(|l| format!("  {l}")),
    );
    lines.push(String::new());
    lines.push(format!("position  event {} of the chain", e.seq));
    lines.push(format!("hash      {}", e.hash_hex()));
    lines.push(format!("previous  {}", hex::encode(e.prev_hash)));
    lines.push(if e.compute_hash() == e.hash {
        "the hash matches the event's fields and the previous hash".to_string()
    } else {
        "THE HASH DOES NOT MATCH the event's fields: it was changed after it was written"
            .to_string()
    });
    // The previous event, when it is loaded, must carry the hash this one names.
    if let Some(prev) = app.audit.events.iter().find(|p| p.seq + 1 == e.seq) {
        lines.push(if prev.hash == e.prev_hash {
            format!("linked: event {} carries the previous hash", prev.seq)
        } else {
            format!("NOT LINKED: event {} carries another hash", prev.seq)
        });
    }
    lines.push(match (&app.audit_state, &app.audit_refused) {
        (Some(Ok(n)), _) if e.seq <= *n => {
            format!("the whole chain verified through event {n}, this one included")
        }
        (Some(Ok(n)), _) => format!("written after the last verification (through event {n})"),
        (Some(Err(broken)), _) => format!("the chain is broken at {broken}"),
        (None, _) => "the chain is being verified".to_string(),
    });
    lines.push(String::new());
    lines.push("Esc closes".to_string());
    lines
}
