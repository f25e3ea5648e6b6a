//! Gatehouse: privileged tasks on remote machines with least privilege,
//! approvals and a complete audit trail. One binary; the engine runs as a
//! server on a Unix socket and every front end is a client of it.

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
pub mod recordfile;
pub mod server;
pub mod store;
pub mod template;
pub mod text;
pub mod ui;
