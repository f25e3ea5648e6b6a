//! Colours, from a TOML theme file.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::str::FromStr;

const DEFAULT: &str = include_str!("../../themes/default.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    accent: String,
    text: String,
    dim: String,
    selected_fg: String,
    selected_bg: String,
    ok: String,
    warn: String,
    error: String,
}

/// The colours every screen draws with.
#[derive(Clone, Debug)]
pub struct Theme {
    pub accent: Color,
    pub text: Color,
    pub dim: Color,
    pub selected_fg: Color,
    pub selected_bg: Color,
    pub ok: Color,
    pub warn: Color,
    pub error: Color,
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::parse(DEFAULT).expect("the built-in theme parses")
    }
}

impl Theme {
    /// Parses a theme file; errors name the key.
    pub fn parse(text: &str) -> Result<Theme, String> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let color = |key: &str, v: &str| {
            Color::from_str(v).map_err(|_| format!("theme key `{key}`: '{v}' is not a colour"))
        };
        Ok(Theme {
            accent: color("accent", &file.accent)?,
            text: color("text", &file.text)?,
            dim: color("dim", &file.dim)?,
            selected_fg: color("selected_fg", &file.selected_fg)?,
            selected_bg: color("selected_bg", &file.selected_bg)?,
            ok: color("ok", &file.ok)?,
            warn: color("warn", &file.warn)?,
            error: color("error", &file.error)?,
        })
    }

    pub fn title(&self) -> Style {
        Style::default()
            .fg(self.accent)
            .add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().fg(self.selected_fg).bg(self.selected_bg)
    }
    pub fn dim(&self) -> Style {
        Style::default().fg(self.dim)
    }
    pub fn text(&self) -> Style {
        Style::default().fg(self.text)
    }
}
