//! A template's revisions and the difference between any two of them: who
//! saved each and when, and the lines removed and added, content and
//! settings alike (each revision as the import format prints it).

use super::Theme;
use crate::domain::{Record, Template};
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

pub struct Revisions {
    pub template: String,
    /// Oldest first.
    pub revisions: Vec<Template>,
    /// Indices of the two revisions compared: from (older) and to.
    pub from: usize,
    pub to: usize,
    pub scroll: usize,
}

/// One line of a difference.
#[derive(Debug, PartialEq)]
pub enum Change {
    Same(String),
    Removed(String),
    Added(String),
}

/// The line difference between two texts.
pub fn diff(old: &str, new: &str) -> Vec<Change> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|c| {
            let text = c.value().trim_end_matches('\n').to_string();
            match c.tag() {
                similar::ChangeTag::Equal => Change::Same(text),
                similar::ChangeTag::Delete => Change::Removed(text),
                similar::ChangeTag::Insert => Change::Added(text),
            }
        })
        .collect()
}

/// A revision as the import format prints it, without the header comment.
fn printed(t: &Template) -> String {
    crate::recordfile::print(&[Record::Template(t.clone())])
        .lines()
        .skip_while(|l| l.starts_with('#') || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Revisions {
    /// Compares the newest revision with the one before it.
    pub fn new(template: String, mut revisions: Vec<Template>) -> Revisions {
        revisions.sort_by_key(|t| t.meta.revision);
        let to = revisions.len().saturating_sub(1);
        Revisions {
            template,
            from: to.saturating_sub(1),
            to,
            revisions,
            scroll: 0,
        }
    }

    pub fn changes(&self) -> Vec<Change> {
        match (self.revisions.get(self.from), self.revisions.get(self.to)) {
            (Some(a), Some(b)) => diff(&printed(a), &printed(b)),
            _ => Vec::new(),
        }
    }

    /// ←/→ pick the older revision, [/] the newer, ↑/↓ scroll; false closes.
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        let last = self.revisions.len().saturating_sub(1);
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('v') => return false,
            KeyCode::Left | KeyCode::Char('h') => self.from = self.from.saturating_sub(1),
            KeyCode::Right | KeyCode::Char('l') => self.from = (self.from + 1).min(last),
            KeyCode::Char('[') => self.to = self.to.saturating_sub(1),
            KeyCode::Char(']') => self.to = (self.to + 1).min(last),
            KeyCode::Down | KeyCode::Char('j') => self.scroll += 1,
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll += 20,
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(20),
            _ => {}
        }
        self.scroll = self.scroll.min(self.changes().len().saturating_sub(1));
        true
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let popup = Rect {
            x: area.x + 1,
            y: area.y + 1,
            width: area.width.saturating_sub(2),
            height: area.height.saturating_sub(2),
        };
        frame.render_widget(Clear, popup);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" Revisions of template {} ", self.template))
            .title_style(theme.title())
            .title_bottom(Line::from(Span::styled(
                " ←/→ older revision · [/] newer revision · ↑/↓ scroll · Esc close ",
                theme.dim(),
            )));
        let inner = block.inner(popup);
        frame.render_widget(block, popup);
        let list_height = (self.revisions.len() as u16 + 1)
            .min(inner.height / 3)
            .max(2);
        let [list_area, diff_area] =
            Layout::vertical([Constraint::Length(list_height), Constraint::Min(1)]).areas(inner);
        // The revisions, newest last, the two compared marked.
        let skip = self
            .revisions
            .len()
            .saturating_sub(list_height as usize - 1);
        let mut lines = vec![Line::from(Span::styled(
            format!(
                "comparing revision {} → {}",
                self.revisions
                    .get(self.from)
                    .map(|t| t.meta.revision)
                    .unwrap_or(0),
                self.revisions
                    .get(self.to)
                    .map(|t| t.meta.revision)
                    .unwrap_or(0)
            ),
            theme.title(),
        ))];
        for (i, t) in self.revisions.iter().enumerate().skip(skip) {
            let mark = match (i == self.from, i == self.to) {
                (true, _) => "from ▸",
                (_, true) => "  to ▸",
                _ => "      ",
            };
            let style = if i == self.from || i == self.to {
                theme.selected()
            } else {
                theme.text()
            };
            lines.push(Line::from(Span::styled(
                format!(
                    "{mark} revision {:>3}  {}  by {}",
                    t.meta.revision,
                    t.meta.updated_at,
                    crate::text::printable(&t.meta.updated_by)
                ),
                style,
            )));
        }
        frame.render_widget(Paragraph::new(lines), list_area);
        // Only the rows that fit are built.
        let rows = diff_area.height as usize;
        let changes = self.changes();
        let visible: Vec<Line> = if self.from == self.to {
            vec![Line::from(Span::styled(
                "the same revision on both sides",
                theme.dim(),
            ))]
        } else {
            changes
                .iter()
                .skip(self.scroll)
                .take(rows)
                .map(|c| match c {
                    Change::Same(t) => Line::from(Span::styled(
                        format!("  {}", crate::text::printable(t)),
                        theme.dim(),
                    )),
                    Change::Removed(t) => Line::from(Span::styled(
                        format!("- {}", crate::text::printable(t)),
                        theme.error_style(),
                    )),
                    Change::Added(t) => Line::from(Span::styled(
                        format!("+ {}", crate::text::printable(t)),
                        theme.ok_style(),
                    )),
                })
                .collect()
        };
        frame.render_widget(Paragraph::new(visible), diff_area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_marks_removed_and_added_lines() {
        let d = diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(
            d,
            vec![
                Change::Same("a".into()),
                Change::Removed("b".into()),
                Change::Added("B".into()),
                Change::Same("c".into()),
                Change::Added("d".into()),
            ]
        );
    }
}
