//! Colours, from a TOML theme file.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::str::FromStr;

const DEFAULT: &str = include_str!("../../themes/default.toml");

/// The themes built in, by name; any other name is a theme file's path.
const BUILT_IN: [(&str, &str); 3] = [
    ("dark", DEFAULT),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

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
    /// No colours at all (NO_COLOR): emphasis by reverse video and bold only.
    pub mono: bool,
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
            mono: false,
        })
    }

    /// A built-in theme by name (`dark`, `light`, `high-contrast`), or a theme file.
    pub fn load(spec: &str) -> Result<Theme, String> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(name, _)| *name == spec) {
            return Theme::parse(text);
        }
        let text = std::fs::read_to_string(spec).map_err(|e| {
            format!(
                "{spec}: {e} (built-in themes: {})",
                BUILT_IN.map(|(n, _)| n).join(", ")
            )
        })?;
        Theme::parse(&text).map_err(|e| format!("{spec}: {e}"))
    }

    /// The theme without colours, for `NO_COLOR` (no-color.org).
    pub fn no_color() -> Theme {
        Theme {
            accent: Color::Reset,
            text: Color::Reset,
            dim: Color::Reset,
            selected_fg: Color::Reset,
            selected_bg: Color::Reset,
            ok: Color::Reset,
            warn: Color::Reset,
            error: Color::Reset,
            mono: true,
        }
    }

    /// Emphasis in a colour, or in bold without colours.
    fn coloured(&self, color: Color) -> Style {
        if self.mono {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(color)
        }
    }

    /// Text in one of the theme's colours (plain without colours).
    pub fn fg(&self, color: Color) -> Style {
        if self.mono {
            Style::default()
        } else {
            Style::default().fg(color)
        }
    }

    pub fn title(&self) -> Style {
        self.coloured(self.accent).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        if self.mono {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().fg(self.selected_fg).bg(self.selected_bg)
        }
    }
    pub fn dim(&self) -> Style {
        if self.mono {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default().fg(self.dim)
        }
    }
    pub fn text(&self) -> Style {
        if self.mono {
            Style::default()
        } else {
            Style::default().fg(self.text)
        }
    }
    pub fn ok_style(&self) -> Style {
        if self.mono {
            Style::default()
        } else {
            Style::default().fg(self.ok)
        }
    }
    pub fn warn_style(&self) -> Style {
        self.coloured(self.warn)
    }
    pub fn error_style(&self) -> Style {
        self.coloured(self.error)
    }
}

#[cfg(test)]
mod contrast_tests {
    use super::*;

    /// WCAG's relative luminance of an RGB colour.
    fn luminance(c: Color) -> f64 {
        let Color::Rgb(r, g, b) = c else {
            panic!("not an RGB colour: {c:?}")
        };
        let lin = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    /// The light theme's dim text stays readable on a white background
    /// (WCAG AA: a contrast of at least 4.5).
    #[test]
    fn the_light_themes_dim_colour_reads_on_white() {
        let theme = Theme::load("light").unwrap();
        let contrast = (1.0 + 0.05) / (luminance(theme.dim) + 0.05);
        assert!(contrast >= 4.5, "contrast {contrast:.2}");
    }
}
