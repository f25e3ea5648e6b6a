//! The real binary in a tmux session: keys in with send-keys, the screen
//! out with capture-pane, waiting for text rather than sleeping. Each
//! session has a tmux server of its own (`-L`): tests running side by side
//! never meet a shared server as it exits after another test's last
//! session (a new session there failed now and then).

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    session: String,
}

impl Tmux {
    pub fn start(command: &str) -> Tmux {
        Tmux::start_sized(command, 130, 40)
    }

    /// In a terminal of this many columns and rows.
    pub fn start_sized(command: &str, columns: u16, rows: u16) -> Tmux {
        let (columns, rows) = (columns.to_string(), rows.to_string());
        let session = format!("gh-test-{}-{}", std::process::id(), rand_suffix());
        let status = Command::new("tmux")
            .args(["-L", &session])
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &columns,
                "-y",
                &rows,
                command,
            ])
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(status.success());
        Tmux { session }
    }

    /// tmux, talking to this session's own server.
    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.session]);
        command
    }

    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "'{text}' never appeared; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(status.success());
    }

    pub fn alive(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", &self.session])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
        // tmux leaves its socket behind.
        let dir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_file(
            std::path::Path::new(&dir)
                .join(format!("tmux-{}", nix::unistd::getuid()))
                .join(&self.session),
        );
    }
}

/// Unique within the process (a counter) and across runs (the clock).
fn rand_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{n}-{nanos}")
}
