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
        &[
            Constraint::Length(7),
            Constraint::Length(16),
            Constraint::Length(12),
            Constraint::Length(18),
            Constraint::Length(24),
            Constraint::Min(10),
        ],
        events.len(),
        selected,
        |i| {
            let e = events[i];
            Row::new(vec![
                e.seq.to_string(),
                e.time.short(),
                crate::text::printable(&e.actor),
                crate::text::printable(&e.action),
                crate::text::printable(&e.target),
                crate::text::printable(&e.details),
            ])
        },
    );
}
