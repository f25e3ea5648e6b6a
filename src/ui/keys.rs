//! What each key does: actions with default keys, any of which the
//! configuration's `[keys]` table may rebind. Screens ask "is this key the
//! one for that action?", and the footer and `?` show the keys in force.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;

/// Everything a key can do somewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Command,
    Filter,
    NextTab,
    PrevTab,
    Refresh,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    NextKind,
    PrevKind,
    Open,
    Follow,
    CancelOperation,
    Approve,
    Reject,
    New,
    Edit,
    Clone,
    Toggle,
    Delete,
    Trust,
    Revisions,
    SearchLog,
    Export,
    ChangePassword,
    Reveal,
    DebugTrace,
    Connect,
    Sessions,
    Watch,
    EndSession,
    Narrow,
    Explain,
    Mine,
    Rerun,
    SearchNext,
    SearchPrev,
    LogTop,
    LogBottom,
    LogWrap,
    LogLeft,
    LogRight,
    SaveLog,
    ReleaseMouse,
    DryRun,
}

impl Action {
    pub const ALL: [Action; 50] = [
        Action::Quit,
        Action::Help,
        Action::Command,
        Action::Filter,
        Action::NextTab,
        Action::PrevTab,
        Action::Refresh,
        Action::Down,
        Action::Up,
        Action::PageDown,
        Action::PageUp,
        Action::Top,
        Action::Bottom,
        Action::NextKind,
        Action::PrevKind,
        Action::Open,
        Action::Follow,
        Action::CancelOperation,
        Action::Approve,
        Action::Reject,
        Action::New,
        Action::Edit,
        Action::Clone,
        Action::Toggle,
        Action::Delete,
        Action::Trust,
        Action::Revisions,
        Action::SearchLog,
        Action::Export,
        Action::ChangePassword,
        Action::Reveal,
        Action::DebugTrace,
        Action::Connect,
        Action::Sessions,
        Action::Watch,
        Action::EndSession,
        Action::Narrow,
        Action::Explain,
        Action::Mine,
        Action::Rerun,
        Action::SearchNext,
        Action::SearchPrev,
        Action::LogTop,
        Action::LogBottom,
        Action::LogWrap,
        Action::LogLeft,
        Action::LogRight,
        Action::SaveLog,
        Action::ReleaseMouse,
        Action::DryRun,
    ];

    /// The name the configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Command => "command",
            Action::Filter => "filter",
            Action::NextTab => "next_tab",
            Action::PrevTab => "prev_tab",
            Action::Refresh => "refresh",
            Action::Down => "down",
            Action::Up => "up",
            Action::PageDown => "page_down",
            Action::PageUp => "page_up",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::NextKind => "next_kind",
            Action::PrevKind => "prev_kind",
            Action::Open => "open",
            Action::Follow => "follow",
            Action::CancelOperation => "cancel_operation",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::New => "new",
            Action::Edit => "edit",
            Action::Clone => "clone",
            Action::Toggle => "toggle",
            Action::Delete => "delete",
            Action::Trust => "trust",
            Action::Revisions => "revisions",
            Action::SearchLog => "search_log",
            Action::Export => "export",
            Action::ChangePassword => "change_password",
            Action::Reveal => "reveal",
            Action::DebugTrace => "debug_trace",
            Action::Connect => "connect",
            Action::Sessions => "sessions",
            Action::Watch => "watch",
            Action::EndSession => "end_session",
            Action::Narrow => "narrow",
            Action::Explain => "explain",
            Action::Mine => "my_requests",
            Action::Rerun => "rerun",
            Action::SearchNext => "search_next",
            Action::SearchPrev => "search_prev",
            Action::LogTop => "log_top",
            Action::LogBottom => "log_bottom",
            Action::LogWrap => "log_wrap",
            Action::LogLeft => "log_left",
            Action::LogRight => "log_right",
            Action::SaveLog => "save_log",
            Action::ReleaseMouse => "release_mouse",
            Action::DryRun => "dry_run",
        }
    }

    fn defaults(self) -> &'static [&'static str] {
        match self {
            Action::Quit => &["q", "ctrl-c"],
            Action::Help => &["?"],
            Action::Command => &[":"],
            Action::Filter => &["/"],
            Action::NextTab => &["tab"],
            Action::PrevTab => &["shift-tab"],
            Action::Refresh => &["ctrl-r", "f5"],
            Action::Down => &["down", "j"],
            Action::Up => &["up", "k"],
            Action::PageDown => &["pagedown"],
            Action::PageUp => &["pageup"],
            Action::Top => &["home", "g"],
            Action::Bottom => &["end", "G"],
            Action::NextKind => &["right", "l", "]"],
            Action::PrevKind => &["left", "h", "["],
            Action::Open => &["enter"],
            Action::Follow => &["f"],
            Action::CancelOperation => &["c"],
            Action::Approve => &["a"],
            Action::Reject => &["r"],
            Action::New => &["n"],
            Action::Edit => &["e"],
            Action::Clone => &["c"],
            Action::Toggle => &["d"],
            Action::Delete => &["D"],
            Action::Trust => &["t"],
            Action::Revisions => &["v"],
            Action::SearchLog => &["s"],
            Action::Export => &["x"],
            Action::ChangePassword => &["p"],
            Action::Reveal => &["R"],
            Action::DebugTrace => &["b"],
            Action::Connect => &["C"],
            Action::Sessions => &["S"],
            Action::Watch => &["w"],
            Action::EndSession => &["K"],
            Action::Narrow => &["u"],
            Action::Explain => &["y"],
            Action::Mine => &["m"],
            Action::Rerun => &["R"],
            Action::SearchNext => &["n"],
            Action::SearchPrev => &["N"],
            // As in less(1): the first and the last line.
            Action::LogTop => &["<"],
            Action::LogBottom => &[">"],
            Action::LogWrap => &["W"],
            Action::LogLeft => &["left"],
            Action::LogRight => &["right"],
            Action::SaveLog => &["o"],
            Action::ReleaseMouse => &["M"],
            Action::DryRun => &["d"],
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// One key with its modifiers, as the configuration writes it: `a`, `G`,
/// `ctrl-r`, `shift-tab`, `enter`, `f5`, `pageup`…
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
}

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            one if one.chars().count() == 1 && !one.chars().any(char::is_control) => {
                KeyCode::Char(one.chars().next().unwrap_or(' '))
            }
            _ => {
                return Err(format!(
                    "{text:?} is not a key (a character, or ctrl-/alt- with one, or enter, esc, tab, shift-tab, space, up, down, left, right, home, end, pageup, pagedown, f1…f12)"
                ))
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    fn matches(&self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let alt = event.modifiers.contains(KeyModifiers::ALT);
        let code = match (self.code, event.code) {
            // Terminals differ in whether Shift comes with an upper-case letter.
            (KeyCode::Char(a), KeyCode::Char(b)) => a == b,
            (a, b) => a == b,
        };
        code && ctrl == self.ctrl && alt == self.alt
    }

    /// How the footer and help show it.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Enter => "Enter".to_string(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Char(' ') => "Space".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::Char(c) => c.to_string(),
            other => format!("{other:?}"),
        };
        match (self.ctrl, self.alt) {
            (true, _) => format!("Ctrl-{}", base.to_uppercase()),
            (_, true) => format!("Alt-{base}"),
            _ => base,
        }
    }
}

/// The keys in force for every action.
#[derive(Clone, Debug)]
pub struct Keymap {
    bindings: BTreeMap<Action, Vec<Key>>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        let bindings = Action::ALL
            .into_iter()
            .map(|a| {
                let keys = a
                    .defaults()
                    .iter()
                    .filter_map(|k| Key::parse(k).ok())
                    .collect();
                (a, keys)
            })
            .collect();
        Keymap { bindings }
    }
}

impl Keymap {
    /// The defaults with the configuration's `[keys]` table applied; an
    /// error names the action and the key.
    pub fn with(overrides: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for (name, keys) in overrides {
            let action = Action::parse(name).ok_or_else(|| {
                format!(
                    "key `keys.{name}`: no such action; one of {}",
                    Action::ALL.map(|a| a.name()).join(", ")
                )
            })?;
            if keys.is_empty() {
                return Err(format!("key `keys.{name}`: give at least one key"));
            }
            let parsed = keys
                .iter()
                .map(|k| Key::parse(k).map_err(|e| format!("key `keys.{name}`: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            map.bindings.insert(action, parsed);
        }
        Ok(map)
    }

    /// Whether `event` is one of the keys for `action`.
    pub fn is(&self, event: &KeyEvent, action: Action) -> bool {
        self.bindings
            .get(&action)
            .is_some_and(|keys| keys.iter().any(|k| k.matches(event)))
    }

    /// The keys for `action`, as the footer shows them ("↓/j").
    pub fn label(&self, action: Action) -> String {
        self.bindings
            .get(&action)
            .map(|keys| keys.iter().map(Key::label).collect::<Vec<_>>().join("/"))
            .unwrap_or_default()
    }

    /// The first key for `action` only, for compact footers.
    pub fn first(&self, action: Action) -> String {
        self.bindings
            .get(&action)
            .and_then(|keys| keys.first())
            .map(Key::label)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    /// `assets/config.toml` says it lists every key: each action is there
    /// with its default.
    #[test]
    fn the_example_configuration_lists_every_action_with_its_default() {
        let text = include_str!("../../assets/config.toml");
        let config: toml::Table = toml::from_str(text).unwrap();
        let keys = config["keys"].as_table().unwrap();
        for action in Action::ALL {
            let listed: Vec<String> = match &keys.get(action.name()) {
                Some(toml::Value::String(s)) => vec![s.clone()],
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => panic!("assets/config.toml does not list `{}`", action.name()),
            };
            assert_eq!(listed, action.defaults(), "{}", action.name());
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let map = Keymap::default();
        assert!(map.is(&press(KeyCode::Char('q'), KeyModifiers::NONE), Action::Quit));
        assert!(map.is(
            &press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Action::Quit
        ));
        assert!(!map.is(&press(KeyCode::Char('c'), KeyModifiers::NONE), Action::Quit));
        assert!(map.is(
            &press(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Action::Bottom
        ));
        let mut o = BTreeMap::new();
        o.insert(
            "approve".to_string(),
            vec!["y".to_string(), "ctrl-a".to_string()],
        );
        let map = Keymap::with(&o).unwrap();
        assert!(map.is(
            &press(KeyCode::Char('y'), KeyModifiers::NONE),
            Action::Approve
        ));
        assert!(!map.is(
            &press(KeyCode::Char('a'), KeyModifiers::NONE),
            Action::Approve
        ));
        assert_eq!(map.label(Action::Approve), "y/Ctrl-A");
    }

    #[test]
    fn bad_bindings_name_the_action() {
        let mut o = BTreeMap::new();
        o.insert("approve".to_string(), vec!["ctrl-".to_string()]);
        assert!(Keymap::with(&o)
            .unwrap_err()
            .starts_with("key `keys.approve`: \"ctrl-\" is not a key"));
        let mut o = BTreeMap::new();
        o.insert("launch".to_string(), vec!["x".to_string()]);
        assert!(Keymap::with(&o)
            .unwrap_err()
            .starts_with("key `keys.launch`: no such action"));
    }
}
