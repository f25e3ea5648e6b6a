//! One file per screen.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod dashboard;
pub mod operations;
pub mod sessions;
pub mod tasks;

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Row, Table};
use ratatui::Frame;

/// The first row to show so that `selected` stays in a view of `height` rows.
pub fn first_visible(selected: usize, height: usize, len: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    selected.saturating_sub(height - 1).min(len - height)
}

/// Draws a table of which only the visible rows are built: `row(i)` is
/// called for those alone, so a list of a million costs what a screen costs.
#[allow(clippy::too_many_arguments)]
pub fn visible_table<'a>(
    frame: &mut Frame,
    area: Rect,
    app: &crate::ui::App,
    title: String,
    header: Row<'a>,
    widths: &[Constraint],
    len: usize,
    selected: usize,
    row: impl Fn(usize) -> Row<'a>,
) {
    let theme = &app.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .title_style(theme.title());
    // Borders take two rows, the header one.
    let height = area.height.saturating_sub(3) as usize;
    let first = first_visible(selected, height, len);
    // Where the rows are, so that a click can find its row.
    app.list_hit.set(Some((
        Rect::new(
            area.x + 1,
            area.y + 2,
            area.width.saturating_sub(2),
            height as u16,
        ),
        first,
        len,
    )));
    let rows: Vec<Row> = (first..len.min(first + height))
        .map(|i| {
            let r = row(i);
            if i == selected {
                r.style(theme.selected())
            } else {
                r
            }
        })
        .collect();
    frame.render_widget(
        Table::new(rows, widths.to_vec())
            .header(header.style(theme.title()))
            .block(block),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::first_visible;

    #[test]
    fn the_selected_row_stays_in_view() {
        assert_eq!(first_visible(0, 10, 100), 0);
        assert_eq!(first_visible(9, 10, 100), 0);
        assert_eq!(first_visible(10, 10, 100), 1);
        assert_eq!(first_visible(99, 10, 100), 90);
        assert_eq!(first_visible(5, 10, 3), 0);
    }
}
