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
            app.operations.selected,
            format!(" Running and queued ({}) ", app.live_ops.len()),
        )
    } else {
        (
            &app.history.ops,
            app.history.selected,
            if app.history.filter_text.is_empty() {
                format!(" History, newest first ({}) ", app.history.ops.len())
            } else {
                // A filter in force is always said.
                format!(
                    " History matching '{}' ({}; / to change) ",
                    crate::text::printable(&app.history.filter_text),
                    app.history.ops.len()
                )
            },
        )
    };
    visible_table(
        frame,
        list_area,
        app,
        title,
        Row::new(
            ["Id", "Task", "Device", "State", "Exit", "Tries", "By"]
                .map(String::from)
                .into_iter()
                .chain([format!(
                    "Started {}",
                    crate::domain::zone::view_zone_abbreviation()
                )]),
        ),
        &[
            Constraint::Length(8),
            Constraint::Length(20),
            Constraint::Length(16),
            Constraint::Length(11),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Min(16),
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
                        .map(|t| t.short())
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
                        // While it runs, what the pane has received so far.
                        if !o.state.is_final() && app.log.op == Some(o.id) {
                            app.log.bytes.max(o.output_bytes)
                        } else {
                            o.output_bytes
                        },
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
    let needle = app.log.needle.as_str();
    let lines: Vec<Line> = app
        .log
        .visible(height)
        .map(|line| {
            // Lines that hold the search's text stand out.
            let hit = !needle.is_empty() && line.text.contains(needle);
            let mut shown = log_line(app, line);
            if hit {
                shown = shown.patch_style(app.theme.selected());
            }
            shown
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

/// History's detail of one operation: its request and approvals, timing,
/// exit status; the log pane below keeps its whole stored output.
pub fn draw_detail(
    app: &App,
    frame: &mut Frame,
    body: Rect,
    op: &crate::domain::Operation,
    request: Option<&crate::domain::ExecutionRequest>,
) {
    use crate::text::printable;
    use ratatui::widgets::{Clear, Wrap};
    // Over the list and its summary line; the log pane stays in view below.
    let [list, summary, _] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Length(2),
        Constraint::Min(3),
    ])
    .areas(body);
    let mut area = list.union(summary);
    area.height = area.height.max(16.min(body.height.saturating_sub(4)));
    let time = |t: Option<crate::domain::Timestamp>| {
        t.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
    };
    let took = match (op.started_at, op.finished_at) {
        (Some(a), Some(b)) => format!("{:.1} s", (b.0 - a.0) as f64 / 1000.0),
        _ => "-".into(),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", op.state), state_style(app, op.state)),
            Span::styled(
                format!(
                    "{} on {} · requested by {}{}",
                    op.task,
                    op.device,
                    op.requested_by,
                    if op.superuser_bypass {
                        " (Superuser, no policy)"
                    } else {
                        ""
                    }
                ),
                app.theme.text(),
            ),
        ]),
        Line::from(format!(
            "exit status {} · attempts {}/{} · trigger {}",
            op.exit_status
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            op.attempts,
            op.max_attempts,
            op.trigger
        )),
        Line::from(format!(
            "created {} · started {} · finished {} · took {took}",
            op.created_at,
            time(op.started_at),
            time(op.finished_at)
        )),
        Line::from(format!(
            "template {} rev {} ({}) · credential {} · variables {}",
            op.template,
            op.template_revision,
            op.executor.as_str(),
            op.credential,
            op.variables
                .iter()
                .map(|(k, v)| format!("{k}={}", printable(v)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    ];
    if let Some(e) = &op.error {
        lines.push(Line::from(Span::styled(
            printable(e),
            app.theme.error_style(),
        )));
    }
    lines.push(Line::from(""));
    match request {
        None => lines.push(Line::from(Span::styled(
            match &app.history.detail_note {
                Some(note) => printable(note),
                None => format!("request {}: loading…", op.request),
            },
            app.theme.dim(),
        ))),
        Some(r) => {
            lines.push(Line::from(Span::styled(
                format!(
                    "Request {} · {} · policy {}",
                    r.id,
                    r.state,
                    r.policy.as_deref().unwrap_or("none")
                ),
                app.theme.title(),
            )));
            lines.push(Line::from(format!(
                "reason {} · justification {} · governance id {}",
                r.reason
                    .as_deref()
                    .map(printable)
                    .unwrap_or_else(|| "-".into()),
                r.justification
                    .as_deref()
                    .map(printable)
                    .unwrap_or_else(|| "-".into()),
                r.governance_id
                    .as_deref()
                    .map(printable)
                    .unwrap_or_else(|| "-".into()),
            )));
            lines.push(Line::from(format!(
                "window {} → {}",
                r.window_start, r.window_end
            )));
            if r.decisions.is_empty() {
                lines.push(Line::from(Span::styled(
                    "no approvals (none needed, or emergency)",
                    app.theme.dim(),
                )));
            }
            for d in &r.decisions {
                lines.push(Line::from(Span::styled(
                    format!(
                        "level {} {} by {} at {}: {}",
                        d.level,
                        if d.approved { "approved" } else { "rejected" },
                        d.approver,
                        d.time,
                        printable(&d.comment)
                    ),
                    if d.approved {
                        app.theme.ok_style()
                    } else {
                        app.theme.error_style()
                    },
                )));
            }
        }
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" Operation {} ", op.id))
                .title_style(app.theme.title())
                .title_bottom(Line::from(Span::styled(
                    " PgUp/PgDn scroll the output · Esc close ",
                    app.theme.dim(),
                ))),
        ),
        area,
    );
}

/// One line of the log pane: Gatehouse's own lines dim and marked, the
/// remote's in its own colours, stderr in the warning colour and marked
/// `!` (so that it shows without colour too).
fn log_line<'a>(app: &App, line: &'a crate::ui::oplog::LogLine) -> Line<'a> {
    match line.stream {
        Stream::System => Line::from(Span::styled(format!("* {}", line.text), app.theme.dim())),
        Stream::Debug => Line::from(Span::styled(format!("· {}", line.text), app.theme.dim())),
        stream => {
            let base = if stream == Stream::Stderr {
                app.theme.warn_style()
            } else {
                app.theme.text()
            };
            let mut spans = Vec::new();
            if stream == Stream::Stderr {
                spans.push(Span::styled("! ", app.theme.warn_style()));
            }
            // The remote program's own colours, on top of the pane's.
            spans.extend(
                line.runs()
                    .into_iter()
                    .map(|(text, style)| Span::styled(text.to_string(), base.patch(style))),
            );
            Line::from(spans)
        }
    }
}
