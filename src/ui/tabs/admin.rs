//! Admin: every record kind as a sub-tab, each a live list from the engine.

use super::visible_table;
use crate::domain::Kind;
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Tabs};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [kinds_area, list_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let labels: Vec<String> = Kind::ALL
        .iter()
        .map(|k| {
            let n = app.list(*k).map(|l| l.records.len()).unwrap_or(0);
            format!("{} ({n})", k.plural())
        })
        .collect();
    // As many kinds as fit, always the selected one: `‹`/`›` say more
    // lie to the left or right.
    let widths: Vec<usize> = labels.iter().map(|l| l.chars().count() + 3).collect();
    let (start, end) = shown_range(&widths, app.admin.kind, kinds_area.width as usize);
    let mut titles: Vec<Line> = labels[start..end]
        .iter()
        .map(|l| Line::from(l.clone()))
        .collect();
    if start > 0 {
        titles.insert(0, Line::from("‹"));
    }
    if end < labels.len() {
        titles.push(Line::from("›"));
    }
    let selected = app.admin.kind - start + usize::from(start > 0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .style(app.theme.dim())
            .highlight_style(app.theme.selected()),
        kinds_area,
    );
    let kind = app.admin_kind();
    let Some(list) = app.list(kind).filter(|l| l.loaded) else {
        frame.render_widget(
            Paragraph::new(format!("loading {}…", kind.plural())).style(app.theme.dim()),
            list_area,
        );
        return;
    };
    if let Some(reason) = &list.refused {
        frame.render_widget(
            Paragraph::new(reason.clone()).style(app.theme.warn_style()),
            list_area,
        );
        return;
    }
    // Roles show their analysis under the list.
    let list_area = if kind == Kind::Role {
        let [list, warnings] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(8)]).areas(list_area);
        draw_role_warnings(app, frame, warnings);
        list
    } else if kind == Kind::User && !app.admin.groups.is_empty() {
        // Users show the OS groups in use under the list.
        let height = (app.admin.groups.len() as u16 * 2 + 2).min(12);
        let [list, groups] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(height)]).areas(list_area);
        draw_groups(app, frame, groups);
        list
    } else {
        list_area
    };
    let header = Row::new(vec!["Name", "Status", "Rev", "Changed by", "Details"]);
    let widths = [
        Constraint::Length(26),
        Constraint::Length(9),
        Constraint::Length(4),
        Constraint::Length(12),
        Constraint::Min(10),
    ];
    // Borders, the fixed columns and the spaces between them.
    let details_width = (list_area.width as usize).saturating_sub(2 + 26 + 9 + 4 + 12 + 4);
    let theme = &app.theme;
    visible_table(
        frame,
        list_area,
        app,
        if list.filter.is_empty() {
            format!(" {} ", kind.plural())
        } else {
            format!(
                " {} matching '{}': {} ",
                kind.plural(),
                list.filter,
                list.view.len()
            )
        },
        header,
        &widths,
        list.view.len(),
        list.selected,
        |i| {
            let r = list.shown(i);
            let m = r.meta();
            Row::new(vec![
                Cell::from(m.name.clone()),
                Cell::from(if m.enabled { "enabled" } else { "disabled" }).style(if m.enabled {
                    theme.ok_style()
                } else {
                    theme.dim()
                }),
                Cell::from(m.revision.to_string()),
                Cell::from(m.updated_by.clone()),
                Cell::from(crate::text::fit(
                    &match app.admin.credential_states.get(&m.name) {
                        // A credential says where its password stands, first.
                        Some(state) if kind == Kind::Credential => {
                            format!("password {}  {}", state.word(), r.summary())
                        }
                        _ => r.summary(),
                    },
                    details_width,
                )),
            ])
        },
    );
    if let Some((name, secret)) = &app.admin.revealed {
        draw_revealed(app, frame, list_area, name, &secret.0);
    }
    if list.records.is_empty() {
        let inner = Rect {
            x: list_area.x + 2,
            y: list_area.y + 2,
            width: list_area.width.saturating_sub(4),
            height: 1,
        };
        frame.render_widget(
            Paragraph::new(format!(
                "no {} yet; `gatehouse import FILE` or `gatehouse demo` adds some",
                kind.plural()
            ))
            .style(theme.dim()),
            inner,
        );
    }
}

fn draw_role_warnings(app: &App, frame: &mut Frame, area: Rect) {
    use ratatui::widgets::{Block, Borders, Wrap};
    let selected = app.list(Kind::Role).and_then(|l| l.selected());
    let lines: Vec<Line> = match selected {
        Some(crate::domain::Record::Role(role)) => {
            let warnings = crate::access::analysis::analyse(role);
            if warnings.is_empty() {
                vec![Line::from("no warnings")]
            } else {
                warnings
                    .iter()
                    .map(|w| Line::styled(w.to_string(), app.theme.warn_style()))
                    .collect()
            }
        }
        _ => vec![Line::from("no role selected")],
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Role analysis ")
                .title_style(app.theme.title()),
        ),
        area,
    );
}

/// The OS groups roles, policies and admission name: what each gives and
/// who is in it.
fn draw_groups(app: &App, frame: &mut Frame, area: Rect) {
    use ratatui::widgets::{Block, Borders, Wrap};
    let mut lines = Vec::new();
    for g in &app.admin.groups {
        let mut gives = Vec::new();
        if !g.roles.is_empty() {
            gives.push(format!("roles {}", g.roles.join(", ")));
        }
        if !g.policies.is_empty() {
            gives.push(format!("policies {}", g.policies.join(", ")));
        }
        if g.admits {
            gives.push("admitted without an import".into());
        }
        lines.push(Line::styled(
            format!("@{}: {}", g.name, gives.join("; ")),
            app.theme.title(),
        ));
        lines.push(match &g.members {
            Ok(m) if m.is_empty() => Line::styled("  no members listed", app.theme.dim()),
            Ok(m) => Line::from(format!("  {}", m.join(", "))),
            Err(e) => Line::styled(format!("  {e}"), app.theme.warn_style()),
        });
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" OS groups in use ")
                .title_style(app.theme.title()),
        ),
        area,
    );
}

/// A revealed password in a box over the list, until its 30 seconds are
/// up or Esc hides it.
fn draw_revealed(app: &App, frame: &mut Frame, area: Rect, name: &str, secret: &str) {
    use ratatui::widgets::{Block, Borders, Clear};
    let shown = crate::text::printable(secret);
    let width = (shown.chars().count().max(name.len() + 20) as u16 + 6).min(area.width);
    let popup = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(5) / 2,
        width,
        height: 5.min(area.height),
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(shown).style(app.theme.title()),
            Line::from(""),
            Line::from("hidden after 30 s · Esc hides it now").style(app.theme.dim()),
        ])
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" password of {name} ")),
        ),
        popup,
    );
}

/// The labels `start..end` to show in `width` columns (each label's width
/// counts its divider), keeping `selected` in view with room for the
/// `‹`/`›` markers.
fn shown_range(widths: &[usize], selected: usize, width: usize) -> (usize, usize) {
    let marker = 4;
    let mut start = 0;
    loop {
        let room = width.saturating_sub(if start > 0 { marker } else { 0 });
        let mut end = start;
        let mut used = 0;
        while end < widths.len() && used + widths[end] <= room {
            used += widths[end];
            end += 1;
        }
        // Leave room for `›` when something is hidden to the right.
        if end < widths.len() && used + marker > room && end > start + 1 {
            end -= 1;
        }
        if selected < end || start >= selected {
            return (start, end.max(start + 1).min(widths.len()));
        }
        start += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::shown_range;

    #[test]
    fn the_selected_kind_is_always_in_view() {
        let widths = [10; 11];
        assert_eq!(shown_range(&widths, 0, 50), (0, 4));
        let (start, end) = shown_range(&widths, 10, 50);
        assert!(start <= 10 && 10 < end, "{start}..{end}");
        assert_eq!(end, 11);
        let (start, end) = shown_range(&widths, 6, 50);
        assert!(start <= 6 && 6 < end, "{start}..{end}");
        // Everything fits: everything is shown.
        assert_eq!(shown_range(&widths, 5, 200), (0, 11));
    }
}
