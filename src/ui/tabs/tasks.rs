//! Tasks: the tasks this user may see, with their template and devices.

use super::visible_table;
use crate::domain::{Kind, Record};
use crate::ui::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let [list_area, detail_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let empty = Default::default();
    let list = app.list(Kind::Task).unwrap_or(&empty);
    visible_table(
        frame,
        list_area,
        app,
        // A filter in force is always said, with how many it lets through.
        if list.filter.is_empty() {
            format!(" Tasks ({}) ", list.view.len())
        } else {
            format!(
                " Tasks matching '{}': {} of {} (/ to change, Esc in it to clear) ",
                crate::text::printable(&list.filter),
                list.view.len(),
                list.records.len()
            )
        },
        Row::new(vec!["Task", "Template", "Devices", "Schedule"]),
        &[
            Constraint::Length(24),
            Constraint::Length(20),
            Constraint::Length(8),
            Constraint::Min(8),
        ],
        list.view.len(),
        list.selected,
        |i| match list.shown(i) {
            Record::Task(t) => Row::new(vec![
                t.meta.name.clone(),
                t.template.clone(),
                t.devices.len().to_string(),
                // Where the schedule stands; the cron is in the detail.
                match (&t.schedule, app.tasks.schedules.get(&t.meta.name)) {
                    (Some(_), Some(s)) => short(s.state).to_string(),
                    (Some(expr), None) => expr.clone(),
                    (None, _) => String::new(),
                },
            ]),
            other => Row::new(vec![other.name().to_string()]),
        },
    );
    let detail = match list.selected() {
        Some(Record::Task(t)) => format!(
            "{}\n\n{}\n\n{}template     {}\nenvironment  {}\nsystem       {}\ncredential   {}\ndevices      {}\nvariables    {}\ntimeout      {} s\nretries      {}\nparallelism  {}\nchildren     {}\nstatus       {}",
            t.meta.name,
            if t.description.is_empty() { "(no description)" } else { &t.description },
            schedule_lines(app, t),
            t.template,
            t.environment,
            t.system,
            t.credential,
            t.devices.join(", "),
            t.variables.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
            t.timeout_secs,
            t.retries,
            t.parallelism,
            t.children.join(", "),
            if t.meta.enabled { "enabled" } else { "disabled" },
        ),
        _ => "no task selected".to_string(),
    };
    frame.render_widget(
        Paragraph::new(detail).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Task ")
                .title_style(app.theme.title()),
        ),
        detail_area,
    );
}

/// The schedule of a task and where it stands: who authorised it and
/// until when, or why it does not run.
fn schedule_lines(app: &App, t: &crate::domain::Task) -> String {
    let Some(expr) = &t.schedule else {
        return String::new();
    };
    let Some(status) = app.tasks.schedules.get(&t.meta.name) else {
        return format!("schedule     {expr}\n");
    };
    let detail = match &status.authority {
        None => "nobody asked: request it with --schedule".to_string(),
        Some(r) => match &r.void_reason {
            Some(why) => format!("request {}: {why}", r.id),
            None => format!(
                "request {} of {}{}, until {}",
                r.id,
                r.requester,
                if r.policy.is_none() {
                    " as Superuser"
                } else {
                    ""
                },
                r.window_end
            ),
        },
    };
    format!(
        "schedule     {expr}, {}\n             {detail}\n\n",
        status.state
    )
}

/// A schedule's state in one short word, for the list.
fn short(state: crate::engine::schedules::ScheduleState) -> &'static str {
    use crate::engine::schedules::ScheduleState::*;
    match state {
        Unauthorised => "unauthorised",
        Pending => "pending",
        Authorised => "authorised",
        Suspended => "suspended",
    }
}
