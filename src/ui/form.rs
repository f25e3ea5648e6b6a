//! A form: labelled fields, required ones marked, each with its own error
//! under it. Tab and Shift-Tab (or ↑/↓ outside a text box) move between
//! fields, Ctrl-S submits from anywhere, Enter submits from the last field,
//! Esc closes. Multi-line text uses tui-textarea with line numbers; an error
//! at a line of it is shown with that line and the cursor taken there.

use super::Theme;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use tui_textarea::{CursorMove, TextArea};

/// What a field holds and how it is edited.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldKind {
    /// One line of text.
    Line,
    /// One masked line; never shown back. `set` says a value is stored already.
    Secret { set: bool },
    /// Yes or no; Space toggles.
    Toggle(bool),
    /// One of these; ←/→ or Space choose.
    Choice { options: Vec<String>, at: usize },
    /// Any of these; ←/→ move, Space picks.
    Picks {
        options: Vec<String>,
        picked: Vec<bool>,
        at: usize,
    },
    /// Several lines, with line numbers.
    Text,
}

pub struct Field {
    /// The name the record file or the request uses.
    pub name: String,
    pub label: String,
    /// Shown under the form while the field has the focus.
    pub help: String,
    pub required: bool,
    pub kind: FieldKind,
    input: TextArea<'static>,
    pub error: Option<String>,
    /// Rows a text field takes.
    rows: u16,
}

impl Field {
    fn new(name: &str, label: &str, kind: FieldKind) -> Field {
        let mut input = TextArea::default();
        input.set_cursor_line_style(Style::default());
        if kind == FieldKind::Text {
            input.set_line_number_style(Style::default().add_modifier(Modifier::DIM));
        }
        if let FieldKind::Secret { .. } = kind {
            input.set_mask_char('•');
        }
        Field {
            name: name.to_string(),
            label: label.to_string(),
            help: String::new(),
            required: false,
            kind,
            input,
            error: None,
            rows: TEXT_ROWS,
        }
    }

    pub fn line(name: &str, label: &str, value: &str) -> Field {
        let mut f = Field::new(name, label, FieldKind::Line);
        f.set_text(value);
        f
    }

    pub fn secret(name: &str, label: &str, set: bool) -> Field {
        Field::new(name, label, FieldKind::Secret { set })
    }

    pub fn toggle(name: &str, label: &str, on: bool) -> Field {
        Field::new(name, label, FieldKind::Toggle(on))
    }

    pub fn choice(name: &str, label: &str, options: Vec<String>, current: &str) -> Field {
        let at = options.iter().position(|o| o == current).unwrap_or(0);
        Field::new(name, label, FieldKind::Choice { options, at })
    }

    pub fn picks(name: &str, label: &str, options: Vec<String>, picked: &[String]) -> Field {
        let flags = options.iter().map(|o| picked.contains(o)).collect();
        Field::new(
            name,
            label,
            FieldKind::Picks {
                options,
                picked: flags,
                at: 0,
            },
        )
    }

    pub fn text(name: &str, label: &str, value: &str) -> Field {
        let mut f = Field::new(name, label, FieldKind::Text);
        f.set_text(value);
        f
    }

    /// How many rows a text field takes.
    pub fn rows(mut self, rows: u16) -> Field {
        self.rows = rows;
        self
    }

    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Field {
        self.help = help.into();
        self
    }

    fn set_text(&mut self, value: &str) {
        let lines: Vec<String> = if value.is_empty() {
            vec![String::new()]
        } else {
            value.split('\n').map(str::to_string).collect()
        };
        let mut input = TextArea::new(lines);
        input.set_cursor_line_style(Style::default());
        if self.kind == FieldKind::Text {
            input.set_line_number_style(Style::default().add_modifier(Modifier::DIM));
        } else {
            input.move_cursor(CursorMove::End);
        }
        self.input = input;
    }

    /// Puts a value in, as typed: a choice's option, a comma-separated
    /// list of picks, "true" for a toggle, text otherwise.
    pub fn set_value(&mut self, value: &str) {
        match &mut self.kind {
            FieldKind::Toggle(on) => *on = value == "true",
            FieldKind::Choice { options, at } => {
                if let Some(i) = options.iter().position(|o| o == value) {
                    *at = i;
                }
            }
            FieldKind::Picks {
                options, picked, ..
            } => {
                let wanted: Vec<&str> = value.split(',').map(str::trim).collect();
                for (option, flag) in options.iter().zip(picked.iter_mut()) {
                    *flag = wanted.contains(&option.as_str());
                }
            }
            _ => self.set_text(value),
        }
    }

    /// The text of a text field (lines joined with newlines).
    pub fn value(&self) -> String {
        match &self.kind {
            FieldKind::Toggle(on) => on.to_string(),
            FieldKind::Choice { options, at } => options.get(*at).cloned().unwrap_or_default(),
            FieldKind::Picks {
                options, picked, ..
            } => options
                .iter()
                .zip(picked)
                .filter(|(_, p)| **p)
                .map(|(o, _)| o.clone())
                .collect::<Vec<_>>()
                .join(", "),
            _ => self.input.lines().join("\n"),
        }
    }

    /// The picked options of a Picks field.
    pub fn picked(&self) -> Vec<String> {
        match &self.kind {
            FieldKind::Picks {
                options, picked, ..
            } => options
                .iter()
                .zip(picked)
                .filter(|(_, p)| **p)
                .map(|(o, _)| o.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn is_on(&self) -> bool {
        matches!(self.kind, FieldKind::Toggle(true))
    }

    /// Rows this field takes on screen.
    fn height(&self, text_rows: u16) -> u16 {
        let body = if self.kind == FieldKind::Text {
            self.rows.min(text_rows)
        } else {
            1
        };
        body + u16::from(self.error.is_some())
    }

    /// Takes a key; true when the field used it.
    fn on_key(&mut self, key: KeyEvent) -> bool {
        match &mut self.kind {
            FieldKind::Toggle(on) => match key.code {
                KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right => {
                    *on = !*on;
                    true
                }
                KeyCode::Char('y') => {
                    *on = true;
                    true
                }
                KeyCode::Char('n') => {
                    *on = false;
                    true
                }
                _ => false,
            },
            FieldKind::Choice { options, at } => {
                let n = options.len().max(1);
                match key.code {
                    KeyCode::Right | KeyCode::Char(' ') => {
                        *at = (*at + 1) % n;
                        true
                    }
                    KeyCode::Left => {
                        *at = (*at + n - 1) % n;
                        true
                    }
                    _ => false,
                }
            }
            FieldKind::Picks {
                options,
                picked,
                at,
            } => {
                let n = options.len().max(1);
                match key.code {
                    KeyCode::Right => {
                        *at = (*at + 1) % n;
                        true
                    }
                    KeyCode::Left => {
                        *at = (*at + n - 1) % n;
                        true
                    }
                    KeyCode::Char(' ') => {
                        if let Some(p) = picked.get_mut(*at) {
                            *p = !*p;
                        }
                        true
                    }
                    KeyCode::Char('a') => {
                        let all = picked.iter().all(|p| *p);
                        picked.iter_mut().for_each(|p| *p = !all);
                        true
                    }
                    _ => false,
                }
            }
            FieldKind::Text => {
                if key.code == KeyCode::Tab || key.code == KeyCode::BackTab {
                    return false;
                }
                self.input.input(key);
                true
            }
            FieldKind::Line | FieldKind::Secret { .. } => match key.code {
                KeyCode::Enter | KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                    false
                }
                _ => {
                    self.input.input(key);
                    true
                }
            },
        }
    }

    /// Takes the cursor of a text field to a line and column (1-based).
    pub fn jump_to(&mut self, line: usize, column: usize) {
        self.input.move_cursor(CursorMove::Jump(
            line.saturating_sub(1).min(u16::MAX as usize) as u16,
            column.saturating_sub(1).min(u16::MAX as usize) as u16,
        ));
    }
}

/// What a key did to the form.
#[derive(Debug, PartialEq, Eq)]
pub enum FormKey {
    /// Used (or ignored) inside the form.
    Stay,
    /// Check it and send it.
    Submit,
    /// Close it without sending.
    Close,
    /// The text of a field changed: check it as typed.
    Changed(usize),
}

pub struct Form {
    pub title: String,
    /// Lines above the fields: what applies (the policy, the record's state).
    pub notes: Vec<Line<'static>>,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// An error about the whole form (the engine's refusal).
    pub error: Option<String>,
    /// Set while the engine has it.
    pub sending: bool,
}

/// How many rows a text field gets.
const TEXT_ROWS: u16 = 10;

impl Form {
    pub fn new(title: impl Into<String>, fields: Vec<Field>) -> Form {
        Form {
            title: title.into(),
            notes: Vec::new(),
            fields,
            focus: 0,
            error: None,
            sending: false,
        }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn field_mut(&mut self, name: &str) -> Option<&mut Field> {
        self.fields.iter_mut().find(|f| f.name == name)
    }

    pub fn value(&self, name: &str) -> String {
        self.field(name).map(Field::value).unwrap_or_default()
    }

    /// Sets or clears one field's error.
    pub fn set_error(&mut self, name: &str, error: Option<String>) {
        if let Some(f) = self.field_mut(name) {
            f.error = error;
        }
    }

    /// Whether any field, or the form, has an error.
    pub fn has_errors(&self) -> bool {
        self.error.is_some() || self.fields.iter().any(|f| f.error.is_some())
    }

    /// Marks required fields left empty; true when none is.
    pub fn check_required(&mut self) -> bool {
        let mut ok = true;
        for f in &mut self.fields {
            let empty = match &f.kind {
                FieldKind::Secret { set: true } => false,
                FieldKind::Picks { .. } => f.picked().is_empty(),
                _ => f.value().trim().is_empty(),
            };
            if f.required && empty {
                f.error = Some(format!("{} is required", f.label));
                ok = false;
            }
        }
        ok
    }

    /// Moves the focus to the first field with an error.
    pub fn focus_first_error(&mut self) {
        if let Some(i) = self.fields.iter().position(|f| f.error.is_some()) {
            self.focus = i;
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> FormKey {
        if self.sending {
            return if key.code == KeyCode::Esc {
                FormKey::Close
            } else {
                FormKey::Stay
            };
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if key.code == KeyCode::Esc {
            return FormKey::Close;
        }
        if ctrl && key.code == KeyCode::Char('s') {
            return FormKey::Submit;
        }
        let last = self.fields.len().saturating_sub(1);
        let Some(field) = self.fields.get_mut(self.focus) else {
            return FormKey::Stay;
        };
        let before = field.value();
        if field.on_key(key) {
            return if field.value() != before {
                FormKey::Changed(self.focus)
            } else {
                FormKey::Stay
            };
        }
        match key.code {
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1).min(last),
            KeyCode::BackTab | KeyCode::Up => self.focus = self.focus.saturating_sub(1),
            KeyCode::Enter if self.focus == last => return FormKey::Submit,
            KeyCode::Enter => self.focus += 1,
            _ => {}
        }
        FormKey::Stay
    }

    /// Draws the form as a box over most of `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = area.width.saturating_sub(4).clamp(20, 110);
        let error_rows = self.error.as_ref().map_or(0, |e| {
            (e.chars().count() as u16 / width.saturating_sub(2).max(1) + 1).min(3)
        });
        let wanted: u16 = self.fields.iter().map(|f| f.height(TEXT_ROWS)).sum::<u16>()
            + self
                .notes
                .iter()
                .map(|n| (n.width() as u16 / width.saturating_sub(2).max(1) + 1).min(3))
                .sum::<u16>()
            + error_rows
            + u16::from(!self.notes.is_empty() || self.error.is_some())
            + 4;
        let height = wanted.min(area.height.saturating_sub(2)).max(8);
        let popup = Rect {
            x: area.x + (area.width.saturating_sub(width)) / 2,
            y: area.y + (area.height.saturating_sub(height)) / 2,
            width: width.min(area.width),
            height: height.min(area.height),
        };
        frame.render_widget(Clear, popup);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} ", self.title))
            .title_style(theme.title())
            .title_bottom(Line::from(Span::styled(
                " Tab next · Shift-Tab back · Ctrl-S submit · Esc close ",
                theme.dim(),
            )));
        let inner = block.inner(popup);
        frame.render_widget(block, popup);
        if inner.height < 3 || inner.width < 10 {
            return;
        }
        let mut y = inner.y;
        let bottom = inner.y + inner.height;
        // Notes, then the form's own error.
        for note in &self.notes {
            let rows = (note.width() as u16 / inner.width.max(1) + 1).min(3);
            if y + rows >= bottom {
                break;
            }
            frame.render_widget(
                Paragraph::new(note.clone()).wrap(Wrap { trim: true }),
                Rect::new(inner.x, y, inner.width, rows),
            );
            y += rows;
        }
        if let Some(e) = &self.error {
            let rows = (e.chars().count() as u16 / inner.width.max(1) + 1).min(3);
            frame.render_widget(
                Paragraph::new(Span::styled(crate::text::printable(e), theme.error_style()))
                    .wrap(Wrap { trim: true }),
                Rect::new(inner.x, y, inner.width, rows.min(bottom.saturating_sub(y))),
            );
            y += rows;
        }
        if !self.notes.is_empty() || self.error.is_some() {
            y += 1;
        }
        // The help line of the focused field sits at the bottom.
        let help_row = bottom.saturating_sub(1);
        let fields_bottom = help_row.saturating_sub(1);
        let label_width = self
            .fields
            .iter()
            .map(|f| f.label.chars().count() as u16 + 3)
            .max()
            .unwrap_or(10)
            .min(inner.width / 3);
        // Scroll so that the focused field is visible: start from the first
        // field that lets it fit.
        let rows_left = fields_bottom.saturating_sub(y);
        let text_rows = TEXT_ROWS.min(rows_left.saturating_sub(2).max(3));
        let mut first = 0;
        loop {
            let needed: u16 = self.fields[first..=self.focus.min(self.fields.len() - 1)]
                .iter()
                .map(|f| f.height(text_rows))
                .sum();
            if needed <= rows_left || first >= self.focus {
                break;
            }
            first += 1;
        }
        for (i, field) in self.fields.iter().enumerate().skip(first) {
            let h = field.height(text_rows);
            if y + h > fields_bottom + 1 {
                break;
            }
            let focused = i == self.focus;
            let label_style = if focused {
                theme.selected()
            } else {
                theme.text()
            };
            let mark = if field.required { "*" } else { " " };
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled(mark, theme.error_style()),
                    Span::styled(field.label.clone(), label_style),
                ])),
                Rect::new(inner.x, y, label_width, 1),
            );
            let rows = if field.kind == FieldKind::Text {
                field.rows.min(text_rows)
            } else {
                1
            };
            let value_area = Rect::new(
                inner.x + label_width,
                y,
                inner.width.saturating_sub(label_width),
                rows,
            );
            self.draw_value(frame, field, focused, value_area, theme);
            y += rows;
            if let Some(e) = &field.error {
                frame.render_widget(
                    Paragraph::new(Span::styled(
                        format!("  ✗ {}", crate::text::printable(e)),
                        theme.error_style(),
                    )),
                    Rect::new(inner.x + label_width, y, value_area.width, 1),
                );
                y += 1;
            }
        }
        if let Some(f) = self.fields.get(self.focus) {
            let help = if self.sending {
                "sending…".to_string()
            } else {
                f.help.clone()
            };
            frame.render_widget(
                Paragraph::new(Span::styled(help, theme.dim())),
                Rect::new(inner.x, help_row, inner.width, 1),
            );
        }
    }

    fn draw_value(
        &self,
        frame: &mut Frame,
        field: &Field,
        focused: bool,
        area: Rect,
        theme: &Theme,
    ) {
        let style = if focused {
            theme.text().add_modifier(Modifier::UNDERLINED)
        } else {
            theme.text()
        };
        match &field.kind {
            FieldKind::Line | FieldKind::Secret { .. } => {
                let empty = field.input.lines().iter().all(|l| l.is_empty());
                if let (FieldKind::Secret { set: true }, true) = (&field.kind, empty) {
                    frame.render_widget(
                        Paragraph::new(Span::styled("(set; type to replace)", theme.dim())),
                        area,
                    );
                    return;
                }
                let mut input = field.input.clone();
                input.set_style(style);
                if !focused {
                    input.set_cursor_style(style);
                }
                frame.render_widget(&input, area);
            }
            FieldKind::Toggle(on) => frame.render_widget(
                Paragraph::new(Span::styled(if *on { "[x] yes" } else { "[ ] no" }, style)),
                area,
            ),
            FieldKind::Choice { options, at } => frame.render_widget(
                Paragraph::new(Span::styled(
                    format!("‹ {} ›", options.get(*at).map(String::as_str).unwrap_or("")),
                    style,
                )),
                area,
            ),
            FieldKind::Picks {
                options,
                picked,
                at,
            } => {
                let spans: Vec<Span> = options
                    .iter()
                    .zip(picked)
                    .enumerate()
                    .map(|(i, (o, p))| {
                        let text = format!("[{}] {}  ", if *p { "x" } else { " " }, o);
                        if focused && i == *at {
                            Span::styled(text, theme.selected())
                        } else {
                            Span::styled(text, theme.text())
                        }
                    })
                    .collect();
                frame.render_widget(Paragraph::new(Line::from(spans)), area);
            }
            FieldKind::Text => {
                let mut input = field.input.clone();
                input.set_block(
                    Block::default()
                        .borders(Borders::LEFT)
                        .border_style(if focused {
                            theme.selected()
                        } else {
                            theme.dim()
                        }),
                );
                if field.error.is_some() {
                    input.set_cursor_line_style(theme.error_style());
                }
                if !focused {
                    input.set_cursor_style(theme.text());
                }
                frame.render_widget(&input, area);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn typing_moving_and_submitting() {
        let mut form = Form::new(
            "t",
            vec![
                Field::line("name", "Name", "").required(),
                Field::toggle("enabled", "Enabled", true),
                Field::choice("kind", "Kind", vec!["a".into(), "b".into()], "a"),
            ],
        );
        assert_eq!(form.on_key(key(KeyCode::Char('x'))), FormKey::Changed(0));
        assert_eq!(form.value("name"), "x");
        form.on_key(key(KeyCode::Tab));
        form.on_key(key(KeyCode::Char(' ')));
        assert_eq!(form.value("enabled"), "false");
        form.on_key(key(KeyCode::Tab));
        form.on_key(key(KeyCode::Right));
        assert_eq!(form.value("kind"), "b");
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormKey::Submit);
        assert_eq!(form.on_key(key(KeyCode::Esc)), FormKey::Close);
    }

    #[test]
    fn required_fields_are_named_and_secrets_already_set_count() {
        let mut form = Form::new(
            "t",
            vec![
                Field::line("name", "Name", "").required(),
                Field::secret("password", "Password", true).required(),
                Field::picks("devices", "Devices", vec!["a".into()], &[]).required(),
            ],
        );
        assert!(!form.check_required());
        assert_eq!(form.fields[0].error.as_deref(), Some("Name is required"));
        assert!(form.fields[1].error.is_none());
        assert_eq!(form.fields[2].error.as_deref(), Some("Devices is required"));
    }
}
