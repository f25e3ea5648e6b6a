//! Approvals: requests waiting for this user's decision. Approval policies
//! arrive with access control; until then no request ever waits.

use crate::ui::{App, Tab};
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    debug_assert_eq!(app.tab, Tab::Approvals);
    let (title, text) = (
        " Approvals ",
        "No requests are waiting for you.\n\nRequests run at once for Superusers; requests that an access policy sends for approval will appear here, oldest first.",
    );
    frame.render_widget(
        Paragraph::new(text)
            .style(app.theme.text())
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .title_style(app.theme.title()),
            ),
        area,
    );
}
