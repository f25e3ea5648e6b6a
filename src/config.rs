//! The configuration file, `config.toml`: where data lives, the server's
//! bounds, the theme. Every key is optional; errors name the key.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The data directory (store, key file, socket, logs).
    pub data_dir: Option<PathBuf>,
    /// The socket `gatehouse serve` listens on.
    pub socket: Option<PathBuf>,
    /// A built-in theme (`dark`, `light`, `high-contrast`) or a theme file (see `themes/`).
    pub theme: Option<PathBuf>,
    /// The time zone times are shown in (an IANA name such as
    /// `Europe/Berlin`); default `TZ`, else the machine's.
    pub timezone: Option<String>,
    /// Seconds without clients before a personal server exits.
    pub idle_exit_secs: Option<u64>,
    /// The OS account a shared server runs as: clients talk to their own
    /// user's server or to this account's, never to another.
    pub service_account: Option<String>,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where `local` templates run.
    #[serde(default)]
    pub local: LocalConfig,
    /// People from the directory: who is let in without a user record.
    #[serde(default)]
    pub people: PeopleConfig,
    /// Approvals: how soon an emergency run must be reviewed.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// Where the records are: the embedded store (default) or a shared
    /// PostgreSQL database.
    #[serde(default)]
    pub store: StoreConfig,
    /// Which environments this jump host's server can reach (on a shared store).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Where the server forwards audit events and operation results.
    #[serde(default)]
    pub forward: Vec<ForwardConfig>,
    /// The TUI's keys: action name = "key" or ["key", "key"].
    #[serde(default)]
    pub keys: BTreeMap<String, KeyList>,
}

/// One key or several, as `[keys]` gives them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    fn keys(&self) -> Vec<String> {
        match self {
            KeyList::One(k) => vec![k.clone()],
            KeyList::Many(k) => k.clone(),
        }
    }
}

/// The `[approvals]` table.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Hours after which an unreviewed emergency run shows as overdue (in
    /// red) on every approver's Dashboard; 24 by default.
    pub review_within_hours: Option<u64>,
}

/// One `[[forward]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// Names the target's position in the audit log.
    pub name: String,
    /// `syslog` or `jsonl`.
    pub kind: String,
    /// Syslog: `udp`, `tcp` or `tcp-octet-counting`.
    pub transport: Option<String>,
    /// Syslog: the collector's host:port.
    pub address: Option<String>,
    /// Syslog: the facility name (default `authpriv`).
    pub facility: Option<String>,
    /// JSON lines: the file to append to.
    pub file: Option<PathBuf>,
}

/// The `[local]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The OS account local templates run as: on a shared server
    /// `gatehouse-local` unless named here; on a personal server its owner
    /// unless named here.
    pub user: Option<String>,
}

impl Config {
    /// Who local templates run as on a server that is `shared` or not and
    /// runs as `me`.
    pub fn local_account(&self, shared: bool, me: &str) -> crate::exec::local::LocalAccount {
        use crate::exec::local::{LocalAccount, DEFAULT_LOCAL_ACCOUNT};
        match self.local.user.as_deref() {
            Some(user) if user == me => LocalAccount::Own,
            Some(user) => LocalAccount::Named(user.to_string()),
            None if shared => LocalAccount::Named(DEFAULT_LOCAL_ACCOUNT.to_string()),
            None => LocalAccount::Own,
        }
    }
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
    /// Connections one OS user may hold open to the server at once.
    pub connections_per_user: Option<usize>,
}

/// A configuration problem, naming the key (and line, when the file says).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// `[people]`: members of these OS groups use Gatehouse without being
/// imported; their user is made at their first connection with
/// `default_role` (User unless said), and their groups' roles apply.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleConfig {
    #[serde(default)]
    pub admit_groups: Vec<String>,
    pub default_role: Option<String>,
}

/// `[store]`: `url = "postgresql://…"` keeps the records in a PostgreSQL
/// database that several servers (one per jump host) share; without it,
/// the embedded store in the data directory.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: Option<String>,
    /// Seconds after which a server of a shared store that stopped
    /// renewing is taken for dead and its work taken over (default 20).
    pub lease_secs: Option<u64>,
}

/// `[cluster]`: `environments = ["eu-prod"]` makes this server run only
/// operations on devices of those environments (default: all); a server
/// that reaches the others runs the rest.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default)]
    pub environments: Vec<String>,
}

/// The service account the install instructions create.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "gatehouse";

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
        // An empty name (`GATEHOUSE_CONFIG=`) names no file.
        let named = named.filter(|p| !p.as_os_str().is_empty());
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
        positive(
            "approvals.review_within_hours",
            self.approvals.review_within_hours,
        )?;
        positive(
            "limits.connections_per_user",
            l.connections_per_user.map(|v| v as u64),
        )?;
        if l.output_cap.is_some_and(|c| c < 1024) {
            return Err("key `limits.output_cap` must be at least 1024 bytes".into());
        }
        self.forward_targets()?;
        self.keymap()?;
        if let Some(zone) = &self.timezone {
            crate::domain::zone::parse_zone(zone).map_err(|e| format!("key `timezone`: {e}"))?;
        }
        if let Some(theme) = &self.theme {
            crate::ui::Theme::load(&theme.to_string_lossy())
                .map_err(|e| format!("key `theme`: {e}"))?;
        }
        Ok(())
    }

    /// The zone this process shows times in: the `timezone` key, else the
    /// machine's.
    pub fn view_zone(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|z| crate::domain::zone::parse_zone(z).ok())
            .unwrap_or_else(crate::domain::zone::machine_zone)
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
            review_within: self
                .approvals
                .review_within_hours
                .map(|h| std::time::Duration::from_secs(h * 3600))
                .unwrap_or(d.review_within),
            connect_timeout: self
                .limits
                .connect_timeout_secs
                .map(std::time::Duration::from_secs)
                .unwrap_or(d.connect_timeout),
            ..d
        }
    }

    /// The forwarding targets, checked: errors name the table and the key.
    pub fn forward_targets(&self) -> Result<Vec<crate::forward::Target>, String> {
        use crate::forward::{syslog, Sink, Target, Transport};
        let mut targets: Vec<Target> = Vec::new();
        for (index, f) in self.forward.iter().enumerate() {
            let at = format!("forward[{}] ({})", index + 1, f.name);
            if f.name.trim().is_empty() {
                return Err(format!(
                    "forward[{}]: key `name` must not be empty",
                    index + 1
                ));
            }
            if targets.iter().any(|t| t.name == f.name) {
                return Err(format!("{at}: key `name`: another target has this name"));
            }
            let sink = match f.kind.as_str() {
                "syslog" => {
                    let transport = f.transport.as_deref().unwrap_or("tcp");
                    let transport = Transport::parse(transport).ok_or_else(|| {
                        format!(
                            "{at}: key `transport`: '{transport}' is not one of {}",
                            Transport::NAMES.join(", ")
                        )
                    })?;
                    let address = f.address.clone().ok_or_else(|| {
                        format!("{at}: key `address` is required for syslog (host:port)")
                    })?;
                    if !address.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                    }) {
                        return Err(format!("{at}: key `address`: '{address}' is not host:port"));
                    }
                    let facility = f.facility.as_deref().unwrap_or("authpriv");
                    let facility = syslog::facility(facility).ok_or_else(|| {
                        format!(
                            "{at}: key `facility`: '{facility}' is not one of {}",
                            syslog::FACILITIES.map(|(n, _)| n).join(", ")
                        )
                    })?;
                    if f.file.is_some() {
                        return Err(format!("{at}: key `file` is for kind = \"jsonl\""));
                    }
                    Sink::Syslog {
                        transport,
                        address,
                        facility,
                    }
                }
                "jsonl" => {
                    let file = f
                        .file
                        .clone()
                        .ok_or_else(|| format!("{at}: key `file` is required for jsonl"))?;
                    if f.address.is_some() || f.transport.is_some() || f.facility.is_some() {
                        return Err(format!(
                            "{at}: keys `address`, `transport` and `facility` are for kind = \"syslog\""
                        ));
                    }
                    Sink::JsonLines { file }
                }
                other => {
                    return Err(format!(
                        "{at}: key `kind`: '{other}' is not one of syslog, jsonl"
                    ))
                }
            };
            targets.push(Target {
                name: f.name.clone(),
                sink,
            });
        }
        Ok(targets)
    }

    /// The TUI's keys: the defaults with `[keys]` applied.
    pub fn keymap(&self) -> Result<crate::ui::Keymap, String> {
        let overrides = self
            .keys
            .iter()
            .map(|(action, keys)| (action.clone(), keys.keys()))
            .collect();
        crate::ui::Keymap::with(&overrides)
    }

    /// The theme in force: `--theme`, else the file's, else the dark one;
    /// no colours at all when `NO_COLOR` is set.
    pub fn theme(&self, flag: Option<&str>) -> Result<crate::ui::Theme, String> {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Ok(crate::ui::Theme::no_color());
        }
        match flag {
            Some(spec) => crate::ui::Theme::load(spec).map_err(|e| format!("--theme: {e}")),
            None => Ok(self
                .theme
                .as_ref()
                .and_then(|p| crate::ui::Theme::load(&p.to_string_lossy()).ok())
                .unwrap_or_default()),
        }
    }
}
