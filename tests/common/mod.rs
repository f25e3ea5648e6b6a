//! Shared test harness: a Gatehouse data directory driven through the real
//! binary, and a real OpenSSH sshd on loopback.
#![allow(dead_code)]

pub mod drive;
pub mod leaks;
pub mod postgres;
pub mod runs;
pub mod screen;
pub mod service;
pub mod sshd;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The gatehouse binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

/// A fresh data directory whose personal server is stopped when dropped.
pub struct DataDir {
    pub dir: tempfile::TempDir,
    /// Where tests write their input files, outside the data directory.
    pub scratch: tempfile::TempDir,
    /// Environment for every command (and so for the personal server the
    /// first one starts): `TZ` for a server in another zone.
    pub env: Vec<(String, String)>,
}

impl DataDir {
    pub fn new() -> DataDir {
        DataDir {
            dir: tempfile::Builder::new()
                .prefix("gh")
                .tempdir()
                .expect("temp dir"),
            scratch: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    /// A data directory (as a jump host has one) whose server keeps its
    /// records in the shared store at `url`, with `more` of the
    /// configuration after the `[store]` table's url.
    pub fn on_shared_store(url: &str, more: &str) -> DataDir {
        let mut d = DataDir::new();
        let config = d.write("config.toml", &format!("[store]\nurl = \"{url}\"\n{more}"));
        d.env
            .push(("GATEHOUSE_CONFIG".into(), config.display().to_string()));
        d
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `gatehouse --data-dir DIR ARGS…` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--data-dir")
            .arg(self.path())
            .args(args)
            .env_remove("GATEHOUSE_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run gatehouse")
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gatehouse {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail; returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "gatehouse {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs a command as another Gatehouse user (`--as`, which the owner of
    /// a personal server may use) that must succeed; returns its stdout.
    pub fn ok_as(&self, user: &str, args: &[&str]) -> String {
        let mut all = vec!["--as", user];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    /// Runs a command as another Gatehouse user that must fail; returns its stderr.
    pub fn fails_as(&self, user: &str, args: &[&str]) -> String {
        let mut all = vec!["--as", user];
        all.extend_from_slice(args);
        self.fails(&all)
    }

    /// Writes an input file in the scratch directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = Command::new(bin())
            .arg("--data-dir")
            .arg(self.path())
            .arg("shutdown")
            .output();
    }
}

/// Every regular file under a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The pid of the server process serving a data directory, if one runs.
pub fn server_pid(dir: &Path) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "serve") && args.iter().any(|a| a == &dir.display().to_string())
        {
            return Some(pid);
        }
    }
    None
}
