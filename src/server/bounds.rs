//! What keeps the server up when its neighbours misbehave: every local
//! account can reach the socket, so connections are counted per OS user,
//! descriptors are raised and kept in reserve, and repeated log lines are
//! counted instead of written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Open connections per OS user, refused past a cap.
#[derive(Clone)]
pub struct ConnectionCounts {
    cap: usize,
    open: Arc<Mutex<HashMap<u32, usize>>>,
}

/// One counted connection; the count drops with it.
pub struct ConnectionSlot {
    uid: u32,
    open: Arc<Mutex<HashMap<u32, usize>>>,
}

impl ConnectionCounts {
    pub fn new(cap: usize) -> ConnectionCounts {
        ConnectionCounts {
            cap,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection of `uid`, or `None` at the cap.
    pub fn take(&self, uid: u32) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(uid).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            uid,
            open: self.open.clone(),
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.uid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.uid);
            }
        }
    }
}

/// How many lines one kind of message may write per window before the rest
/// are only counted.
const LOG_BURST: u32 = 5;
const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Rate limit for repeated log lines, per key (a message and whom it is about).
#[derive(Default)]
pub struct LogLimiter {
    seen: Mutex<HashMap<String, (Instant, u32, u64)>>,
}

/// What the limiter says about one line.
#[derive(Debug, PartialEq, Eq)]
pub enum LogVerdict {
    /// Write it; `suppressed` lines of this key were left out before it.
    Write { suppressed: u64 },
    /// Count it only.
    Suppress,
}

impl LogLimiter {
    pub fn check(&self, key: &str) -> LogVerdict {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> LogVerdict {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded whatever the keys: old windows go first.
        if seen.len() > 4096 {
            seen.retain(|_, (start, _, _)| now.duration_since(*start) < LOG_WINDOW);
            if seen.len() > 4096 {
                seen.clear();
            }
        }
        let entry = seen.entry(key.to_string()).or_insert((now, 0, 0));
        if now.duration_since(entry.0) >= LOG_WINDOW {
            let suppressed = entry.2;
            *entry = (now, 1, 0);
            return LogVerdict::Write { suppressed };
        }
        if entry.1 < LOG_BURST {
            entry.1 += 1;
            return LogVerdict::Write { suppressed: 0 };
        }
        entry.2 += 1;
        LogVerdict::Suppress
    }
}

/// Raises the soft descriptor limit to the hard one; returns the limit in force.
pub fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// One descriptor held back so that the server can always accept a
/// connection to refuse it, even when every other descriptor is taken.
pub struct DescriptorReserve(Option<std::fs::File>);

impl DescriptorReserve {
    pub fn new() -> DescriptorReserve {
        DescriptorReserve(std::fs::File::open("/dev/null").ok())
    }

    /// Gives the reserved descriptor back to the process for a moment.
    pub fn release(&mut self) {
        self.0 = None;
    }

    /// Takes a descriptor into reserve again (when one is free).
    pub fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

impl Default for DescriptorReserve {
    fn default() -> Self {
        DescriptorReserve::new()
    }
}

/// Whether an accept error means the process or system ran out of descriptors.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_at_the_cap_is_refused_and_a_slot_comes_back_when_dropped() {
        let counts = ConnectionCounts::new(2);
        let a = counts.take(1000).unwrap();
        let _b = counts.take(1000).unwrap();
        assert!(counts.take(1000).is_none());
        // Another user is not affected by the first one's connections.
        assert!(counts.take(1001).is_some());
        drop(a);
        assert!(counts.take(1000).is_some());
    }

    #[test]
    fn repeated_lines_are_counted_and_the_count_is_said_in_the_next_window() {
        let limiter = LogLimiter::default();
        let start = Instant::now();
        for _ in 0..LOG_BURST {
            assert_eq!(
                limiter.check_at("accept", start),
                LogVerdict::Write { suppressed: 0 }
            );
        }
        for _ in 0..1000 {
            assert_eq!(limiter.check_at("accept", start), LogVerdict::Suppress);
        }
        // Another key has its own budget.
        assert_eq!(
            limiter.check_at("hello", start),
            LogVerdict::Write { suppressed: 0 }
        );
        assert_eq!(
            limiter.check_at("accept", start + LOG_WINDOW),
            LogVerdict::Write { suppressed: 1000 }
        );
    }
}
