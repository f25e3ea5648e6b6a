//! The TUI's screen as text and keys typed into it, for tests that drive
//! the App on ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::ui::{App, Call, Message};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A key without modifiers.
pub fn key(code: KeyCode) -> Message {
    Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Each character typed as a key; what the App asked the engine.
pub fn type_in(app: &mut App, text: &str) -> Vec<Call> {
    let mut asked = Vec::new();
    for c in text.chars() {
        asked.extend(app.update(key(KeyCode::Char(c))));
    }
    asked
}

/// The App drawn at this size, as lines of text.
pub fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| app.draw(f)).expect("draw");
    let buffer = terminal.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..height {
        for x in 0..width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}
