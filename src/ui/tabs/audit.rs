//! Audit: the newest audit events and the chain's verification state.

use super::visible_table;
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Paragraph, Row};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [state_area, list_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let (text, color) = match &app.audit_state {
        None => ("verifying the audit chain…".to_string(), app.theme.dim),
        Some(Ok(n)) => (format!("chain verified: {n} events intact"), app.theme.ok),
        Some(Err(broken)) => (format!("CHAIN BROKEN at {broken}"), app.theme.error),
    };
    frame.render_widget(Paragraph::new(text).style(app.theme.fg(color)), state_area);
    visible_table(
        frame,
        list_area,
        app,
        format!(" Audit log (newest {}) ", app.audit.len()),
        Row::new(vec!["Seq", "Time", "Actor", "Action", "Target", "Details"]),
        &[
            Constraint::Length(7),
            Constraint::Length(19),
            Constraint::Length(12),
            Constraint::Length(18),
            Constraint::Length(24),
            Constraint::Min(10),
        ],
        app.audit.len(),
        app.audit_selected,
        |i| {
            let e = &app.audit[i];
            Row::new(vec![
                e.seq.to_string(),
                e.time.to_string(),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.details.clone(),
            ])
        },
    );
}
