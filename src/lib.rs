//! Gatehouse: privileged tasks on remote machines with least privilege,
//! approvals and a complete audit trail. One binary; the engine runs as a
//! server on a Unix socket and every front end is a client of it.
//!
//! # Layout
//!
//! - `domain`: the records (environments, devices, credentials, templates,
//!   tasks, users, roles, policies), operations, requests and grants; pure
//!   data and its validation.
//! - `access`: who may do what, pure. `access::authorize` is the one answer
//!   to "may this principal have this effect?"; `policy` and `approval`
//!   hold the request rules; `analysis` the role warnings.
//! - `store`: sled trees, one transaction per change with its audit events,
//!   the audit chain, output files, schema versions and migrations
//!   (`store::codec` says how to change a stored type).
//! - `engine`: the only place that decides. `api` is its vocabulary
//!   (commands, responses, events, typed errors); `journal` is the one
//!   commit path (every write is published); `gate` checks each operation
//!   as it starts; the other modules are one concern each (records,
//!   requests, schedules, operations, MFA, JIT, visibility, metrics, and
//!   `rotation`: credentials' password and key changes, checks and reveals).
//! - `exec`: the runner (bounds, attempts, timeouts, cancellation, the hold
//!   while a credential changes, verification of new secrets) and the
//!   executors behind one trait (`exec::executor`); `ssh` (bastions,
//!   certificates, interpreters and PTYs), `algorithms` (what a connection
//!   offers, from `domain::SshOptions`), `admission` (handshakes per
//!   address), `hostkey` (reading every key a host offers).
//! - `server` / `client`: the socket, its framing (`server::wire`) and its
//!   bounds; the client trusts only its own or the service account's server.
//! - `cli`, `ui`: front ends; they only ask the engine. `main.rs` settles the
//!   configuration, theme, keys and connection and hands them over.
//! - `template`, `recordfile`, `forward`, `text`, `paths`, `logfile`,
//!   `config`: the template language, the import format, SIEM forwarding,
//!   screening of outside text, paths, the log file, `config.toml`.
//!
//! # How to extend
//!
//! **An executor**: a variant of `domain::Executor` (last: it is stored)
//! and its name in `Executor::NAMES`; a type implementing
//! `exec::executor::Executor` (check the content, run an attempt) and its
//! arm in `exec::executor::of`. The form's choices and the import format's
//! parsing follow from `NAMES`. Two files, and the README's template section.
//!
//! **A record kind**: its struct and a variant of `domain::Record` and
//! `domain::Kind` (last: both are stored) with `Kind::ALL`, `as_str`,
//! `plural`; its `Validate` impl (`domain::validate`); its import document
//! and conversions (`recordfile::docs`) and, beside them, its form's field
//! table (`recordfile::fields`: the TUI's form is built from it); its view
//! and manage permissions (`access::view_action`, `manage_action`); a
//! sample in `tests/golden.rs`. The matches in these places are exhaustive,
//! so a kind missing from one does not compile, and a test in
//! `recordfile::fields` checks that every form field is a key of the
//! import format.
//!
//! **A screen**: its `Tab` variant (its place in `Tab::ALL` is its digit),
//! its state type, a type implementing `ui::screens::Screen` (titles, `:`
//! word, keys, key handling, the answers it keeps, cursor, filter) and its
//! arm in `screens::of`, all in `ui/screens.rs`; its drawing in `ui::tabs`;
//! its state as a field of `App`; a snapshot in `tests/tui_screens.rs`.
//! Dialogs over it go on the overlay stack (`ui::overlay`).
//!
//! **An approval rule**: the rule in `access::approval` (`may_decide`,
//! `next_level`) or `access::policy` (what a request must carry); a field
//! of `domain::Policy` (stored: a migration, see `store::codec`) with its
//! import document and form field; a test in `tests/access_properties.rs`.
//!
//! **A command**: a variant of `engine::api::Command` (and its `Response`)
//! last, `PROTOCOL_VERSION` bumped, its arm in `Engine::dispatch` asking
//! `access::authorize`, its sample in `tests/golden.rs`, then the CLI verb
//! or the screen that asks it.

pub mod access;
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod engine;
pub mod exec;
pub mod forward;
pub mod logfile;
pub mod paths;
pub mod people;
pub mod recordfile;
pub mod server;
pub mod store;
pub mod template;
pub mod text;
pub mod ui;
