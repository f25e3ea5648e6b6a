//! A playbook template: checked at save (it parses, it is a list of plays,
//! the jump host is no target) and made ready for a run (each play's
//! `hosts` filled by Gatehouse with the run's devices).

use crate::template::TemplateError;
use serde_json::Value;

/// Keys that would run a task on the jump host or read from it, which is
/// no device of the run; `vars_prompt` would wait for a terminal there is
/// not; `import_playbook` names files the run does not have.
const REFUSED: [(&str, &str); 6] = [
    (
        "delegate_to",
        "runs a task on another machine than the play's device",
    ),
    ("local_action", "runs a task on the jump host"),
    (
        "connection",
        "changes how the device is reached (Gatehouse sets it)",
    ),
    ("vars_prompt", "asks at a terminal, and a run has none"),
    (
        "import_playbook",
        "reads another playbook file, and a run has only this one",
    ),
    (
        "vars_files",
        "reads files on the jump host, and a run has only its own",
    ),
];

fn at(line: usize, message: String) -> TemplateError {
    TemplateError {
        line: line.max(1),
        column: 1,
        message,
    }
}

/// The line of the first occurrence of `key:` in the text (for messages).
fn line_of(text: &str, key: &str) -> usize {
    let needle = format!("{key}:");
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches("- ");
            l.starts_with(&needle)
        })
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Parses a playbook into its plays (JSON values), or says which line is wrong.
fn plays(text: &str) -> Result<Vec<Value>, TemplateError> {
    let parsed: Value = serde_yaml::from_str(text).map_err(|e| {
        // The end of the text may be past its last line: name the last one.
        let last = text.lines().count().max(1);
        let line = e.location().map(|l| l.line()).unwrap_or(1).min(last);
        at(line, format!("the playbook is not valid YAML: {e}"))
    })?;
    let Value::Array(plays) = parsed else {
        return Err(at(
            1,
            "a playbook is a list of plays (each starting with '- name:'), and this is not a list"
                .into(),
        ));
    };
    if plays.is_empty() {
        return Err(at(1, "the playbook has no play".into()));
    }
    Ok(plays)
}

/// Checks a playbook at save: it parses, it is a list of plays, each play
/// leaves `hosts` to Gatehouse (or says `all`, the run's devices) and has
/// tasks or roles, and nothing in it targets the jump host.
pub fn check(text: &str) -> Result<(), TemplateError> {
    // Nothing is substituted into a playbook's text: a mask would stay as
    // it is written.
    if let Some((n, line)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.find("[#").is_some_and(|at| l[at..].contains("#]")))
    {
        let column = line.find("[#").map(|c| c + 1).unwrap_or(1);
        return Err(TemplateError {
            line: n + 1,
            column,
            message: "masks are not used in playbooks: a declared variable reaches it as an extra variable ({{ NAME }}), and the credential as Ansible's login and become password".into(),
        });
    }
    let plays = plays(text)?;
    for (n, play) in plays.iter().enumerate() {
        let which = match play.get("name").and_then(Value::as_str) {
            Some(name) => format!("play {} ('{name}')", n + 1),
            None => format!("play {}", n + 1),
        };
        let Value::Object(fields) = play else {
            return Err(at(1, format!("{which} is not a mapping of play keywords")));
        };
        match fields.get("hosts") {
            None => {}
            Some(Value::String(h)) if h == "all" => {}
            Some(other) => {
                return Err(at(
                    line_of(text, "hosts"),
                    format!(
                        "{which} names hosts {other}: Gatehouse fills 'hosts' with the task's devices, so leave it out (or write 'all')"
                    ),
                ))
            }
        }
        if !["tasks", "roles", "pre_tasks", "post_tasks", "handlers"]
            .iter()
            .any(|k| fields.contains_key(*k))
        {
            return Err(at(1, format!("{which} has no tasks")));
        }
    }
    refuse_keys(text, &Value::Array(plays))
}

fn refuse_keys(text: &str, value: &Value) -> Result<(), TemplateError> {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if let Some((_, why)) = REFUSED.iter().find(|(k, _)| k == key) {
                    return Err(at(
                        line_of(text, key),
                        format!("'{key}' is not allowed in a Gatehouse playbook: it {why}"),
                    ));
                }
                if key == "check_mode" {
                    // Checked when a dry run is asked for, not at save.
                    continue;
                }
                refuse_keys(text, inner)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| refuse_keys(text, v)),
        _ => Ok(()),
    }
}

/// Where a playbook forces a task to run for real even in a dry run
/// (`check_mode: false`): a dry run of it would change things.
pub fn forces_real_runs(text: &str) -> Option<usize> {
    fn walk(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.iter().any(|(k, v)| {
                let forced = k == "check_mode"
                    && match v {
                        Value::Bool(b) => !b,
                        Value::String(s) => {
                            !matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on")
                        }
                        _ => true,
                    };
                forced || walk(v)
            }),
            Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    let plays = plays(text).ok()?;
    walk(&Value::Array(plays)).then(|| line_of(text, "check_mode"))
}

/// The playbook a run executes: each play's `hosts` set to `all` (the run's
/// inventory holds only its devices), written as JSON (which YAML reads).
pub fn for_run(text: &str) -> Result<String, String> {
    let mut plays = plays(text).map_err(|e| e.to_string())?;
    for play in &mut plays {
        if let Value::Object(fields) = play {
            fields.insert("hosts".into(), Value::String("all".into()));
        }
    }
    serde_json::to_string_pretty(&plays).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "- name: motd\n  become: true\n  tasks:\n    - name: write\n      copy:\n        dest: /tmp/x\n        content: hi\n";

    #[test]
    fn a_list_of_plays_without_hosts_passes_and_gets_all_for_the_run() {
        assert!(check(GOOD).is_ok());
        let run: Value = serde_json::from_str(&for_run(GOOD).unwrap()).unwrap();
        assert_eq!(run[0]["hosts"], "all");
        assert_eq!(run[0]["tasks"][0]["copy"]["dest"], "/tmp/x");
    }

    #[test]
    fn what_is_not_a_playbook_is_refused_with_its_line() {
        let bad_yaml = "- name: x\n  tasks:\n    - copy: {dest: /tmp/x\n";
        let e = check(bad_yaml).unwrap_err();
        assert!(e.message.contains("not valid YAML"), "{e}");
        assert!(e.line >= 3, "{e:?}");
        // An error at the very end names the last line there is.
        assert_eq!(check("\"\n").unwrap_err().line, 1);
        assert!(check("name: x\ntasks: []\n")
            .unwrap_err()
            .message
            .contains("list of plays"));
        let hosts = "- name: x\n  hosts: webservers\n  tasks: []\n";
        let e = check(hosts).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("fills 'hosts'"), "{e}");
        assert!(check("- name: x\n  hosts: all\n  tasks: []\n").is_ok());
        assert!(check("- name: x\n")
            .unwrap_err()
            .message
            .contains("no tasks"));
    }

    #[test]
    fn a_mask_in_a_playbook_is_refused_where_it_is() {
        let text = "- tasks:\n    - command: echo [#HOST#]\n";
        let e = check(text).unwrap_err();
        assert_eq!((e.line, e.column), (2, 21), "{e}");
        assert!(e.message.contains("{{ NAME }}"), "{e}");
        // Ansible's own brackets are no mask.
        assert!(check("- tasks:\n    - debug: {msg: \"[1, 2] # x\"}\n").is_ok());
    }

    #[test]
    fn the_jump_host_is_no_target() {
        for (text, key) in [
            (
                "- tasks:\n    - command: id\n      delegate_to: localhost\n",
                "delegate_to",
            ),
            ("- tasks:\n    - local_action: command id\n", "local_action"),
            ("- connection: local\n  tasks: []\n", "connection"),
            (
                "- vars_prompt:\n    - name: x\n  tasks: []\n",
                "vars_prompt",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.message.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn a_task_forced_out_of_check_mode_is_found() {
        assert_eq!(forces_real_runs(GOOD), None);
        let forced =
            "- tasks:\n    - name: really\n      command: touch /tmp/y\n      check_mode: false\n";
        assert_eq!(forces_real_runs(forced), Some(4));
        let kept = "- tasks:\n    - command: touch /tmp/y\n      check_mode: true\n";
        assert_eq!(forces_real_runs(kept), None);
    }
}
