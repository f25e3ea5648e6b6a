//! The configuration file, `config.toml`: where data lives, the server's
//! bounds, the theme. Every key is optional; errors name the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The data directory (store, key file, socket, logs).
    pub data_dir: Option<PathBuf>,
    /// The socket `gatehouse serve` listens on.
    pub socket: Option<PathBuf>,
    /// A theme file (see `themes/default.toml`).
    pub theme: Option<PathBuf>,
    /// Seconds without clients before a personal server exits.
    pub idle_exit_secs: Option<u64>,
    #[serde(default)]
    pub limits: LimitsConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Operations running at once across the server.
    pub parallelism: Option<usize>,
    /// SSH handshakes in flight to one address:port.
    pub handshakes_per_address: Option<usize>,
    /// Output stored per operation, in bytes.
    pub output_cap: Option<u64>,
    /// Seconds to connect and authenticate.
    pub connect_timeout_secs: Option<u64>,
}

/// A configuration problem, naming the key (and line, when the file says).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// Where the configuration is looked for when none is named.
pub fn default_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "gatehouse")
        .map(|d| d.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from("gatehouse.toml"))
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| crate::recordfile::line_of(&text, s.start));
            error(match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        config.check().map_err(error)?;
        Ok(config)
    }

    /// The configuration in force: the named file, else the default one if
    /// it exists, else the defaults.
    pub fn find(named: Option<&Path>) -> Result<Config, ConfigError> {
        match named {
            Some(p) => Config::load(p),
            None if default_path().exists() => Config::load(&default_path()),
            None => Ok(Config::default()),
        }
    }

    fn check(&self) -> Result<(), String> {
        let l = &self.limits;
        let positive = |key: &str, v: Option<u64>| match v {
            Some(0) => Err(format!("key `{key}` must be at least 1")),
            _ => Ok(()),
        };
        positive("limits.parallelism", l.parallelism.map(|v| v as u64))?;
        positive(
            "limits.handshakes_per_address",
            l.handshakes_per_address.map(|v| v as u64),
        )?;
        positive("limits.connect_timeout_secs", l.connect_timeout_secs)?;
        if l.output_cap.is_some_and(|c| c < 1024) {
            return Err("key `limits.output_cap` must be at least 1024 bytes".into());
        }
        if let Some(theme) = &self.theme {
            let text = std::fs::read_to_string(theme)
                .map_err(|e| format!("key `theme`: {}: {e}", theme.display()))?;
            crate::ui::Theme::parse(&text)
                .map_err(|e| format!("key `theme`: {}: {e}", theme.display()))?;
        }
        Ok(())
    }

    /// The server's bounds, defaults where the file says nothing.
    pub fn limits(&self) -> crate::exec::Limits {
        let d = crate::exec::Limits::default();
        crate::exec::Limits {
            server_parallelism: self.limits.parallelism.unwrap_or(d.server_parallelism),
            handshakes_per_address: self
                .limits
                .handshakes_per_address
                .unwrap_or(d.handshakes_per_address),
            output_cap: self.limits.output_cap.unwrap_or(d.output_cap),
            connect_timeout: self
                .limits
                .connect_timeout_secs
                .map(std::time::Duration::from_secs)
                .unwrap_or(d.connect_timeout),
            ..d
        }
    }

    /// The theme in force.
    pub fn theme(&self) -> crate::ui::Theme {
        self.theme
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| crate::ui::Theme::parse(&t).ok())
            .unwrap_or_default()
    }
}
