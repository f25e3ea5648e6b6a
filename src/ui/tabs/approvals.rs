//! Approvals: requests this user may decide now, oldest first, and what
//! each would run (masks shown as names, never values).

use super::visible_table;
use crate::domain::{RequestState, Timestamp};
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Wrap};
use ratatui::Frame;

fn age(now: Timestamp, since: Timestamp) -> String {
    let secs = (now.0 - since.0).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The filter in force, as the titles say it (nothing when none).
fn filtered(app: &App) -> String {
    if app.approvals.filter.is_empty() {
        String::new()
    } else {
        format!(
            "matching '{}' (/ to change) ",
            crate::text::printable(&app.approvals.filter)
        )
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(5)]).areas(area);
    if app.approvals.show_mine {
        return draw_mine(app, frame, list_area, detail_area);
    }
    visible_table(
        frame,
        list_area,
        app,
        format!(
            "{}{}",
            match app.approvals.marked.len() {
                0 => format!(" Waiting for you ({}) ", app.queue.len()),
                n => format!(
                    " Waiting for you ({}), {n} marked: a/r decides them together ",
                    app.queue.len()
                ),
            },
            filtered(app)
        ),
        Row::new(vec![
            "Id",
            "Task",
            "Requester",
            "Level",
            "Age",
            "Devices",
            "Justification",
        ]),
        &[
            Constraint::Length(9),
            Constraint::Length(18),
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Length(5),
            Constraint::Length(18),
            Constraint::Min(10),
        ],
        app.queue.len(),
        app.approvals.selected,
        |i| {
            let r = &app.queue[i];
            let level = match r.state {
                RequestState::Pending { level } => Span::raw(format!("level {level}")),
                _ => Span::styled("EMERGENCY", app.theme.error_style()),
            };
            // A marked request carries a ✓ before its id.
            let id = if app.approvals.marked.contains(&r.id) {
                Span::styled(format!("✓{}", r.id), app.theme.selected())
            } else {
                Span::raw(format!(" {}", r.id))
            };
            Row::new(vec![
                id,
                Span::raw(crate::text::printable(&r.what())),
                Span::raw(r.requester.clone()),
                level,
                Span::raw(age(app.now(), r.created_at)),
                Span::raw(r.devices.join(",")),
                Span::raw(crate::text::printable(
                    r.justification.as_deref().unwrap_or("-"),
                )),
            ])
        },
    );
    let Some(r) = app.queue.get(app.approvals.selected) else {
        frame.render_widget(
            Paragraph::new("No requests are waiting for you.")
                .style(app.theme.dim())
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(" Request ")
                        .title_style(app.theme.title()),
                ),
            detail_area,
        );
        return;
    };
    let mut lines = vec![
        Line::from(format!(
            "{} by {} under policy {} · window {} → {}",
            r.state,
            r.requester,
            r.policy.as_deref().unwrap_or("-"),
            r.window_start,
            r.window_end
        )),
        Line::from(format!(
            "devices {} · variables {} · reason {} · governance id {}",
            r.devices.join(", "),
            r.variables
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.reason.as_deref().unwrap_or("-"),
            r.governance_id.as_deref().unwrap_or("-")
        )),
    ];
    for d in &r.decisions {
        lines.push(Line::from(Span::styled(
            format!(
                "level {} {} by {}{}",
                d.level,
                if d.approved { "approved" } else { "rejected" },
                d.approver,
                if d.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", d.comment)
                }
            ),
            app.theme.ok_style(),
        )));
    }
    // What will run: the pinned template revision's content, masks as names.
    lines.push(Line::from(""));
    match app.approvals.views.get(&r.id) {
        _ if r.reveal().is_some() => lines.push(Line::from(Span::styled(
            format!(
                "{}: approving lets {} see the password once before {}; nothing runs",
                r.subject(),
                r.requester,
                r.window_end
            ),
            app.theme.title(),
        ))),
        _ if r.session().is_some() => {
            lines.push(Line::from(Span::styled(
                format!(
                    "{}: approving lets {} open it once before {}, recorded; it ends then",
                    r.subject(),
                    r.requester,
                    r.window_end
                ),
                app.theme.title(),
            )));
            if let Some(change) = &r.change {
                lines.push(Line::from(format!("change {}; plan:", change.code)));
                lines.extend(
                    change
                        .plan
                        .iter()
                        .map(|p| Line::from(format!("  {}", crate::text::printable(p)))),
                );
            }
        }
        Some(v) => view_lines(app, v, &mut lines),
        None => lines.push(Line::from(Span::styled(
            "loading what it runs…",
            app.theme.dim(),
        ))),
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Request ")
                .title_style(app.theme.title()),
        ),
        detail_area,
    );
}

/// What a request runs: credential, template, variables (defaults
/// marked), the text each device gets (secrets as masks' names) and the
/// chained tasks.
fn view_lines(app: &App, v: &crate::engine::api::RequestView, lines: &mut Vec<Line<'static>>) {
    use crate::text::printable;
    lines.push(Line::from(vec![
        Span::styled(
            format!(
                "template {} rev {} ({})",
                printable(&v.template),
                v.template_revision,
                v.executor
            ),
            app.theme.title(),
        ),
        Span::raw(format!(
            " · credential {} (as {})",
            printable(&v.credential),
            printable(&v.username)
        )),
    ]));
    if let Some(now) = v.template_now {
        lines.push(Line::from(Span::styled(
            format!(
                "the template is now at rev {now}: this request pinned rev {} and will be voided, not run with the change",
                v.template_revision
            ),
            app.theme.warn_style(),
        )));
    }
    if !v.variables.is_empty() {
        lines.push(Line::from(
            v.variables
                .iter()
                .map(|(name, value, default)| {
                    format!(
                        "{name}={}{}",
                        printable(value),
                        if *default { " (default)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("  "),
        ));
    }
    for run in &v.runs {
        lines.push(Line::from(Span::styled(
            format!("on {}:", printable(&run.devices.join(", "))),
            app.theme.title(),
        )));
        lines.extend(
            run.text
                .lines()
                .map(|l| Line::from(format!("  {}", printable(l)))),
        );
    }
    for run in &v.dry_runs {
        lines.push(Line::from(Span::styled(run.title(), app.theme.title())));
        lines.extend(run.output.iter().map(|l| Line::from(format!("  {l}"))));
    }
    for c in &v.children {
        lines.push(Line::from(Span::styled(
            format!(
                "then, where it succeeded: task {} (template {} rev {})",
                printable(&c.task),
                printable(&c.template),
                c.template_revision
            ),
            app.theme.title(),
        )));
        lines.extend(
            c.content
                .lines()
                .map(|l| Line::from(format!("  {}", printable(l)))),
        );
    }
}

/// The caller's own requests, newest first: where each stands, and why
/// (the comment of a rejection, the reason of a void).
fn draw_mine(app: &App, frame: &mut Frame, list_area: Rect, detail_area: Rect) {
    use crate::text::printable;
    let mine = &app.approvals.mine;
    // Borders, the fixed columns and the spaces between them.
    let why_width = (list_area.width as usize).saturating_sub(2 + 9 + 18 + 20 + 5 + 4);
    visible_table(
        frame,
        list_area,
        app,
        format!(
            " Your requests ({}), newest first {}",
            mine.len(),
            filtered(app)
        ),
        Row::new(vec!["Id", "Task", "State", "Age", "Why"]),
        &[
            Constraint::Length(9),
            Constraint::Length(18),
            Constraint::Length(20),
            Constraint::Length(5),
            Constraint::Min(10),
        ],
        mine.len(),
        app.approvals.mine_selected,
        |i| {
            let r = &mine[i];
            let (state, style) = match r.state {
                RequestState::Rejected => (r.state.to_string(), app.theme.error_style()),
                RequestState::Void => (r.state.to_string(), app.theme.warn_style()),
                RequestState::Approved => (r.state.to_string(), app.theme.ok_style()),
                _ => (r.state.to_string(), app.theme.text()),
            };
            Row::new(vec![
                Span::raw(r.id.to_string()),
                Span::raw(printable(&r.what())),
                Span::styled(state, style),
                Span::raw(age(app.now(), r.created_at)),
                Span::raw(crate::text::fit(&printable(&why_of(r)), why_width)),
            ])
        },
    );
    let lines: Vec<Line> = match mine.get(app.approvals.mine_selected) {
        None => vec![Line::from(Span::styled(
            "You have made no requests.",
            app.theme.dim(),
        ))],
        Some(r) => {
            let mut lines = vec![
                Line::from(format!(
                    "{} · {} · policy {} · window {} → {}",
                    printable(&r.what()),
                    r.state,
                    r.policy.as_deref().unwrap_or("-"),
                    r.window_start,
                    r.window_end
                )),
                Line::from(format!(
                    "devices {} · justification {}",
                    r.devices.join(", "),
                    printable(r.justification.as_deref().unwrap_or("-"))
                )),
            ];
            for d in &r.decisions {
                lines.push(Line::from(Span::styled(
                    format!(
                        "level {} {} by {} at {}{}",
                        d.level,
                        if d.approved { "approved" } else { "rejected" },
                        d.approver,
                        d.time,
                        if d.comment.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", printable(&d.comment))
                        }
                    ),
                    if d.approved {
                        app.theme.ok_style()
                    } else {
                        app.theme.error_style()
                    },
                )));
            }
            if let Some(why) = &r.void_reason {
                lines.push(Line::from(Span::styled(
                    format!("void: {}", printable(why)),
                    app.theme.warn_style(),
                )));
            }
            if !r.operations.is_empty() {
                lines.push(Line::from(format!(
                    "operations {} (History shows them)",
                    r.operations
                        .iter()
                        .map(|o| o.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            lines
        }
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Your request ")
                .title_style(app.theme.title()),
        ),
        detail_area,
    );
}

/// Why a request stands where it does, in a few words.
fn why_of(r: &crate::domain::ExecutionRequest) -> String {
    match (&r.state, r.decisions.last(), &r.void_reason) {
        (RequestState::Void, _, Some(why)) => why.clone(),
        (_, Some(d), _) if !d.approved => format!("{}: {}", d.approver, d.comment),
        (_, Some(d), _) if !d.comment.is_empty() => format!("{}: {}", d.approver, d.comment),
        _ => "-".into(),
    }
}
