//! The Admin screens' forms: new, edit and clone for every record kind.
//! A form is the record as the import format spells it, one field per key;
//! submitting turns it into a one-record file and hands that to the engine's
//! import, which decides (and audits) exactly as for `gatehouse import`. Its
//! refusals name a field, which the form shows under that field. Template
//! content is checked as it is typed, with the parser's error at its line.

use super::form::{Field, FieldKind, Form};
use crate::domain::{Executor, Kind, Record, Variable};
use crate::engine::ImportItem;
use std::collections::BTreeMap;

use crate::recordfile::fields::{keys, Spec};

/// What the form makes.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    New,
    Edit(String),
    Clone(String),
}

pub struct RecordForm {
    pub kind: Kind,
    pub mode: Mode,
    pub form: Form,
    specs: Vec<(String, Spec)>,
    /// Where the content's error is (line, column), as the checker or the
    /// engine said.
    content_error_at: Option<(usize, usize)>,
    /// A narrow terminal shows a template's mask legend over the form
    /// when asked (F2); a wide one always beside it.
    pub legend_open: bool,
}

/// Names of the records of each kind, for choices.
pub type Names = BTreeMap<Kind, Vec<String>>;

fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) if items.iter().all(|v| v.is_str()) => items
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

impl RecordForm {
    /// A form for `kind`: empty for New, the record's values for Edit and
    /// Clone (a clone under a new name, never with the secrets).
    pub fn new(kind: Kind, mode: Mode, record: Option<&Record>, names: &Names) -> RecordForm {
        let table = record.map(|r| record_table(kind, r)).unwrap_or_default();
        let mut fields = Vec::new();
        let mut specs = Vec::new();
        for key in keys(kind) {
            let current = table.get(key.key);
            let text = current.map(toml_text).unwrap_or_default();
            let choices = |kind: Kind, optional: bool| {
                let mut list = if optional {
                    vec![String::new()]
                } else {
                    Vec::new()
                };
                list.extend(names.get(&kind).cloned().unwrap_or_default());
                if !text.is_empty() && !list.contains(&text) {
                    list.push(text.clone());
                }
                list
            };
            let mut field = match key.spec {
                Spec::Line | Spec::Int | Spec::List | Spec::Pairs => {
                    let text = match (key.spec, current) {
                        (Spec::Pairs, Some(toml::Value::Table(t))) => t
                            .iter()
                            .map(|(k, v)| format!("{k}={}", toml_text(v)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        _ => text.clone(),
                    };
                    Field::line(key.key, key.label, &text)
                }
                Spec::Bool => Field::toggle(
                    key.key,
                    key.label,
                    current
                        .and_then(|v| v.as_bool())
                        .unwrap_or(key.key == "enabled"),
                ),
                Spec::Choice(options) => Field::choice(
                    key.key,
                    key.label,
                    options.iter().map(|s| s.to_string()).collect(),
                    &text,
                ),
                Spec::Ref(of) => {
                    Field::choice(key.key, key.label, choices(of, !key.required), &text)
                }
                Spec::Refs(of) => {
                    let picked: Vec<String> = current
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut options = names.get(&of).cloned().unwrap_or_default();
                    for p in &picked {
                        if !options.contains(p) {
                            options.push(p.clone());
                        }
                    }
                    Field::picks(key.key, key.label, options, &picked)
                }
                Spec::Secret => {
                    let set = matches!((&mode, record), (Mode::Edit(_), Some(Record::Credential(c)))
                    if match key.key {
                        "password" => c.password.is_some(),
                        "passphrase" => c.passphrase.is_some(),
                        _ => false,
                    });
                    Field::secret(key.key, key.label, set)
                }
                Spec::Text => Field::text(key.key, key.label, &text),
                Spec::Toml => {
                    let text = match current {
                        Some(toml::Value::Array(items)) if !items.is_empty() => format!(
                            "[\n{}\n]",
                            items
                                .iter()
                                .map(|i| format!("  {},", inline(i)))
                                .collect::<Vec<_>>()
                                .join("\n")
                        ),
                        Some(toml::Value::Table(t)) if !t.is_empty() => {
                            inline(&toml::Value::Table(t.clone()))
                        }
                        _ => String::new(),
                    };
                    Field::text(key.key, key.label, &text).rows(5)
                }
            };
            if key.required {
                field = field.required();
            }
            field = field.help(key.help);
            fields.push(field);
            specs.push((key.key.to_string(), key.spec));
        }
        let title = match &mode {
            Mode::New => format!("New {kind}"),
            Mode::Edit(name) => format!("Edit {kind} {name}"),
            Mode::Clone(from) => format!("Clone {kind} {from}"),
        };
        let mut form = Form::new(title, fields);
        if let Mode::Clone(_) = mode {
            let name_key = if kind == Kind::User { "login" } else { "name" };
            if let Some(f) = form.field_mut(name_key) {
                let copy = format!("{}-copy", f.value());
                *f = Field::line(name_key, &f.label.clone(), &copy).required();
            }
        }
        if let Mode::Edit(_) = mode {
            let name_key = if kind == Kind::User { "login" } else { "name" };
            form.notes.push(ratatui::text::Line::from(format!(
                "Editing keeps the {name_key}; use clone (c) for a copy under a new one."
            )));
        }
        let mut this = RecordForm {
            kind,
            mode,
            form,
            specs,
            content_error_at: None,
            legend_open: false,
        };
        if kind == Kind::Template {
            this.form.notes.push(ratatui::text::Line::from(
                "Masks [#NAME#]: F2 lists them with what each holds (beside the form on a wide terminal).",
            ));
        }
        this.check_content();
        this
    }

    fn spec(&self, key: &str) -> Option<Spec> {
        self.specs.iter().find(|(k, _)| k == key).map(|(_, s)| *s)
    }

    /// Checks the field at `index` as it is typed.
    pub fn changed(&mut self, index: usize) {
        let Some(name) = self.form.fields.get(index).map(|f| f.name.clone()) else {
            return;
        };
        self.form.error = None;
        self.form.set_error(&name, None);
        match self.spec(&name) {
            Some(Spec::Int) => {
                let v = self.form.value(&name);
                if !v.trim().is_empty() && v.trim().parse::<u64>().is_err() {
                    self.form
                        .set_error(&name, Some(format!("'{}' is not a whole number", v.trim())));
                }
            }
            Some(Spec::Toml) => {
                if let Err(e) = self.toml_value(&name) {
                    self.form.set_error(&name, Some(e));
                }
            }
            _ => {}
        }
        if matches!(name.as_str(), "content" | "executor" | "variable") {
            self.check_content();
        }
    }

    /// The declared variables of the template being edited, as typed
    /// (name and description).
    fn declared(&self) -> Vec<(String, String)> {
        self.toml_value("variable")
            .ok()
            .flatten()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| {
                let name = v.get("name")?.as_str()?.to_string();
                let about = v
                    .get("description")
                    .or_else(|| v.get("label"))
                    .and_then(|d| d.as_str())
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or("declared; the requester fills it in")
                    .to_string();
                Some((name, about))
            })
            .collect()
    }

    /// Whether the template being edited is a playbook (no masks: its
    /// variables are Ansible's).
    fn is_playbook(&self) -> bool {
        self.form.value("executor") == crate::domain::Executor::AnsiblePlaybook.as_str()
    }

    /// What Gatehouse gives a playbook of its own: the inventory's
    /// variables, before the template's declared ones.
    const PLAYBOOK_GIVES: [(&'static str, &'static str); 3] = [
        ("inventory_hostname", "the device's name"),
        ("ansible_host", "the device's address"),
        ("ansible_user", "the credential's user"),
    ];

    /// The masks a template's content may use: the built-ins with what
    /// each holds, then the template's declared variables. A playbook
    /// uses no masks: Ansible's variables Gatehouse sets, then the
    /// declared ones (extra variables).
    pub fn legend(&self) -> Vec<(String, String)> {
        if self.is_playbook() {
            let mut lines: Vec<(String, String)> = Self::PLAYBOOK_GIVES
                .iter()
                .map(|(name, about)| (format!("{{{{ {name} }}}}"), about.to_string()))
                .collect();
            lines.extend(
                self.declared()
                    .into_iter()
                    .map(|(n, about)| (format!("{{{{ {n} }}}}"), about)),
            );
            return lines;
        }
        let mut lines: Vec<(String, String)> = crate::template::BUILTIN_MASKS
            .iter()
            .map(|m| {
                (
                    format!("[#{m}#]"),
                    crate::template::builtin_meaning(m).to_string(),
                )
            })
            .collect();
        lines.extend(
            self.declared()
                .into_iter()
                .map(|(n, about)| (format!("[#{n}#]"), about)),
        );
        lines
    }

    /// The form; a template's with its mask legend beside it where the
    /// terminal is wide enough, else under it while the content is edited.
    pub fn draw(
        &self,
        frame: &mut ratatui::Frame,
        area: ratatui::layout::Rect,
        theme: &crate::ui::Theme,
    ) {
        use ratatui::layout::{Constraint, Layout};
        use ratatui::text::{Line, Span};
        use ratatui::widgets::{Block, Borders, Clear, Paragraph};
        if self.kind != Kind::Template {
            return self.form.draw(frame, area, theme);
        }
        let legend = self.legend();
        let playbook = self.is_playbook();
        let builtins = if playbook {
            Self::PLAYBOOK_GIVES.len()
        } else {
            crate::template::BUILTIN_MASKS.len()
        };
        // The names' column: as wide as the longest (a playbook's
        // `{{ inventory_hostname }}`), the meaning fitted after it.
        let column = legend
            .iter()
            .map(|(mask, _)| mask.chars().count())
            .max()
            .unwrap_or(18)
            .clamp(18, 26);
        let line = |i: usize, (mask, about): &(String, String), width: usize| {
            let style = if i < builtins {
                theme.text()
            } else {
                theme.ok_style()
            };
            Line::from(vec![
                Span::styled(
                    format!("{:<column$} ", crate::text::fit(mask, column)),
                    style,
                ),
                Span::styled(
                    crate::text::fit(
                        &crate::text::printable(about),
                        width.saturating_sub(column + 1),
                    ),
                    theme.dim(),
                ),
            ])
        };
        // Beside the form only where the form keeps its width (110 columns).
        let wide = area.width >= 166;
        let (form_area, legend_area) = if wide {
            let [form, legend] =
                Layout::horizontal([Constraint::Min(112), Constraint::Length(54)]).areas(area);
            (form, legend)
        } else {
            (area, area)
        };
        self.form.draw(frame, form_area, theme);
        if !wide && !self.legend_open {
            return;
        }
        let rows = legend.len() as u16 + 3;
        let panel = if wide {
            ratatui::layout::Rect::new(
                legend_area.x,
                legend_area.y + legend_area.height.saturating_sub(rows) / 2,
                legend_area.width,
                rows.min(legend_area.height),
            )
        } else {
            // Narrow: over the form until F2 or Esc.
            let height = rows.min(area.height).max(3);
            ratatui::layout::Rect::new(
                area.x,
                area.y + (area.height - height) / 2,
                area.width,
                height,
            )
        };
        let width = panel.width.saturating_sub(2) as usize;
        let mut lines: Vec<Line> = vec![Line::from(Span::styled(
            if playbook {
                "no masks in a playbook: Ansible's, then yours:"
            } else {
                "built-ins (passwords redacted), then variables:"
            },
            theme.dim(),
        ))];
        lines.extend(legend.iter().enumerate().map(|(i, l)| line(i, l, width)));
        frame.render_widget(Clear, panel);
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(if playbook { " Variables " } else { " Masks " })
                    .title_style(theme.title())
                    .title_bottom(Line::from(Span::styled(
                        if wide { "" } else { " F2 or Esc closes " },
                        theme.dim(),
                    ))),
            ),
            panel,
        );
    }

    /// Runs the template checker over the content, as the engine will.
    fn check_content(&mut self) {
        if self.kind != Kind::Template {
            return;
        }
        let name = self.form.value("executor");
        let Some(executor) = Executor::parse(&name) else {
            self.form
                .set_error("executor", Some(format!("no executor named '{name}'")));
            return;
        };
        let variables: Vec<Variable> = self
            .toml_value("variable")
            .ok()
            .flatten()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.get("name").and_then(|n| n.as_str()))
            .map(|n| Variable {
                name: n.to_string(),
                ..Variable::default()
            })
            .collect();
        let content = self.form.value("content");
        match crate::template::check(executor, &content, &variables) {
            Ok(()) => {
                self.content_error_at = None;
                self.form.set_error("content", None);
            }
            Err(e) => {
                self.content_error_at = Some((e.line, e.column));
                self.form.set_error("content", Some(e.to_string()));
            }
        }
    }

    /// The TOML value of a TOML field; `None` when blank.
    fn toml_value(&self, key: &str) -> Result<Option<toml::Value>, String> {
        let text = self.form.value(key);
        if text.trim().is_empty() {
            return Ok(None);
        }
        let table: toml::Table = toml::from_str(&format!("v = {text}")).map_err(|e| {
            let line = e
                .span()
                .map(|s| crate::recordfile::line_of(&text, s.start.saturating_sub(4)));
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            }
        })?;
        Ok(table.get("v").cloned())
    }

    /// The record as a records file, or the fields' errors set.
    pub fn build_items(&mut self) -> Option<Vec<ImportItem>> {
        self.form.error = None;
        for f in &mut self.form.fields {
            f.error = None;
        }
        let mut ok = self.form.check_required();
        let mut table = toml::Table::new();
        for (key, spec) in self.specs.clone() {
            let text = self.form.value(&key);
            let blank = text.trim().is_empty();
            let value = match spec {
                Spec::Line | Spec::Ref(_) | Spec::Choice(_) | Spec::Text if blank => None,
                Spec::Line | Spec::Ref(_) | Spec::Choice(_) => {
                    Some(toml::Value::String(text.trim().to_string()))
                }
                Spec::Text => Some(toml::Value::String(text)),
                Spec::Secret if blank => None,
                Spec::Secret => Some(toml::Value::String(text)),
                Spec::Int if blank => None,
                Spec::Int => match text.trim().parse::<i64>() {
                    Ok(n) => Some(toml::Value::Integer(n)),
                    Err(_) => {
                        self.form.set_error(
                            &key,
                            Some(format!("'{}' is not a whole number", text.trim())),
                        );
                        ok = false;
                        None
                    }
                },
                Spec::Bool => Some(toml::Value::Boolean(text == "true")),
                Spec::List => Some(toml::Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                )),
                Spec::Refs(_) => Some(toml::Value::Array(
                    self.form
                        .field(&key)
                        .map(Field::picked)
                        .unwrap_or_default()
                        .into_iter()
                        .map(toml::Value::String)
                        .collect(),
                )),
                Spec::Pairs => {
                    let mut pairs = toml::Table::new();
                    for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        match part.split_once('=') {
                            Some((k, v)) => {
                                pairs.insert(
                                    k.trim().to_string(),
                                    toml::Value::String(v.trim().to_string()),
                                );
                            }
                            None => {
                                self.form.set_error(
                                    &key,
                                    Some(format!("'{part}': expected NAME=value")),
                                );
                                ok = false;
                            }
                        }
                    }
                    Some(toml::Value::Table(pairs))
                }
                Spec::Toml => match self.toml_value(&key) {
                    Ok(v) => v,
                    Err(e) => {
                        self.form.set_error(&key, Some(e));
                        ok = false;
                        None
                    }
                },
            };
            if let Some(v) = value {
                table.insert(key, v);
            }
        }
        self.check_content();
        if self
            .form
            .field("content")
            .is_some_and(|f| f.error.is_some())
        {
            ok = false;
            self.jump_to_content_error();
        }
        if !ok {
            self.form.focus_first_error();
            return None;
        }
        let mut file = toml::Table::new();
        file.insert(
            self.kind.as_str().to_string(),
            toml::Value::Array(vec![toml::Value::Table(table)]),
        );
        let text = match toml::to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                self.form.error = Some(format!("cannot write the record: {e}"));
                return None;
            }
        };
        let base = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
        match crate::recordfile::parse(&text, &base) {
            Ok(items) => Some(items),
            Err(e) => {
                match e
                    .field
                    .clone()
                    .filter(|(f, _)| self.form.field(f).is_some())
                {
                    Some((field, message)) => {
                        self.form.set_error(&field, Some(message));
                        self.form.focus_first_error();
                    }
                    None => self.form.error = Some(e.to_string()),
                }
                None
            }
        }
    }

    /// Shows the engine's (or the file parser's) refusal: under the field it
    /// names, else over the form.
    /// The engine's refusal of a save: under the field it names, the
    /// content's cursor at the line and column; otherwise above the form.
    pub fn refused(&mut self, failure: &crate::ui::Failure) {
        use crate::engine::EngineError;
        self.form.sending = false;
        if let crate::ui::Failure::Engine(EngineError::Invalid {
            field: Some(field),
            at,
            message,
            ..
        }) = failure
        {
            // A nested field (`variable.WHAT`) lands on its table's field.
            let f = field.split('.').next().unwrap_or(field).to_string();
            if self.form.field(&f).is_some() {
                let text = match at {
                    Some((line, column)) => format!("line {line}, column {column}: {message}"),
                    None => message.clone(),
                };
                self.form.set_error(&f, Some(text));
                if f == "content" {
                    self.content_error_at = *at;
                    self.jump_to_content_error();
                }
                self.form.focus_first_error();
                return;
            }
        }
        self.form.error = Some(failure.to_string());
    }

    /// Takes the content's cursor to where its error is.
    fn jump_to_content_error(&mut self) {
        if let Some((line, column)) = self.content_error_at {
            if let Some(f) = self.form.field_mut("content") {
                f.jump_to(line, column.max(1));
            }
        }
    }
}

/// A TOML value on one line.
fn inline(value: &toml::Value) -> String {
    value.to_string()
}

/// The record as its import-format table.
fn record_table(kind: Kind, record: &Record) -> toml::Table {
    let text = crate::recordfile::print(std::slice::from_ref(record));
    let file: toml::Table = toml::from_str(&text).unwrap_or_default();
    file.get(kind.as_str())
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_table())
        .cloned()
        .unwrap_or_default()
}

impl RecordForm {
    /// Whether a field is a text box (for the key hints).
    pub fn focused_is_text(&self) -> bool {
        self.form
            .fields
            .get(self.form.focus)
            .is_some_and(|f| f.kind == FieldKind::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn names() -> Names {
        let mut n = Names::new();
        n.insert(Kind::Environment, vec!["lab".into(), "prod".into()]);
        n.insert(Kind::System, vec!["web".into()]);
        n
    }

    fn type_text(form: &mut RecordForm, text: &str) {
        for c in text.chars() {
            let code = if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            };
            if let super::super::form::FormKey::Changed(i) =
                form.form.on_key(KeyEvent::new(code, KeyModifiers::NONE))
            {
                form.changed(i);
            }
        }
    }

    #[test]
    fn a_new_device_becomes_one_import_item() {
        let mut f = RecordForm::new(Kind::Device, Mode::New, None, &names());
        assert!(f.build_items().is_none());
        assert_eq!(
            f.form.field("name").unwrap().error.as_deref(),
            Some("Name is required")
        );
        type_text(&mut f, "web-1");
        f.form.focus = 1;
        type_text(&mut f, "10.0.0.5");
        f.form.focus = 5;
        f.form
            .on_key(KeyEvent::new(KeyCode::Right, KeyModifiers::NONE));
        let items = f.build_items().expect("valid");
        let Record::Device(d) = &items[0].record else {
            panic!()
        };
        assert_eq!(
            (d.meta.name.as_str(), d.address.as_str(), d.port),
            ("web-1", "10.0.0.5", 22)
        );
        assert_eq!(d.environment, "prod");
    }

    #[test]
    fn template_content_errors_are_shown_at_their_line_as_typed() {
        let mut f = RecordForm::new(Kind::Template, Mode::New, None, &names());
        type_text(&mut f, "t1");
        f.form.focus = 4;
        type_text(&mut f, "echo fine\necho [#NOPE#]");
        let error = f.form.field("content").unwrap().error.clone().unwrap();
        assert!(
            error.starts_with("line 2, column 6: unknown mask [#NOPE#]"),
            "{error}"
        );
        assert!(f.build_items().is_none());
        assert_eq!(f.form.focus, 4, "the focus goes to the content");
    }

    #[test]
    fn a_refusal_naming_a_field_lands_under_it() {
        use crate::engine::EngineError;
        use crate::ui::Failure;
        let mut f = RecordForm::new(Kind::Device, Mode::New, None, &names());
        f.refused(&Failure::Engine(EngineError::Invalid {
            kind: Kind::Device,
            name: "x".into(),
            line: 1,
            field: Some("address".into()),
            at: None,
            message: "'' is not a host".into(),
        }));
        assert_eq!(
            f.form.field("address").unwrap().error.as_deref(),
            Some("'' is not a host")
        );
        f.refused(&Failure::Engine(EngineError::Denied(
            "'alice' may not manage devices".into(),
        )));
        assert_eq!(
            f.form.error.as_deref(),
            Some("not permitted: 'alice' may not manage devices")
        );
    }
}
