//! Operations (queued and running) and History (everything, newest first):
//! a list of operations over the selected one's live log.

use super::visible_table;
use crate::domain::{OpState, Operation, Stream};
use crate::ui::{App, Tab};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row};
use ratatui::Frame;

fn state_style(app: &App, state: OpState) -> Style {
    app.theme.fg(match state {
        OpState::Succeeded => app.theme.ok,
        OpState::Failed | OpState::Interrupted => app.theme.error,
        OpState::Running | OpState::Retrying => app.theme.accent,
        OpState::Queued | OpState::Cancelled => app.theme.warn,
    })
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [list_area, detail_area, log_area] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Length(2),
        Constraint::Min(3),
    ])
    .areas(area);
    let (ops, selected, title): (&[Operation], usize, String) = if app.tab == Tab::Operations {
        (
            &app.live_ops,
            app.live_selected,
            format!(" Running and queued ({}) ", app.live_ops.len()),
        )
    } else {
        (
            &app.history,
            app.history_selected,
            format!(" History, newest first ({}) ", app.history.len()),
        )
    };
    visible_table(
        frame,
        list_area,
        app,
        title,
        Row::new(vec![
            "Id", "Task", "Device", "State", "Exit", "Tries", "By", "Started",
        ]),
        &[
            Constraint::Length(8),
            Constraint::Length(20),
            Constraint::Length(16),
            Constraint::Length(11),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Min(19),
        ],
        ops.len(),
        selected,
        |i| {
            let o = &ops[i];
            Row::new(vec![
                Span::raw(o.id.to_string()),
                Span::raw(o.task.clone()),
                Span::raw(o.device.clone()),
                Span::styled(o.state.as_str(), state_style(app, o.state)),
                Span::raw(
                    o.exit_status
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                Span::raw(format!("{}/{}", o.attempts, o.max_attempts)),
                Span::raw(if o.superuser_bypass {
                    format!("{}*", o.requested_by)
                } else {
                    o.requested_by.clone()
                }),
                Span::raw(
                    o.started_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
            ])
        },
    );
    let detail = match ops.get(selected) {
        Some(o) => vec![
            Line::from(vec![
                Span::styled(format!("{} ", o.state), state_style(app, o.state)),
                Span::styled(
                    format!(
                        "template {} rev {} · {} · trigger {}{} · {} bytes{}",
                        o.template,
                        o.template_revision,
                        o.executor.as_str(),
                        o.trigger,
                        if o.superuser_bypass {
                            " · Superuser, no policy"
                        } else {
                            ""
                        },
                        o.output_bytes,
                        if o.output_truncated {
                            " (truncated)"
                        } else {
                            ""
                        }
                    ),
                    app.theme.dim(),
                ),
            ]),
            Line::from(Span::styled(
                o.error.clone().unwrap_or_default(),
                app.theme.error_style(),
            )),
        ],
        None => vec![Line::from(Span::styled(
            if app.tab == Tab::Operations {
                "nothing is running or queued; `gatehouse request TASK` starts a run"
            } else {
                "no operation has run yet"
            },
            app.theme.dim(),
        ))],
    };
    frame.render_widget(Paragraph::new(detail), detail_area);
    let height = log_area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .log
        .visible(height)
        .map(|(stream, text)| match stream {
            Stream::System => Line::from(Span::styled(format!("* {text}"), app.theme.dim())),
            Stream::Stderr => Line::from(Span::styled(text.clone(), app.theme.warn_style())),
            Stream::Stdout => Line::from(Span::styled(text.clone(), app.theme.text())),
        })
        .collect();
    let log_title = format!(
        " Output{} ",
        if app.log.follow {
            " (following)"
        } else {
            " (f to follow)"
        }
    );
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(log_title)
                .title_style(app.theme.title()),
        ),
        log_area,
    );
}
