//! The `gatehouse` binary: parses the command line and hands over to the
//! server, the TUI or a CLI verb.

use clap::Parser;
use color_eyre::eyre::Result;
use gatehouse::cli::{self, Cli, Verb};
use gatehouse::text::printable_lines;
use gatehouse::{paths, server};
use std::time::Duration;

fn main() -> Result<()> {
    color_eyre::install()?;
    // A variable set to nothing (`GATEHOUSE_CONFIG=`) means it is not set.
    for name in [
        "GATEHOUSE_CONFIG",
        "GATEHOUSE_SOCKET",
        "GATEHOUSE_DATA_DIR",
        "GATEHOUSE_SERVICE_ACCOUNT",
    ] {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
    let cli = Cli::parse();
    // A personal server this command starts reads the same configuration.
    if let Some(path) = cli.config.as_ref().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(absolute) = std::path::absolute(path) {
            std::env::set_var("GATEHOUSE_CONFIG", absolute);
        }
    }
    // A broken configuration is said at once, naming the key (config check says it itself).
    let checking = matches!(cli.command, Some(Verb::Config { .. }));
    let config = match gatehouse::config::Config::find(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) if !checking => {
            eprintln!("gatehouse: {}", printable_lines(&e.to_string()));
            std::process::exit(1);
        }
        Err(_) => Default::default(),
    };
    gatehouse::domain::zone::set_view_zone(config.view_zone());
    let data_dir = cli.data_dir();
    let is_server = matches!(cli.command, Some(Verb::Serve { .. }));
    if is_server {
        // Everything the server creates (store, key, logs) is its account's alone.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    }
    let _log_guard =
        gatehouse::logfile::init(&data_dir, if is_server { "server" } else { "client" });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match &cli.command {
            Some(Verb::Serve {
                socket,
                group,
                personal,
                idle_exit,
                parallelism,
                handshakes_per_address,
                output_cap,
                store,
            }) => {
                // Flags first, then the configuration, then the defaults.
                let mut limits = config.limits();
                limits.server_parallelism = parallelism.unwrap_or(limits.server_parallelism);
                limits.handshakes_per_address =
                    handshakes_per_address.unwrap_or(limits.handshakes_per_address);
                limits.output_cap = output_cap.unwrap_or(limits.output_cap);
                limits.local_account = config.local_account(!*personal, &paths::current_login());
                limits.people = config.people.clone();
                if store.as_deref().is_some_and(gatehouse::store::url_has_password) {
                    color_eyre::eyre::bail!(
                        "--store holds a password, which the command line shows to every local user (ps): put the URL in the configuration's [store] url"
                    );
                }
                limits.cluster_environments = config.cluster.environments.clone();
                if let Some(secs) = config.store.lease_secs {
                    limits.cluster_lease = Duration::from_secs(secs.max(1));
                }
                limits.store_url = store
                    .clone()
                    .or_else(|| config.store.url.clone())
                    .filter(|u| !u.trim().is_empty())
                    .map(gatehouse::store::StoreUrl);
                let idle = idle_exit.or(config.idle_exit_secs).unwrap_or(5);
                if group.is_some() && *personal {
                    color_eyre::eyre::bail!("--group is for a shared server, not --personal");
                }
                let forward = config
                    .forward_targets()
                    .map_err(|e| color_eyre::eyre::eyre!("configuration: {e}"))?;
                server::run(server::ServerOptions {
                    socket: socket
                        .clone()
                        .or_else(|| config.socket.clone())
                        .unwrap_or_else(|| paths::socket_in(&data_dir)),
                    data_dir: data_dir.clone(),
                    idle_exit: personal.then(|| Duration::from_secs(idle)),
                    shared: !personal,
                    group: group.clone(),
                    client_stall: server::CLIENT_STALL,
                    connections_per_user: config
                        .limits
                        .connections_per_user
                        .unwrap_or(server::CONNECTIONS_PER_USER),
                    hello_timeout: server::HELLO_TIMEOUT,
                    forward,
                    limits,
                })
                .await
            }
            Some(verb) => cli::run_verb(&cli, verb).await,
            None => {
                // The look, the keys and the connection are settled before
                // the TUI takes the terminal, so a mistake prints plainly.
                let config = cli.config();
                let theme = config
                    .theme(cli.theme.as_deref())
                    .map_err(|e| color_eyre::eyre::eyre!(e))?;
                let keys = config
                    .keymap()
                    .map_err(|e| color_eyre::eyre::eyre!("configuration: {e}"))?;
                {
                    use std::io::IsTerminal;
                    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
                        color_eyre::eyre::bail!(
                            "the TUI needs a terminal; without one, use a verb (gatehouse --help lists them)"
                        );
                    }
                }
                let client = cli.connect().await?;
                gatehouse::ui::run(client, theme, keys).await
            }
        }
    });
    // A refusal or a bad file is the user's to fix: say it in one line, no backtrace.
    if let Err(e) = result {
        // A reader that went away (`| head`) is no failure.
        if let Some(io) = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>()) {
            cli::out::exit_if_reader_gone(io);
        }
        eprintln!("gatehouse: {}", printable_lines(&e.to_string()));
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {}", printable_lines(&cause.to_string()));
        }
        std::process::exit(1);
    }
    Ok(())
}
