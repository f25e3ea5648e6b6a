//! History's sessions view: privileged sessions, newest first, over the
//! selected one's detail (its policy, change, deviations, how it ended).

use super::visible_table;
use crate::domain::SessionRecord;
use crate::ui::screens::SessionsView;
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect, view: &SessionsView) {
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Min(5)]).areas(area);
    // At 80 columns the credential goes and times lose their year and
    // seconds: nothing is cut inside a word.
    let wide = list_area.width >= 110;
    let zone = crate::domain::zone::view_zone_abbreviation();
    let header: Vec<String> = if wide {
        vec![
            "Id".into(),
            "User".into(),
            "Device".into(),
            "Credential".into(),
            "State".into(),
            "Cmds".into(),
            "Dev".into(),
            format!("Started {zone}"),
        ]
    } else {
        vec![
            "Id".into(),
            "User".into(),
            "Device".into(),
            "State".into(),
            "Cmds".into(),
            "Dev".into(),
            format!("Start {zone}"),
        ]
    };
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(16),
            Constraint::Length(14),
            Constraint::Length(13),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Min(16),
        ]
    } else {
        vec![
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(4),
            Constraint::Length(3),
            Constraint::Length(11.max(6 + zone.len() as u16)),
        ]
    };
    visible_table(
        frame,
        list_area,
        app,
        format!(" Sessions, newest first ({}) ", view.list.len()),
        Row::new(header),
        &widths,
        view.list.len(),
        view.selected,
        |i| {
            let s = &view.list[i];
            let state = match s.end {
                None => Span::styled("open", app.theme.ok_style()),
                Some(_) => Span::raw(s.state_word()),
            };
            let deviations = if s.deviations.is_empty() {
                Span::raw("-")
            } else {
                Span::styled(s.deviations.len().to_string(), app.theme.error_style())
            };
            let started = if wide {
                s.started_at.short()
            } else {
                s.started_at.brief()
            };
            let mut cells = vec![
                Span::raw(s.id.to_string()),
                Span::raw(s.user.clone()),
                Span::raw(s.device.clone()),
            ];
            if wide {
                cells.push(Span::raw(s.credential.clone()));
            }
            cells.extend([
                state,
                Span::raw(s.commands.to_string()),
                deviations,
                Span::raw(started),
            ]);
            Row::new(cells)
        },
    );
    let lines = match view.list.get(view.selected) {
        Some(s) => detail(app, s),
        None => vec![Line::from(Span::styled(
            "No sessions you may see.",
            app.theme.dim(),
        ))],
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Session ")
                .title_style(app.theme.title()),
        ),
        detail_area,
    );
}

fn detail<'a>(app: &App, s: &SessionRecord) -> Vec<Line<'a>> {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut lines = vec![
        Line::from(format!(
            "{} as {} on {} · policy {} · request {} · justification {}",
            s.user,
            s.credential,
            s.device,
            s.policy.as_deref().unwrap_or("- (Superuser)"),
            s.request
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            or_dash(&s.justification)
        )),
        Line::from(format!(
            "started {} · {} · {} command line(s), {} denied, {} bytes",
            s.started_at,
            match (&s.end, s.ended_at) {
                (Some(end), Some(at)) => format!("ended {at}: {end}"),
                _ => match s.window_end {
                    Some(t) => format!("open, until {t}"),
                    None => "open".to_string(),
                },
            },
            s.commands,
            s.denied,
            s.output_bytes
        )),
    ];
    if let Some(change) = &s.change {
        lines.push(Line::from(format!(
            "change {} · plan: {}",
            change.code,
            change.plan.join(" | ")
        )));
    }
    if !s.deviations.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("outside the plan: {}", s.deviations.join(" | ")),
            app.theme.error_style(),
        )));
    }
    lines
}
