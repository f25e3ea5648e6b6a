//! The command line: one file per verb group. Every verb is a client of the
//! engine; none opens the store itself.

#[macro_use]
pub mod out;
mod approvals;
mod audit;
mod credentials;
mod operations;
mod policies;
mod records;
mod search;
mod service;
mod sessions;

use crate::client::Client;
use clap::{Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr};
use std::path::PathBuf;

/// Gatehouse: run privileged tasks on remote machines with least privilege,
/// approvals and a complete audit trail. Without a command, starts the TUI.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    /// The data directory (store, key file, socket, logs).
    #[arg(long, global = true, env = "GATEHOUSE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Connect to the server on this socket instead of the data directory's.
    #[arg(long, global = true, env = "GATEHOUSE_SOCKET", value_name = "SOCKET")]
    pub connect: Option<PathBuf>,
    /// Act as this Gatehouse user (only the server's own OS account may).
    #[arg(long = "as", global = true, value_name = "LOGIN")]
    pub as_login: Option<String>,
    /// The configuration file (default: ~/.config/gatehouse/config.toml, if it exists).
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The OS account a shared server runs as; a client talks to no other
    /// server but its own user's (config: service_account, "gatehouse").
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_SERVICE_ACCOUNT",
        value_name = "LOGIN"
    )]
    pub service_account: Option<String>,
    /// The TUI's theme: dark, light, high-contrast, or a theme file (NO_COLOR turns colours off).
    #[arg(long, global = true, value_name = "NAME|FILE")]
    pub theme: Option<String>,
    #[command(subcommand)]
    pub command: Option<Verb>,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Run the server in the foreground (a shared jump host runs this under a service account).
    Serve {
        /// The socket to listen on (default: inside the data directory).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Only members of this OS group may open the socket (default: every local user,
        /// who must still be a Gatehouse user).
        #[arg(long, value_name = "NAME")]
        group: Option<String>,
        /// A personal server started by a client: exits when idle, only its owner may connect.
        #[arg(long)]
        personal: bool,
        /// Seconds without clients before a personal server exits (config: idle_exit_secs, 5).
        #[arg(long, value_name = "SECS")]
        idle_exit: Option<u64>,
        /// Operations running at once across the server (config: limits.parallelism, 256).
        #[arg(long, value_name = "N")]
        parallelism: Option<usize>,
        /// SSH handshakes in flight to one address:port (config: limits.handshakes_per_address, 10).
        #[arg(long, value_name = "N")]
        handshakes_per_address: Option<usize>,
        /// Output stored per operation, in bytes (config: limits.output_cap, 16 MiB).
        #[arg(long, value_name = "BYTES")]
        output_cap: Option<u64>,
        /// Keep the records in this PostgreSQL database, shared with the other
        /// jump hosts' servers (config: store.url; default: the embedded store).
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// The configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigVerb,
    },
    /// Stop the personal server of this data directory.
    Shutdown,
    /// Show who the server takes you for.
    Whoami,
    /// The servers of a shared store (one per jump host): who is up, since
    /// when, last renewal, the operations each holds (Superusers).
    Cluster {
        #[command(subcommand)]
        command: ClusterVerb,
    },
    /// Create or update records from a TOML file, all or nothing.
    Import {
        /// The records file.
        file: PathBuf,
    },
    /// Write a consistent backup of the store while the server runs (secrets stay sealed;
    /// back up the key file `store.key` separately).
    Backup { file: PathBuf },
    /// Load a backup into an empty data directory (no server may be running on it).
    Restore { file: PathBuf },
    /// Move a store between backends (servers stopped).
    Store {
        #[command(subcommand)]
        command: StoreVerb,
    },
    /// Print every record you may see in the import format (secrets are never printed).
    Export,
    /// Load a realistic demo set: environments, devices, templates, tasks, a policy.
    Demo,
    /// List records of a kind (environments, devices, templates, tasks, users, roles…).
    List {
        kind: String,
        /// One JSON object per record.
        #[arg(long)]
        json: bool,
    },
    /// Copy a record under a new name (templates, tasks, roles, policies, devices…).
    Clone {
        kind: String,
        from: String,
        to: String,
    },
    /// Delete a record that nothing uses.
    Delete { kind: String, name: String },
    /// Enable a record.
    Enable { kind: String, name: String },
    /// Disable a record (always allowed, even while in use).
    Disable { kind: String, name: String },
    /// Show a template's revisions.
    Revisions { template: String },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditVerb,
    },
    /// Request a run of a task: one operation per device. `request show
    /// ID [--json]` shows what a request will run, device by device;
    /// `request check ID [--wait]` runs a pending request's playbook as a
    /// dry run (--check --diff) for its requester and approvers to see.
    Request {
        task: String,
        /// With `show`: the request to show.
        #[arg(value_name = "ID")]
        show_id: Option<String>,
        /// With `show`: one JSON object.
        #[arg(long)]
        json: bool,
        /// Only these of the task's devices (repeatable).
        #[arg(long = "device", value_name = "NAME")]
        devices: Vec<String>,
        /// A value for a template variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        justification: Option<String>,
        #[arg(long = "governance-id", value_name = "ID")]
        governance_id: Option<String>,
        /// Start at this time (RFC 3339, or +5m); the requested window opens then.
        #[arg(long, alias = "start", value_name = "TIME")]
        at: Option<String>,
        /// How long the requested window stays open (30m, 2h, 1d); a day by default.
        #[arg(long, value_name = "DUR")]
        duration: Option<String>,
        /// Run at once under the policy's emergency access, without approval.
        #[arg(long)]
        emergency: bool,
        /// A current TOTP code, where the policy requires MFA and nobody approves
        /// (it needs no approval, or --emergency).
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
        /// Stream the output as `[device] line` and exit 0 only if every operation succeeded.
        #[arg(long)]
        wait: bool,
        /// Authorise the task's schedule instead of running it now: its runs
        /// happen at the schedule's times under this request (policy,
        /// approval, MFA as for a run) until --duration (90 days by default).
        #[arg(long, conflicts_with_all = ["wait", "at", "emergency", "devices", "vars"])]
        schedule: bool,
        /// File it for approval and run its playbook at once as a dry run
        /// (--check --diff) for the approvers to see; refused where it would
        /// run without approval.
        #[arg(long, conflicts_with_all = ["schedule", "emergency"])]
        check: bool,
        /// The change this run is for (its code in your change process).
        #[arg(long, value_name = "CODE")]
        change: Option<String>,
        /// A command line the change expects (`*` and `?` match;
        /// repeatable): the template's other lines are reported as
        /// deviations when the request is filed.
        #[arg(long = "plan", value_name = "PATTERN")]
        plan: Vec<String>,
    },
    /// Run again what an operation or a request ran, as a new request
    /// through the same policy and approval path (pre-filled from it).
    Rerun {
        /// An operation's or a request's id.
        id: String,
        /// Only the devices whose operation did not succeed.
        #[arg(long)]
        failed: bool,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        justification: Option<String>,
        #[arg(long = "governance-id", value_name = "ID")]
        governance_id: Option<String>,
        /// Stream the output and exit 0 only if every operation succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// Queued and running operations (or those in one state).
    Ops {
        #[arg(long)]
        state: Option<String>,
    },
    /// An operation's output.
    Logs {
        op: String,
        /// Keep printing until the operation ends.
        #[arg(long, short)]
        follow: bool,
        /// With the debug trace: SSH negotiation, authentication, each
        /// expect step, retries and timings (needs view-execution-debug).
        #[arg(long)]
        debug: bool,
    },
    /// Stop a queued or running operation.
    Cancel { op: String },
    /// Every operation ever run, newest first.
    History {
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        state: Option<String>,
        /// RFC 3339, or a duration back from now (30m, 2h, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Text in the task, device, requester, template or error (any case).
        #[arg(long)]
        text: Option<String>,
        /// Only operations whose output holds this text (any case; `search`
        /// prints the lines).
        #[arg(long)]
        output: Option<String>,
        /// At most this many operations (the newest); it says so on standard error when it stops there.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        /// Every matching operation, read page by page (--limit is the page size).
        #[arg(long)]
        all: bool,
        /// One JSON object per operation (as --format jsonl).
        #[arg(long)]
        json: bool,
        /// table (the default), jsonl or csv.
        #[arg(long, value_enum)]
        format: Option<operations::HistoryFormat>,
    },
    /// Lines of stored output holding TEXT (any case), across the
    /// operations you may see, newest first, printed as they are found.
    Search {
        text: String,
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// RFC 3339, or a duration back from now (30m, 2h, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Stop after this many matching lines.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// One JSON object per matching line.
        #[arg(long)]
        json: bool,
    },
    /// Pending requests you may decide now (and emergency notices).
    Queue {
        #[arg(long)]
        json: bool,
    },
    /// Approve the current level of a request.
    /// Approve requests at their current level: one or several, with one
    /// comment and one TOTP code (asked for on a terminal when absent).
    Approve {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[arg(long)]
        comment: Option<String>,
        /// Narrow the requested window to end at this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// A current TOTP code, where the policy requires MFA.
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
    },
    /// Reject requests; each ends there. The comment says why (asked for
    /// on a terminal when absent).
    Reject {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Review emergency runs after the fact (an approver of their policy):
    /// --accept, or --flag for follow-up, always with a comment.
    Review {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[arg(long, conflicts_with = "flag", required_unless_present = "flag")]
        accept: bool,
        #[arg(long)]
        flag: bool,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Scheduled tasks: who authorised each, until when, or why it does not run.
    Schedules {
        #[arg(long)]
        json: bool,
    },
    /// Requests, newest first.
    Requests {
        /// Only your own.
        #[arg(long)]
        mine: bool,
        #[arg(long)]
        json: bool,
    },
    /// Just-in-time grants not yet revoked; `jit revoke ID` ends one now.
    Jit {
        #[command(subcommand)]
        command: Option<JitVerb>,
        /// Revoked grants too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserVerb,
    },
    /// Roles.
    Role {
        #[command(subcommand)]
        command: RoleVerb,
    },
    /// How the access policies judge a request.
    Policy {
        #[command(subcommand)]
        command: PolicyVerb,
    },
    /// Devices' host keys.
    Device {
        #[command(subcommand)]
        command: DeviceVerb,
    },
    /// Credentials' passwords: change, reconcile, reveal, status.
    Credential {
        #[command(subcommand)]
        command: credentials::CredentialVerb,
    },
    /// Open a privileged shell on a device: logged in by the server with a
    /// credential you never see, recorded and audited.
    Connect(sessions::ConnectArgs),
    /// Sessions you may see (open ones; --all for every one).
    Sessions {
        #[arg(long)]
        all: bool,
        /// Those whose recorded output (as shown: redacted) contains this,
        /// open or ended.
        #[arg(long)]
        text: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A session's recording.
    Session {
        #[command(subcommand)]
        command: sessions::SessionVerb,
    },
    /// The OS groups roles, policies and admission name: what each gives
    /// and who is in it (needs view of users).
    Groups {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterVerb {
    /// List the servers.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreVerb {
    /// Copy a whole store into an empty one: a data directory (its embedded
    /// store) to a PostgreSQL database shared by several jump hosts, or back.
    /// FROM and TO are a data directory, a PostgreSQL URL without a password,
    /// or `config` for the configuration's [store] url. The audit chain is
    /// verified on arrival.
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// The key file that seals the store's secrets, when FROM is a database
        /// (a data directory's is its store.key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigVerb {
    /// Check a configuration file (default: the one in force); errors name the key.
    Check { file: Option<PathBuf> },
}

#[derive(Debug, Subcommand)]
pub enum JitVerb {
    /// Revoke a grant now instead of at its expiry.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserVerb {
    /// Make a new TOTP secret for yourself and print its otpauth:// URI and
    /// recovery codes once. Replacing an enrolled factor needs --totp.
    TotpEnroll {
        login: String,
        /// A current TOTP code or an unused recovery code (to replace an enrolled factor).
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
    },
    /// Remove another user's second factor (a lost phone; needs manage-users). The
    /// user is told at their next command and enrols again.
    TotpReset { login: String },
    /// Warn about what a user's roles give together (needs manage-users):
    /// each role's warnings, and those only their combination has.
    Check { login: String },
}

#[derive(Debug, Subcommand)]
pub enum PolicyVerb {
    /// May USER run TASK (on these devices) at TIME? Every policy, most
    /// promising first, with the first condition it fails and those it
    /// meets: the decision's own reasoning (others need view-policies).
    Explain {
        task: String,
        /// The person asked about (default: you).
        #[arg(long)]
        user: Option<String>,
        /// Only these of the task's devices (repeatable).
        #[arg(long = "device", value_name = "NAME")]
        devices: Vec<String>,
        /// The moment judged (RFC 3339, or +2h); now by default.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleVerb {
    /// Warn about nonsensical, by-proxy and transitive grants of a role.
    Check { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DeviceVerb {
    /// Show the host key a device offers and pin it after confirmation.
    Trust {
        name: String,
        /// Pin without asking (after checking the fingerprint some other way).
        #[arg(long)]
        yes: bool,
    },
}

impl Cli {
    /// The configuration in force (defaults when there is no file).
    pub fn config(&self) -> crate::config::Config {
        crate::config::Config::find(self.config.as_deref()).unwrap_or_default()
    }

    /// The data directory in force: the flag, the configuration, the platform's.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| self.config().data_dir)
            .unwrap_or_else(crate::paths::default_data_dir)
    }

    /// Whom this command may talk to: its own user's server, or the
    /// service account's.
    pub fn trust(&self) -> crate::client::Trust {
        crate::client::Trust {
            service_account: self
                .service_account
                .clone()
                .or_else(|| self.config().service_account)
                .unwrap_or_else(|| crate::config::DEFAULT_SERVICE_ACCOUNT.to_string()),
        }
    }

    /// Connects to the engine: the given socket, or the data directory's
    /// server, started in the background when none runs.
    pub async fn connect(&self) -> Result<Client> {
        let as_login = self.as_login.as_deref();
        let trust = self.trust();
        let client = match self.connect.clone().or_else(|| self.config().socket) {
            Some(socket) => Client::connect(&socket, as_login, &trust).await?,
            None => Client::connect_or_start(&self.data_dir(), as_login, &trust).await?,
        };
        Ok(client)
    }

    /// [`Cli::connect`] for a verb: what the server says must be told at
    /// once goes to standard error first.
    pub async fn client(&self) -> Result<Client> {
        let client = self.connect().await?;
        for notice in client.notices() {
            eprintln!("gatehouse: {}", crate::text::printable(notice));
        }
        Ok(client)
    }
}

/// Runs a verb (not the TUI, not serve).
pub async fn run_verb(cli: &Cli, verb: &Verb) -> Result<()> {
    match verb {
        Verb::Serve { .. } => unreachable!("serve runs before any client exists"),
        Verb::Shutdown => service::shutdown(cli).await,
        Verb::Whoami => service::whoami(cli).await,
        Verb::Cluster {
            command: ClusterVerb::Status { json },
        } => service::cluster_status(cli, *json).await,
        Verb::Import { file } => records::import(cli, file).await,
        Verb::Export => records::export(cli).await,
        Verb::Config {
            command: ConfigVerb::Check { file },
        } => {
            let path = file
                .clone()
                .or_else(|| cli.config.clone())
                .unwrap_or_else(crate::config::default_path);
            crate::config::Config::load(&path)?;
            outln!("{}: ok", path.display());
            Ok(())
        }
        Verb::Backup { file } => service::backup(cli, file).await,
        Verb::Connect(args) => sessions::connect(cli, args).await,
        Verb::Groups { json } => records::groups(cli, *json).await,
        Verb::Sessions { all, text, json } => {
            sessions::list(cli, *all, text.as_deref(), *json).await
        }
        Verb::Session { command } => sessions::run(cli, command).await,
        Verb::Restore { file } => service::restore(cli, file),
        Verb::Store {
            command: StoreVerb::Copy { from, to, key },
        } => service::store_copy(cli, from, to, key.as_deref()),
        Verb::Demo => records::demo(cli).await,
        Verb::List { kind, json } => records::list(cli, kind, *json).await,
        Verb::Delete { kind, name } => records::delete(cli, kind, name).await,
        Verb::Clone { kind, from, to } => records::clone(cli, kind, from, to).await,
        Verb::Enable { kind, name } => records::set_enabled(cli, kind, name, true).await,
        Verb::Disable { kind, name } => records::set_enabled(cli, kind, name, false).await,
        Verb::Revisions { template } => records::revisions(cli, template).await,
        Verb::Audit { command } => audit::run(cli, command).await,
        Verb::Request {
            task,
            show_id: Some(id),
            json,
            ..
        } if task == "show" => approvals::show(cli, id, *json).await,
        Verb::Request {
            task,
            show_id: Some(id),
            wait,
            ..
        } if task == "check" => operations::dry_run(cli, id, *wait).await,
        Verb::Request {
            show_id: Some(extra),
            ..
        } => color_eyre::eyre::bail!(
            "unexpected argument '{}': `request TASK` takes one task (`request show ID` shows a request)",
            crate::text::printable(extra)
        ),
        Verb::Request {
            task,
            devices,
            vars,
            reason,
            justification,
            governance_id,
            at,
            duration,
            emergency,
            totp,
            wait,
            schedule,
            change,
            plan,
            check,
            ..
        } => {
            let spec = operations::RequestArgs {
                task,
                devices,
                vars,
                reason,
                justification,
                governance_id,
                at,
                duration,
                emergency: *emergency,
                totp,
                schedule: *schedule,
                change,
                plan,
                check: *check,
            };
            operations::request(cli, spec, *wait).await
        }
        Verb::Queue { json } => approvals::queue(cli, *json).await,
        Verb::Search {
            text,
            task,
            device,
            user,
            since,
            limit,
            json,
        } => {
            let filter = crate::engine::api::HistoryFilter {
                task: task.clone(),
                device: device.clone(),
                user: user.clone(),
                since: since.as_deref().map(operations::parse_since).transpose()?,
                ..Default::default()
            };
            search::search(cli, text, filter, *limit, *json).await
        }
        Verb::Policy {
            command:
                PolicyVerb::Explain {
                    task,
                    user,
                    devices,
                    at,
                    json,
                },
        } => policies::explain(cli, task, user, devices, at, *json).await,
        Verb::Role {
            command: RoleVerb::Check { name },
        } => records::role_check(cli, name).await,
        Verb::Approve {
            ids,
            comment,
            until,
            totp,
        } => approvals::decide(cli, ids, true, comment, until, totp).await,
        Verb::User {
            command: UserVerb::TotpEnroll { login, totp },
        } => approvals::totp_enroll(cli, login, totp).await,
        Verb::User {
            command: UserVerb::TotpReset { login },
        } => approvals::totp_reset(cli, login).await,
        Verb::User {
            command: UserVerb::Check { login },
        } => records::user_check(cli, login).await,
        Verb::Jit { command, all, json } => match command {
            Some(JitVerb::Revoke { id }) => approvals::jit_revoke(cli, id).await,
            None => approvals::jit_list(cli, *all, *json).await,
        },
        Verb::Review {
            ids,
            accept,
            comment,
            ..
        } => approvals::review(cli, ids, *accept, comment).await,
        Verb::Reject { ids, comment } => {
            approvals::decide(cli, ids, false, comment, &None, &None).await
        }
        Verb::Requests { mine, json } => approvals::requests(cli, *mine, *json).await,
        Verb::Schedules { json } => approvals::schedules(cli, *json).await,
        Verb::Ops { state } => operations::ops(cli, state).await,
        Verb::Rerun {
            id,
            failed,
            reason,
            justification,
            governance_id,
            wait,
        } => {
            operations::rerun(
                cli,
                operations::RerunArgs {
                    id,
                    failed: *failed,
                    reason,
                    justification,
                    governance_id,
                    wait: *wait,
                },
            )
            .await
        }
        Verb::Logs { op, follow, debug } => operations::logs(cli, op, *follow, *debug).await,
        Verb::Cancel { op } => operations::cancel(cli, op).await,
        Verb::History {
            task,
            user,
            device,
            state,
            since,
            text,
            output,
            limit,
            all,
            json,
            format,
        } => {
            let filter = operations::HistoryArgs {
                task,
                user,
                device,
                state,
                since,
                text,
                output,
            };
            let format = match (format, json) {
                (Some(f), _) => *f,
                (None, true) => operations::HistoryFormat::Jsonl,
                (None, false) => operations::HistoryFormat::Table,
            };
            operations::history(cli, filter, *limit, *all, format).await
        }
        Verb::Device {
            command: DeviceVerb::Trust { name, yes },
        } => operations::trust(cli, name, *yes).await,
        Verb::Credential { command } => credentials::run(cli, command).await,
    }
}

fn parse_kind(text: &str) -> Result<crate::domain::Kind> {
    crate::domain::Kind::parse(text).ok_or_else(|| {
        color_eyre::eyre::eyre!(
            "unknown record kind '{text}'; one of: {}",
            crate::domain::Kind::ALL.map(|k| k.plural()).join(", ")
        )
    })
}

/// Reads a whole file, naming it in the error.
/// The largest input file a command reads (a records file, a template).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// Reads a whole text file, naming it in the error: too large, or not
/// UTF-8 (with the line of the first bad byte).
fn read_file(path: &std::path::Path) -> Result<String> {
    let size = std::fs::metadata(path)
        .wrap_err_with(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_INPUT {
        color_eyre::eyre::bail!(
            "{} is {} MiB; input files are at most {} MiB",
            path.display(),
            size / (1024 * 1024),
            MAX_INPUT / (1024 * 1024)
        );
    }
    let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        color_eyre::eyre::eyre!(
            "{}: line {line}: not UTF-8 text (invalid byte at offset {at})",
            path.display()
        )
    })
}
