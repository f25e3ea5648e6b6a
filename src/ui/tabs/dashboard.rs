//! Dashboard: what this store holds and the state of the audit chain. Its
//! counts are the engine's (`Command::Metrics`), over what this user may
//! see, never derived from another screen's page.

use crate::domain::Kind;
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

/// What a Dashboard line counts, which Enter opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// Requests waiting for this user's decision: Approvals.
    Waiting,
    /// Emergency runs to review: Approvals.
    Review,
    /// Running and queued operations: Operations.
    Running,
    /// Failed operations: History filtered to them.
    Failed,
    /// Credentials' password states: Admin's credentials.
    Passwords,
    /// Sessions: History's sessions view.
    Sessions,
    /// Freezes: Admin's freezes.
    Freezes,
    /// One kind of record: Tasks, or Admin on that kind.
    Records(Kind),
    /// The audit chain: Audit.
    Audit,
}

/// The Dashboard's items as they are shown, top to bottom, left pane first.
pub fn items(app: &App) -> Vec<Item> {
    let metrics = app.dashboard.metrics.as_ref();
    let mut items = vec![Item::Waiting];
    if metrics.is_some_and(|m| m.awaiting_review > 0) {
        items.push(Item::Review);
    }
    items.extend([Item::Running, Item::Failed]);
    if metrics.is_some_and(|m| !m.passwords.is_empty()) {
        items.push(Item::Passwords);
    }
    if metrics.is_some_and(|m| m.open_sessions > 0 || !m.deviations.is_empty()) {
        items.push(Item::Sessions);
    }
    if !current_freezes(app).is_empty() {
        items.push(Item::Freezes);
    }
    items.extend(Kind::ALL.iter().map(|k| Item::Records(*k)));
    items.push(Item::Audit);
    items
}

/// The item under the Dashboard's cursor.
pub fn selected(app: &App) -> Option<Item> {
    let items = items(app);
    items
        .get(app.dashboard.selected.min(items.len().saturating_sub(1)))
        .copied()
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let chosen = selected(app);
    // The selected item's line stands out.
    let mark = |item: Item, line: Line<'static>| -> Line<'static> {
        if chosen == Some(item) {
            line.patch_style(app.theme.selected())
        } else {
            line
        }
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let mut lines = vec![Line::from(Span::styled("Records", app.theme.title()))];
    for kind in Kind::ALL {
        // Kinds this user may not list are counted as unknown, not as none.
        let refused = app.list(kind).is_some_and(|l| l.refused.is_some());
        let (total, disabled) = app
            .list(kind)
            .map(|l| {
                (
                    l.records.len(),
                    l.records.iter().filter(|r| !r.meta().enabled).count(),
                )
            })
            .unwrap_or((0, 0));
        lines.push(mark(
            Item::Records(kind),
            Line::from(vec![
                Span::styled(format!("{:<14}", kind.plural()), app.theme.text()),
                if refused {
                    Span::styled(format!("{:>5}", "-"), app.theme.dim())
                } else {
                    Span::styled(format!("{total:>5}"), app.theme.title())
                },
                Span::styled(
                    if disabled > 0 {
                        format!("  ({disabled} disabled)")
                    } else {
                        String::new()
                    },
                    app.theme.dim(),
                ),
            ]),
        ));
    }
    let metrics = app.dashboard.metrics.as_ref();
    // A count the engine has not sent yet shows as an ellipsis.
    let count = |n: Option<u64>| match n {
        Some(n) => format!("{n:>5}"),
        None => format!("{:>5}", "…"),
    };
    let waiting = metrics.map(|m| m.waiting);
    let failed = metrics.map(|m| m.failed);
    let failures: &[crate::domain::Operation] =
        metrics.map(|m| m.recent_failures.as_slice()).unwrap_or(&[]);
    let mut now_lines = vec![Line::from(Span::styled("Now", app.theme.title()))];
    now_lines.push(mark(
        Item::Waiting,
        Line::from(vec![
            Span::styled("waiting for you   ", app.theme.text()),
            Span::styled(
                count(waiting),
                if waiting.unwrap_or(0) == 0 {
                    app.theme.text()
                } else {
                    app.theme.warn_style()
                },
            ),
        ]),
    ));
    for r in app.queue.iter().take(3) {
        now_lines.push(Line::from(Span::styled(
            format!(
                "  #{} {} by {}",
                r.id,
                crate::text::printable(&r.what()),
                crate::text::printable(&r.requester)
            ),
            app.theme.dim(),
        )));
    }
    // Emergency runs waiting for this approver's review; overdue in red.
    let awaiting = metrics.map(|m| m.awaiting_review).unwrap_or(0);
    if awaiting > 0 {
        let overdue = metrics.map(|m| m.overdue_reviews.as_slice()).unwrap_or(&[]);
        now_lines.push(mark(
            Item::Review,
            Line::from(vec![
                Span::styled("to review (emerg.)", app.theme.text()),
                Span::styled(
                    format!("{awaiting:>5}"),
                    if overdue.is_empty() {
                        app.theme.warn_style()
                    } else {
                        app.theme.error_style()
                    },
                ),
            ]),
        ));
        for o in overdue.iter().take(3) {
            now_lines.push(Line::from(Span::styled(
                format!("  OVERDUE {}", crate::text::printable(o)),
                app.theme.error_style(),
            )));
        }
    }
    now_lines.push(mark(
        Item::Running,
        Line::from(format!(
            "running, queued   {}",
            count(metrics.map(|m| m.running + m.queued))
        )),
    ));
    for o in app.live_ops.iter().filter(|o| !o.state.is_final()).take(3) {
        now_lines.push(Line::from(Span::styled(
            format!("  #{} {} on {} ({})", o.id, o.task, o.device, o.state),
            app.theme.dim(),
        )));
    }
    now_lines.push(mark(
        Item::Failed,
        Line::from(Span::styled(
            format!("failed in 24 h    {}", count(failed)),
            if failed.unwrap_or(0) == 0 {
                app.theme.text()
            } else {
                app.theme.error_style()
            },
        )),
    ));
    for o in failures.iter().take(3) {
        now_lines.push(Line::from(Span::styled(
            format!(
                "  #{} {} on {}: {}",
                o.id,
                o.task,
                o.device,
                crate::text::printable(o.error.as_deref().unwrap_or("failed"))
            ),
            app.theme.error_style(),
        )));
    }
    // Passwords, where the user may see credentials.
    if let Some(m) = metrics.filter(|m| !m.passwords.is_empty()) {
        let alerts = !m.password_alerts.is_empty();
        now_lines.push(mark(
            Item::Passwords,
            Line::from(vec![
                Span::styled("passwords         ", app.theme.text()),
                Span::styled(
                    m.passwords
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(word, n)| format!("{n} {word}"))
                        .collect::<Vec<_>>()
                        .join(" · "),
                    if alerts {
                        app.theme.error_style()
                    } else {
                        app.theme.text()
                    },
                ),
            ]),
        ));
        for a in m.password_alerts.iter().take(3) {
            now_lines.push(Line::from(Span::styled(
                format!("  {}", crate::text::printable(a)),
                app.theme.error_style(),
            )));
        }
    }
    // Sessions: open now, and the day's deviations from declared changes.
    if let Some(m) = metrics.filter(|m| m.open_sessions > 0 || !m.deviations.is_empty()) {
        now_lines.push(mark(
            Item::Sessions,
            Line::from(vec![
                Span::styled("sessions          ", app.theme.text()),
                Span::styled(
                    format!(
                        "{} open · {} with deviations today",
                        m.open_sessions,
                        m.deviations.len()
                    ),
                    if m.deviations.is_empty() {
                        app.theme.text()
                    } else {
                        app.theme.error_style()
                    },
                ),
            ]),
        ));
        for d in m.deviations.iter().take(3) {
            now_lines.push(Line::from(Span::styled(
                format!("  {}", crate::text::printable(d)),
                app.theme.error_style(),
            )));
        }
    }
    freeze_lines(
        app,
        &mut now_lines,
        left.width.saturating_sub(2) as usize,
        chosen == Some(Item::Freezes),
    );
    now_lines.push(Line::from(""));
    now_lines.push(Line::from(Span::styled(
        format!("JIT grants ({})", app.jit.len()),
        app.theme.title(),
    )));
    for lease in &app.jit {
        let g = &lease.grant;
        let failing = matches!(g.state, crate::domain::JitState::Failing { .. });
        let style = if failing {
            app.theme.error_style()
        } else {
            app.theme.text()
        };
        let width = left.width.saturating_sub(2) as usize;
        now_lines.push(Line::from(Span::styled(
            crate::text::fit(
                &format!("  {} on {}: {}", g.credential, g.device, g.state),
                width,
            ),
            style,
        )));
        // When it ends, and whether the privilege was used.
        let left_secs = (g.expires_at.0 - app.now().0).max(0) / 1000;
        now_lines.push(Line::from(Span::styled(
            format!(
                "    until {} ({}m left), {}",
                g.expires_at.brief_zoned(),
                left_secs / 60,
                match lease.uses.len() {
                    0 => "unused".to_string(),
                    n => format!("used by {n} op(s)"),
                }
            ),
            style,
        )));
    }
    now_lines.push(Line::from(""));
    now_lines.extend(lines);
    // A line wider than the pane ends in `…` rather than mid-word.
    let width = left.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = now_lines
        .into_iter()
        .map(|line| match line.spans.as_slice() {
            [one] if line.width() > width => Line::from(Span::styled(
                crate::text::fit(&one.content, width),
                one.style,
            )),
            _ => line,
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Overview ")
                .title_style(app.theme.title()),
        ),
        left,
    );
    let (chain, color) = match (&app.audit_state, &app.audit_refused) {
        (_, Some(_)) => ("not yours to see (view-audit)".to_string(), app.theme.dim),
        (None, None) => ("verifying…".to_string(), app.theme.dim),
        (Some(Ok(n)), None) => (format!("intact, {n} events"), app.theme.ok),
        (Some(Err(b)), None) => (format!("BROKEN: {b}"), app.theme.error),
    };
    let [chart_area, right] =
        Layout::vertical([Constraint::Length(8), Constraint::Min(3)]).areas(right);
    draw_executions(app, frame, chart_area);
    let mut right_lines = vec![
        mark(
            Item::Audit,
            Line::from(Span::styled("Audit chain", app.theme.title())),
        ),
        Line::from(Span::styled(chain, app.theme.fg(color))),
        Line::from(""),
    ];
    right_lines.extend(server_lines(app, right.width.saturating_sub(2) as usize));
    right_lines.extend([Line::from(Span::styled(
        format!(
            "Latest events ({})",
            crate::domain::zone::view_zone_abbreviation()
        ),
        app.theme.title(),
    ))]);
    let rows = (right.height as usize).saturating_sub(right_lines.len() + 2);
    // Time (12) and actor (11) first; what happened gets the rest.
    let rest = (right.width.saturating_sub(2) as usize).saturating_sub(23);
    for e in app.audit.events.iter().rev().take(rows) {
        right_lines.push(Line::from(vec![
            Span::styled(format!("{} ", e.time.brief()), app.theme.dim()),
            Span::styled(
                format!(
                    "{:<10} ",
                    crate::text::fit(&crate::text::printable(&e.actor), 10)
                ),
                app.theme.text(),
            ),
            Span::styled(
                crate::text::fit(
                    &crate::text::printable(&format!("{} {}", e.action, e.target)),
                    rest,
                ),
                app.theme.text(),
            ),
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

/// Operations started in each of the last 24 hours, oldest first, as the
/// engine counted them (none until it has).
pub fn executions_per_hour(app: &App) -> Vec<u64> {
    app.dashboard
        .metrics
        .as_ref()
        .map(|m| m.per_hour.clone())
        .unwrap_or_else(|| vec![0; 24])
}

fn draw_executions(app: &App, frame: &mut Frame, area: Rect) {
    use ratatui::widgets::Sparkline;
    let hours = executions_per_hour(app);
    let total: u64 = hours.iter().sum();
    let peak = hours.iter().copied().max().unwrap_or(0);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(
            " Executions per hour, last 24 h: {total} (peak {peak}) "
        ))
        .title_style(app.theme.title())
        .title_bottom(Line::from(Span::styled(
            " 24 h ago … now ",
            app.theme.dim(),
        )));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // One bar per hour, as wide as the space allows.
    let width = (inner.width / 24).max(1);
    let data: Vec<u64> = hours
        .iter()
        .flat_map(|h| std::iter::repeat_n(*h, width as usize))
        .collect();
    frame.render_widget(
        Sparkline::default().data(&data).style(app.theme.title()),
        inner,
    );
}

/// The freezes in force now (marked) and those to come, each in the zone
/// it was written in.
fn freeze_lines(app: &App, lines: &mut Vec<Line<'static>>, width: usize, selected: bool) {
    let shown = current_freezes(app);
    if shown.is_empty() {
        return;
    }
    let now = app.now().to_utc();
    lines.push(Line::from(""));
    let head = Line::from(Span::styled(
        format!("Freezes ({})", shown.len()),
        app.theme.title(),
    ));
    lines.push(if selected {
        head.patch_style(app.theme.selected())
    } else {
        head
    });
    for f in shown.iter().take(3) {
        let name = crate::text::printable(&f.meta.name);
        let envs = match f.environments.as_slice() {
            [] => "every environment".to_string(),
            list if list.join(", ").chars().count() + name.chars().count() + 9 <= width => {
                list.join(", ")
            }
            list => format!("{} environments", list.len()),
        };
        let in_force = f.in_force(now);
        let style = if in_force {
            app.theme.warn_style()
        } else {
            app.theme.text()
        };
        lines.push(Line::from(Span::styled(
            format!("  {}{name}: {envs}", if in_force { "NOW " } else { "" }),
            style,
        )));
        // Month, day and minute in the zone it was written in, named.
        let (word, at) = if in_force {
            ("until", f.to)
        } else {
            ("from", f.from)
        };
        lines.push(Line::from(Span::styled(
            format!("    {word} {} {}", at.format("%m-%d %H:%M"), f.timezone),
            style,
        )));
    }
}

/// The enabled freezes in force now or to come, soonest first.
fn current_freezes(app: &App) -> Vec<crate::domain::Freeze> {
    let freezes: Vec<crate::domain::Freeze> = app
        .list(Kind::Freeze)
        .map(|l| {
            l.records
                .iter()
                .filter_map(|r| match r {
                    crate::domain::Record::Freeze(f) => Some(f.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    crate::access::freeze::current_and_coming(&freezes, app.now().to_utc())
        .into_iter()
        .cloned()
        .collect()
}

/// The servers of a shared store, for a Superuser: how many are up, and
/// each by host with the operations it holds (silent ones in red). Nothing
/// for a store of its own, or for others.
fn server_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let Some(c) = app.dashboard.cluster.as_ref().filter(|c| c.shared) else {
        return Vec::new();
    };
    let up = c.servers.iter().filter(|s| s.alive).count();
    let mut lines = vec![Line::from(Span::styled(
        format!("Servers ({up} of {} up; * this one)", c.servers.len()),
        app.theme.title(),
    ))];
    for s in c.servers.iter().take(4) {
        let quiet = (app.now().0 - s.renewed_at.0).max(0) / 1000;
        let text = format!(
            "  {}{} · {} op(s) · {}",
            crate::text::printable(&s.host),
            if s.this_server { "*" } else { "" },
            s.operations,
            if s.alive {
                "up".to_string()
            } else {
                format!("silent {quiet}s")
            }
        );
        lines.push(Line::from(Span::styled(
            crate::text::fit(&text, width),
            if s.alive {
                app.theme.text()
            } else {
                app.theme.error_style()
            },
        )));
    }
    lines.push(Line::from(""));
    lines
}
