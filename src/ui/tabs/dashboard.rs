//! Dashboard: what this store holds and the state of the audit chain.

use crate::domain::Kind;
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let mut lines = vec![
        Line::from(Span::styled("Records", app.theme.title())),
        Line::from(""),
    ];
    for kind in Kind::ALL {
        let (total, disabled) = app
            .list(kind)
            .map(|l| {
                (
                    l.records.len(),
                    l.records.iter().filter(|r| !r.meta().enabled).count(),
                )
            })
            .unwrap_or((0, 0));
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", kind.plural()), app.theme.text()),
            Span::styled(format!("{total:>5}"), app.theme.title()),
            Span::styled(
                if disabled > 0 {
                    format!("  ({disabled} disabled)")
                } else {
                    String::new()
                },
                app.theme.dim(),
            ),
        ]));
    }
    let day_ago = crate::domain::Timestamp::now().0 - 86_400_000;
    let failed = app
        .history
        .iter()
        .filter(|o| o.state == crate::domain::OpState::Failed && o.created_at.0 >= day_ago)
        .count();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("Now", app.theme.title())));
    lines.push(Line::from(format!(
        "waiting for you   {:>5}",
        app.queue.len()
    )));
    lines.push(Line::from(format!(
        "running, queued   {:>5}",
        app.live_ops.len()
    )));
    lines.push(Line::from(Span::styled(
        format!("failed in 24 h    {failed:>5}"),
        if failed > 0 {
            app.theme.error_style()
        } else {
            app.theme.text()
        },
    )));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!("JIT grants ({})", app.jit.len()),
        app.theme.title(),
    )));
    for g in &app.jit {
        let failing = matches!(g.state, crate::domain::JitState::Failing { .. });
        lines.push(Line::from(Span::styled(
            format!(
                "{} on {} until {}: {}",
                g.credential, g.device, g.expires_at, g.state
            ),
            if failing {
                app.theme.error_style()
            } else {
                app.theme.text()
            },
        )));
    }
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Store ")
                .title_style(app.theme.title()),
        ),
        left,
    );
    let (chain, color) = match &app.audit_state {
        None => ("verifying…".to_string(), app.theme.dim),
        Some(Ok(n)) => (format!("intact, {n} events"), app.theme.ok),
        Some(Err(b)) => (format!("BROKEN: {b}"), app.theme.error),
    };
    let mut right_lines = vec![
        Line::from(Span::styled("Audit chain", app.theme.title())),
        Line::from(Span::styled(chain, app.theme.fg(color))),
        Line::from(""),
        Line::from(Span::styled("Latest events", app.theme.title())),
    ];
    let rows = right.height.saturating_sub(6) as usize;
    for e in app.audit.iter().rev().take(rows) {
        right_lines.push(Line::from(vec![
            Span::styled(format!("{} ", e.time), app.theme.dim()),
            Span::styled(format!("{:<10} ", e.actor), app.theme.text()),
            Span::styled(format!("{} {}", e.action, e.target), app.theme.text()),
        ]));
    }
    frame.render_widget(
        Paragraph::new(right_lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Activity ")
                .title_style(app.theme.title()),
        ),
        right,
    );
}
