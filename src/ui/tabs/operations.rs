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
        OpState::Skipped => app.theme.dim,
    })
}

/// The requests on the Operations screen, newest first, each once.
fn live_requests(app: &App) -> Vec<crate::domain::Id> {
    let mut ids: Vec<crate::domain::Id> = Vec::new();
    for o in app.live_view() {
        if !ids.contains(&o.request) {
            ids.push(o.request);
        }
    }
    ids
}

/// `m:ss` (or `h:mm:ss`).
fn clock(ms: i64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// One line per request: a bar of its devices, then how many are done,
/// failed, running and queued of its total, and the time it has taken.
fn progress_line<'a>(app: &App, p: &crate::ui::screens::Progress, width: usize) -> Line<'a> {
    let bar_len = p.total.min(12);
    let part = |n: usize| {
        if p.total == 0 {
            0
        } else {
            (n * bar_len).div_ceil(p.total).min(bar_len)
        }
    };
    let (done, failed) = (part(p.done), part(p.failed));
    let rest = bar_len.saturating_sub(done + failed);
    let head = crate::text::fit(
        &format!("request {} {}", p.request, crate::text::printable(&p.task)),
        width.saturating_sub(bar_len + 48).max(12),
    );
    let mut counts = format!(
        " {}/{} done · {} failed · {} running",
        p.done, p.total, p.failed, p.running
    );
    if p.queued > 0 {
        counts.push_str(&format!(" · {} queued", p.queued));
    }
    counts.push_str(&format!(" · {}", clock(p.elapsed_ms(app.now()))));
    if p.ended() {
        counts.push_str(" · ended");
    }
    Line::from(vec![
        Span::styled(format!("{head} "), app.theme.text()),
        Span::styled("█".repeat(done), app.theme.ok_style()),
        Span::styled("█".repeat(failed), app.theme.error_style()),
        Span::styled("░".repeat(rest), app.theme.dim()),
        Span::styled(
            counts,
            if p.failed > 0 {
                app.theme.error_style()
            } else {
                app.theme.dim()
            },
        ),
    ])
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let requests = if app.tab == Tab::Operations {
        live_requests(app)
    } else {
        Vec::new()
    };
    // At most three requests' progress lines; the rest are counted.
    let progress_rows = match requests.len() {
        0 => 0,
        n if n <= 3 => n as u16,
        _ => 4,
    };
    let [list_area, progress_area, detail_area, log_area] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Length(progress_rows),
        Constraint::Length(2),
        Constraint::Min(3),
    ])
    .areas(area);
    let live = app.live_view();
    let (ops, selected, title): (Vec<&Operation>, usize, String) = if app.tab == Tab::Operations {
        let ended = live.iter().filter(|o| o.state.is_final()).count();
        let mut title = if ended > 0 {
            format!(
                " Running and queued ({}) · ended lately ({ended}) ",
                live.len() - ended
            )
        } else {
            format!(" Running and queued ({}) ", live.len())
        };
        if !app.operations.filter.is_empty() {
            title = format!(
                "{}matching '{}' (/ to change) ",
                title,
                crate::text::printable(&app.operations.filter)
            );
        }
        (live, app.operations.selected, title)
    } else {
        (
            app.history.ops.iter().collect(),
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
    // Columns that fit the width; a long name ends in `…`, never cut
    // mid-word by the table. Narrow, Tries goes and the names shrink.
    let narrow = list_area.width < 100;
    let (task_w, device_w, by_w) = if narrow { (13, 11, 8) } else { (20, 16, 10) };
    let fit = |text: &str, width: usize| {
        Span::raw(crate::text::fit(&crate::text::printable(text), width))
    };
    let mut header: Vec<String> = ["Id", "Task", "Device", "State", "Exit"]
        .map(String::from)
        .to_vec();
    let mut widths = vec![
        Constraint::Length(8),
        Constraint::Length(task_w),
        Constraint::Length(device_w),
        Constraint::Length(11),
        Constraint::Length(if narrow { 4 } else { 5 }),
    ];
    if !narrow {
        header.push("Tries".into());
        widths.push(Constraint::Length(5));
    }
    header.push("By".into());
    widths.push(Constraint::Length(by_w));
    header.push(format!(
        "Started {}",
        crate::domain::zone::view_zone_abbreviation()
    ));
    widths.push(Constraint::Min(16));
    visible_table(
        frame,
        list_area,
        app,
        title,
        Row::new(header),
        &widths,
        ops.len(),
        selected,
        |i| {
            let o = ops[i];
            // On Operations, an ended one is dimmed until it ages out.
            let ended = app.tab == Tab::Operations && o.state.is_final();
            let mut cells = vec![
                fit(&o.id.to_string(), 8),
                fit(&o.task, task_w as usize),
                fit(&o.device, device_w as usize),
                Span::styled(o.state.as_str(), state_style(app, o.state)),
                Span::raw(
                    o.exit_status
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
            ];
            if !narrow {
                cells.push(Span::raw(format!("{}/{}", o.attempts, o.max_attempts)));
            }
            cells.push(fit(
                &if o.superuser_bypass {
                    format!("{}*", o.requested_by)
                } else {
                    o.requested_by.clone()
                },
                by_w as usize,
            ));
            cells.push(Span::raw(
                o.started_at
                    .map(|t| t.short())
                    .unwrap_or_else(|| "-".into()),
            ));
            let row = Row::new(cells);
            if ended {
                row.style(app.theme.dim())
            } else {
                row
            }
        },
    );
    if progress_rows > 0 {
        let width = progress_area.width as usize;
        let mut lines: Vec<Line> = requests
            .iter()
            .take(3)
            .map(|r| progress_line(app, &app.progress(*r), width))
            .collect();
        if requests.len() > 3 {
            lines.push(Line::from(Span::styled(
                format!("and {} more requests", requests.len() - 3),
                app.theme.dim(),
            )));
        }
        frame.render_widget(Paragraph::new(lines), progress_area);
    }
    let detail = match ops.get(selected).copied() {
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
    let width = log_area.width.saturating_sub(2) as usize;
    let needle = app.log.needle.as_str();
    let mut lines: Vec<Line> = Vec::with_capacity(height);
    for line in app.log.visible(height) {
        // Lines that hold the search's text stand out.
        let hit = !needle.is_empty() && line.text.contains(needle);
        let mut shown = log_line(app, line);
        if hit {
            shown = shown.patch_style(app.theme.selected());
        }
        if app.log.wrap {
            lines.extend(columns(&shown, 0, usize::MAX).chunks(width.max(1)));
        } else {
            lines.push(columns(&shown, app.log.hscroll, width).line());
        }
    }
    // Wrapped, the pane's last lines are the ones kept in view.
    if lines.len() > height {
        lines.drain(..lines.len() - height);
    }
    let mut log_title = String::from(if app.log.follow {
        " Output (following)"
    } else {
        " Output (f to follow)"
    });
    if app.log.wrap {
        log_title.push_str(" · wrapped");
    } else if app.log.hscroll > 0 {
        log_title.push_str(&format!(" · from column {}", app.log.hscroll + 1));
    }
    log_title.push(' ');
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

/// A line's characters with their styles, by display column.
struct Columns {
    cells: Vec<(char, Style)>,
    style: Style,
}

/// The part of `line` from display column `skip` on, at most `width`
/// columns of it (a wide character never straddles an edge).
fn columns(line: &Line, skip: usize, width: usize) -> Columns {
    use unicode_width::UnicodeWidthChar;
    let mut cells = Vec::new();
    let mut at = 0usize;
    let mut used = 0usize;
    'spans: for span in &line.spans {
        let style = line.style.patch(span.style);
        for c in span.content.chars() {
            let w = if c == '\t' { 1 } else { c.width().unwrap_or(0) };
            let c = if c == '\t' { ' ' } else { c };
            if at >= skip {
                if used + w > width {
                    break 'spans;
                }
                cells.push((c, style));
                used += w;
            }
            at += w;
        }
    }
    Columns {
        cells,
        style: line.style,
    }
}

impl Columns {
    /// As one line, each run of one style a span.
    fn line(&self) -> Line<'static> {
        Self::spans(&self.cells).style(self.style)
    }

    /// Cut into rows of `width` columns, as a terminal wraps.
    fn chunks(&self, width: usize) -> Vec<Line<'static>> {
        use unicode_width::UnicodeWidthChar;
        if self.cells.is_empty() {
            return vec![Line::default()];
        }
        let mut rows = Vec::new();
        let mut start = 0;
        let mut used = 0;
        for (i, (c, _)) in self.cells.iter().enumerate() {
            let w = c.width().unwrap_or(0);
            if used + w > width && i > start {
                rows.push(Self::spans(&self.cells[start..i]).style(self.style));
                start = i;
                used = 0;
            }
            used += w;
        }
        rows.push(Self::spans(&self.cells[start..]).style(self.style));
        rows
    }

    fn spans(cells: &[(char, Style)]) -> Line<'static> {
        let mut spans: Vec<Span<'static>> = Vec::new();
        let mut run = String::new();
        let mut style = None;
        for (c, s) in cells {
            if style != Some(*s) {
                if let Some(prev) = style {
                    spans.push(Span::styled(std::mem::take(&mut run), prev));
                }
                style = Some(*s);
            }
            run.push(*c);
        }
        if let Some(prev) = style {
            spans.push(Span::styled(run, prev));
        }
        Line::from(spans)
    }
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
