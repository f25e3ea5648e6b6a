//! Looking for a secret where it must not be: its common encodings in
//! any bytes, and the command lines of every process while work runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The forms a leaked secret could take.
pub fn forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let inner = |s: String| s[1..s.len() - 1].to_string();
    let mut forms = vec![
        secret.to_string(),
        inner(format!("{secret:?}")),
        inner(serde_json::to_string(secret).unwrap()),
        format!("'{}'", secret.replace('\'', r"'\''")),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// Where a form of the secret shows in `text`, if it does.
pub fn leak(text: &[u8], secret: &str) -> Option<String> {
    forms(secret)
        .into_iter()
        .find(|f| text.windows(f.len()).any(|w| w == f.as_bytes()))
}

/// Samples every process's command line until stopped.
pub fn watch_processes(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(entries) = std::fs::read_dir("/proc") {
                for entry in entries.flatten() {
                    if let Ok(args) = std::fs::read(entry.path().join("cmdline")) {
                        seen.extend(args);
                        seen.push(b'\n');
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    })
}
