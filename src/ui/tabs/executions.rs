//! Approvals, Operations and History until requests and operations exist:
//! what each screen will hold, and where the user can act today.

use crate::ui::{App, Tab};
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let (title, text) = match app.tab {
        Tab::Approvals => (
            " Approvals ",
            "No requests are waiting for you.\n\nRequests that an access policy sends for approval appear here, oldest first.",
        ),
        Tab::Operations => (
            " Operations ",
            "Nothing is running or queued.\n\nRunning and queued operations appear here with their live output.",
        ),
        _ => (
            " History ",
            "No operation has run on this store yet.\n\nEvery operation ever run appears here, newest first.",
        ),
    };
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
