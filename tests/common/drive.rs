//! Driving the TUI's core against a real server: every request the App
//! makes is sent through a real client and every answer fed back, and whole
//! screens are read off ratatui's TestBackend.

use gatehouse::client::Client;
use gatehouse::ui::{App, Call, Message};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Sends what the App asks for and feeds the answers back until it asks
/// for nothing more (or twenty rounds passed).
pub async fn settle(app: &mut App, client: &Client, mut requests: Vec<Call>) {
    for _ in 0..20 {
        if requests.is_empty() {
            return;
        }
        let mut next = Vec::new();
        for request in requests {
            let result = client
                .call(request.command())
                .await
                .map_err(gatehouse::ui::Failure::from);
            next.extend(app.update(Message::Answer(request, result)));
        }
        requests = next;
    }
}

/// The whole screen, every cell's symbol, row by row.
pub fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// A key press.
pub fn key(code: crossterm::event::KeyCode) -> Message {
    Message::Key(crossterm::event::KeyEvent::new(
        code,
        crossterm::event::KeyModifiers::NONE,
    ))
}

/// Every screen (the tab digits) and, on each, its first row opened, as
/// `login` sees them through the server on `socket`.
pub async fn every_screen(socket: &std::path::Path, login: &str) -> Vec<String> {
    use crossterm::event::KeyCode;
    let client = Client::connect(socket, Some(login), &Default::default())
        .await
        .unwrap();
    let mut app = App::new(login.into(), gatehouse::ui::Theme::default());
    let start = app.start();
    settle(&mut app, &client, start).await;
    let mut screens = Vec::new();
    for tab in ['1', '2', '3', '4', '5', '6', '7'] {
        for k in [KeyCode::Char(tab), KeyCode::Enter] {
            let asked = app.update(key(k));
            settle(&mut app, &client, asked).await;
            screens.push(screen(&app, 160, 50));
        }
        app.update(key(KeyCode::Esc));
    }
    screens
}

/// The TUI after these keys, as `login` sees it through the real server
/// (each key's requests answered before the next).
#[allow(dead_code)]
pub async fn screen_after(
    socket: &std::path::Path,
    login: &str,
    keys: &[crossterm::event::KeyCode],
) -> String {
    let client = Client::connect(socket, Some(login), &Default::default())
        .await
        .unwrap();
    let mut app = App::new(login.into(), gatehouse::ui::Theme::default());
    let start = app.start();
    settle(&mut app, &client, start).await;
    for k in keys {
        let asked = app.update(key(*k));
        settle(&mut app, &client, asked).await;
    }
    screen(&app, 160, 50)
}
