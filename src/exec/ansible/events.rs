//! The lines our callback plugin (`assets/ansible/gatehouse.py`) prints,
//! read back: a host's event, its final counts, or a line for everyone.
//! Everything a device sent is made printable before a terminal sees it.

use crate::exec::RunError;
use serde::Deserialize;

/// One line of the run's stdout.
pub enum Line {
    Host(HostEvent),
    Stats(Stats),
    /// A play starting: every device's output says so.
    Everyone(String),
    /// Not ours (Ansible printed it itself).
    Other(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostEvent {
    pub event: String,
    pub host: String,
    #[serde(default)]
    pub task: String,
    #[serde(default)]
    pub text: String,
    /// The task's module (`ansible.builtin.copy`, `gather_facts`…).
    #[serde(default)]
    pub action: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stats {
    pub host: String,
    #[serde(default)]
    pub ok: u32,
    #[serde(default)]
    pub changed: u32,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub unreachable: u32,
    #[serde(default)]
    pub skipped: u32,
}

#[derive(Deserialize)]
struct Tagged {
    event: String,
    #[serde(default)]
    name: String,
}

pub fn parse(line: &str) -> Line {
    let Ok(tagged) = serde_json::from_str::<Tagged>(line) else {
        return Line::Other(crate::text::printable(line));
    };
    match tagged.event.as_str() {
        "stats" => match serde_json::from_str(line) {
            Ok(stats) => Line::Stats(stats),
            Err(_) => Line::Other(crate::text::printable(line)),
        },
        "play" => Line::Everyone(format!("PLAY [{}]\n", crate::text::printable(&tagged.name))),
        _ => match serde_json::from_str::<HostEvent>(line) {
            Ok(event) => Line::Host(event),
            Err(_) => Line::Other(crate::text::printable(line)),
        },
    }
}

impl HostEvent {
    /// Whether the task only gathered facts (it reads the device, changes
    /// nothing): a device where only that ran had nothing done to it.
    pub fn gathers_facts(&self) -> bool {
        matches!(
            self.action.rsplit('.').next(),
            Some("gather_facts" | "setup")
        )
    }

    /// Whether it is bad news (shown on stderr).
    pub fn is_bad(&self) -> bool {
        matches!(self.event.as_str(), "failed" | "unreachable")
    }

    /// As the device's output shows it: the task and its state, then what
    /// it said, indented.
    pub fn shown(&self) -> String {
        let mut text = format!(
            "TASK [{}] {}\n",
            crate::text::printable(&self.task),
            crate::text::printable(&self.event)
        );
        for line in self.text.lines() {
            text.push_str("  ");
            text.push_str(&crate::text::printable(line));
            text.push('\n');
        }
        text
    }
}

/// What a run said of one device, as it went.
#[derive(Clone, Default)]
pub struct Report {
    pub stats: Option<Stats>,
    /// The last failed or unreachable task, with its message.
    last_bad: Option<(String, String, String)>,
    tasks: u32,
    changed: u32,
    /// The whole text of the failed and unreachable results.
    bad_text: String,
    /// Results of tasks that ran on the device (facts gathering aside).
    acted: u32,
    /// The first skipped task, with why it was skipped.
    first_skip: Option<(String, String)>,
}

impl Report {
    pub fn take(&mut self, event: &HostEvent) {
        self.tasks += 1;
        if event.event == "changed" {
            self.changed += 1;
        }
        match event.event.as_str() {
            "skipped" => {
                if self.first_skip.is_none() {
                    let why = event.text.lines().next().unwrap_or("").to_string();
                    self.first_skip = Some((event.task.clone(), why));
                }
            }
            _ if event.gathers_facts() => {}
            _ => self.acted += 1,
        }
        if event.is_bad() {
            let first = event.text.lines().next().unwrap_or("").to_string();
            self.last_bad = Some((event.event.clone(), event.task.clone(), first));
            if self.bad_text.len() < 64 * 1024 {
                self.bad_text.push_str(&event.text);
                self.bad_text.push('\n');
            }
        }
    }

    /// Whether ssh refused the device's host key.
    fn host_key_refused(&self) -> bool {
        self.bad_text.contains("Host key verification failed")
            || self
                .bad_text
                .contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    }

    /// Ansible's final word on the device, as a line of its output.
    pub fn recap(&self) -> Option<String> {
        let s = self.stats.as_ref()?;
        let mut line = format!(
            "recap: ok={} changed={} failed={} unreachable={} skipped={}",
            s.ok, s.changed, s.failures, s.unreachable, s.skipped
        );
        if self.nothing_done() {
            line.push_str(" (every task was skipped on this device)");
        }
        Some(line)
    }

    /// Whether the run ended on this device with every task of the
    /// playbook skipped (facts aside): it did nothing there.
    fn nothing_done(&self) -> bool {
        self.stats.as_ref().is_some_and(|s| {
            s.failures == 0 && s.unreachable == 0 && s.changed == 0 && s.skipped > 0
        }) && self.acted == 0
    }

    /// What ran so far, for a stopped run.
    pub fn summary(&self) -> String {
        format!(
            "{} task result(s) came back, {} of them changes",
            self.tasks, self.changed
        )
    }

    /// The device's outcome, from its final counts (or their absence).
    pub fn outcome(&self, status: Option<i32>) -> Result<i32, RunError> {
        let why = |kind: &str| match &self.last_bad {
            Some((_, task, text)) if text.is_empty() => format!("{kind} at task '{task}'"),
            Some((_, task, text)) => format!("{kind} at task '{task}': {text}"),
            None => kind.to_string(),
        };
        match &self.stats {
            // A key that is not the pinned one: refused, never retried.
            Some(s) if s.unreachable > 0 && self.host_key_refused() => Err(RunError::HostKey(
                crate::text::printable(&why(
                    "the device's host key is not the one pinned for it, so it was not logged in to",
                )),
            )),
            Some(s) if s.unreachable > 0 => Err(RunError::Connect(crate::text::printable(
                &why("unreachable"),
            ))),
            Some(s) if s.failures > 0 => {
                Err(RunError::Failed(crate::text::printable(&why("failed"))))
            }
            Some(_) if self.nothing_done() => {
                let first = match &self.first_skip {
                    Some((task, why)) if why.is_empty() => format!(" (the first: '{task}')"),
                    Some((task, why)) => format!(" (the first: '{task}': {why})"),
                    None => String::new(),
                };
                Err(RunError::Skipped(crate::text::printable(&format!(
                    "every task was skipped on this device, nothing was done{first}"
                ))))
            }
            Some(_) => Ok(0),
            None => Err(RunError::Failed(match status {
                Some(code) => format!(
                    "ansible-playbook ended (exit status {code}) before it reported on this device (its messages are above)"
                ),
                None => "ansible-playbook was killed before it reported on this device".into(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_by_host_and_counts_decide() {
        let Line::Host(e) = parse(
            r#"{"event": "failed", "host": "box-2", "task": "write", "text": "Destination /nope not writable\nrc=1"}"#,
        ) else {
            panic!("a host event")
        };
        assert!(e.is_bad());
        assert_eq!(
            e.shown(),
            "TASK [write] failed\n  Destination /nope not writable\n  rc=1\n"
        );
        let mut report = Report::default();
        report.take(&e);
        let Line::Stats(stats) =
            parse(r#"{"event": "stats", "host": "box-2", "ok": 1, "failures": 1}"#)
        else {
            panic!("stats")
        };
        report.stats = Some(stats);
        let err = report.outcome(Some(2)).unwrap_err();
        assert!(matches!(err, RunError::Failed(_)));
        assert_eq!(
            err.to_string(),
            "failed at task 'write': Destination /nope not writable"
        );
        let fine = Report {
            stats: Some(Stats {
                ok: 2,
                ..Stats::default()
            }),
            ..Report::default()
        };
        assert_eq!(fine.outcome(Some(0)).unwrap(), 0);
        // No counts at all: the run ended before it got to this device.
        assert!(Report::default()
            .outcome(Some(4))
            .unwrap_err()
            .to_string()
            .contains("exit status 4"));
    }

    #[test]
    fn an_unreachable_device_is_a_connect_error_and_a_terminal_escape_is_made_printable() {
        let Line::Host(e) = parse(
            "{\"event\": \"unreachable\", \"host\": \"box-3\", \"task\": \"t\", \"text\": \"ssh: connect to host 127.0.0.1 port 1: Connection refused\\u001b[31m\"}",
        ) else {
            panic!("a host event")
        };
        assert!(!e.shown().contains('\u{1b}'));
        let mut report = Report::default();
        report.take(&e);
        report.stats = Some(Stats {
            unreachable: 1,
            ..Stats::default()
        });
        assert!(matches!(
            report.outcome(Some(4)),
            Err(RunError::Connect(m)) if m.contains("Connection refused")
        ));
        assert!(matches!(parse("[WARNING]: x"), Line::Other(_)));
    }

    fn host_event(line: &str) -> HostEvent {
        let Line::Host(e) = parse(line) else {
            panic!("a host event: {line}")
        };
        e
    }

    #[test]
    fn a_device_where_every_task_but_the_facts_was_skipped_is_skipped_with_why() {
        let facts = host_event(
            r#"{"event": "ok", "host": "b", "task": "Gathering Facts", "text": "", "action": "gather_facts"}"#,
        );
        let skipped = host_event(
            r#"{"event": "skipped", "host": "b", "task": "write", "text": "Conditional result was False", "action": "ansible.builtin.copy"}"#,
        );
        let stats = Stats {
            ok: 1,
            skipped: 1,
            ..Stats::default()
        };
        let mut report = Report::default();
        report.take(&facts);
        report.take(&skipped);
        report.stats = Some(stats.clone());
        let err = report.outcome(Some(0)).unwrap_err();
        assert!(matches!(err, RunError::Skipped(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "every task was skipped on this device, nothing was done (the first: 'write': Conditional result was False)"
        );
        assert!(report
            .recap()
            .unwrap()
            .ends_with("(every task was skipped on this device)"));
        // Control: one task that ran besides the facts makes it a success.
        let mut ran = Report::default();
        ran.take(&facts);
        ran.take(&host_event(
            r#"{"event": "ok", "host": "b", "task": "look", "text": "", "action": "ansible.builtin.command"}"#,
        ));
        ran.take(&skipped);
        ran.stats = Some(Stats { ok: 2, ..stats });
        assert_eq!(ran.outcome(Some(0)).unwrap(), 0);
        assert!(!ran.recap().unwrap().contains("skipped on this device"));
    }
}
