//! Where Gatehouse keeps its files.

use std::path::{Path, PathBuf};

/// The socket of the server for a data directory.
pub fn socket_in(data_dir: &Path) -> PathBuf {
    data_dir.join("gatehouse.sock")
}

/// The lock a server holds for as long as it serves a data directory.
pub fn lock_in(data_dir: &Path) -> PathBuf {
    data_dir.join("server.lock")
}

/// The key file that seals secrets (its name is the store's to decide).
pub fn key_in(data_dir: &Path) -> PathBuf {
    data_dir.join("store.key")
}

/// The directory the server writes its log files to.
/// Where a server that cannot open its store says why before it exits
/// (a personal server's stderr goes nowhere; its client reads this).
pub fn start_failure_in(data_dir: &Path) -> PathBuf {
    logs_in(data_dir).join("start-failure.txt")
}

pub fn logs_in(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// The platform's data directory for Gatehouse (`~/.local/share/gatehouse` on Linux).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "gatehouse")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".gatehouse"))
}

/// The login name of an OS user id, from the system's user database.
pub fn login_of_uid(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The login of the user running this process.
pub fn current_login() -> String {
    login_of_uid(nix::unistd::Uid::current().as_raw())
        .unwrap_or_else(|| format!("uid{}", nix::unistd::Uid::current()))
}

/// Creates a file for the person running this command: one that did not
/// exist, not through a symbolic link, readable by them alone (0600).
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}
