//! The request form of a task: the devices to run on, the template's
//! variables with their descriptions and defaults, and what the policy that
//! covers the request asks for (reason, justification, governance id, a
//! window, emergency access with a TOTP code). Every field is checked as it
//! is typed; the engine decides when it is sent.

use super::form::{Field, Form};
use super::Theme;
use crate::domain::{Timestamp, Variable};
use crate::engine::{RequestSpec, RequestTerms};
use ratatui::text::{Line, Span};

pub struct RequestForm {
    pub terms: RequestTerms,
    pub form: Form,
}

/// The form's field for a variable.
fn var_field(name: &str) -> String {
    format!("var:{name}")
}

impl RequestForm {
    pub fn new(terms: RequestTerms, theme: &Theme) -> RequestForm {
        let mut fields =
            vec![
                Field::picks("devices", "Devices", terms.devices.clone(), &terms.devices)
                    .required()
                    .help("←/→ move, Space picks, a picks all"),
            ];
        for v in &terms.variables {
            let value = terms
                .task_values
                .get(&v.name)
                .cloned()
                .or_else(|| v.default.clone())
                .unwrap_or_default();
            let mut help = if v.description.is_empty() {
                format!("{}: ", v.name)
            } else {
                format!("{}: ", v.description)
            };
            help.push_str(&format!("must match {}", v.effective_pattern()));
            fields.push(Field::line(&var_field(&v.name), &v.name, &value).help(help));
        }
        let mut reasons = vec![String::new()];
        reasons.extend(terms.reasons.iter().cloned());
        let mut reason =
            Field::choice("reason", "Reason", reasons, "").help("←/→ choose an access reason");
        if terms.requires_reason {
            reason = reason.required();
        }
        fields.push(reason);
        let mut justification = Field::line("justification", "Justification", "")
            .help("why this is needed, for the approvers and the audit");
        if terms.requires_justification {
            justification = justification.required();
        }
        fields.push(justification);
        let mut governance =
            Field::line("governance_id", "Governance id", "").help("a change or incident number");
        if terms.requires_governance_id {
            governance = governance.required();
        }
        fields.push(governance);
        let mut change =
            Field::line("change", "Change", "").help("the change this run is for (its code)");
        if terms.requires_change {
            change = change.required();
        }
        fields.push(change);
        fields.push(
            Field::line("start", "Start", "")
                .help("blank for now, +30m from now, or 2026-11-26T18:00:00Z"),
        );
        fields.push(
            Field::line("duration", "Window", "")
                .help("how long the approval holds: 30m, 4h, 1d (blank: a day)"),
        );
        if terms.emergency_access {
            fields.push(
                Field::toggle("emergency", "Emergency", false)
                    .help("run at once without approval; every approver is told"),
            );
            if terms.requires_mfa {
                fields.push(
                    Field::secret("totp", "TOTP code", false)
                        .help("a current code, for emergency access"),
                );
            }
        }
        let mut form = Form::new(format!("Request {}", terms.task), fields);
        form.notes = notes(&terms, theme);
        RequestForm { terms, form }
    }

    /// Fills the form with an earlier request's values (a re-run): its
    /// devices, variables, reason, justification, governance id, change.
    pub fn prefill(&mut self, spec: &crate::engine::RequestSpec) {
        let mut set = |name: &str, value: &str| {
            if let Some(f) = self.form.field_mut(name) {
                f.set_value(value);
            }
        };
        if !spec.devices.is_empty() {
            set("devices", &spec.devices.join(", "));
        }
        for (name, value) in &spec.variables {
            set(&var_field(name), value);
        }
        for (name, value) in [
            ("reason", &spec.reason),
            ("justification", &spec.justification),
            ("governance_id", &spec.governance_id),
        ] {
            if let Some(v) = value {
                set(name, v);
            }
        }
        if let Some(change) = &spec.change {
            set("change", &change.code);
        }
    }

    fn variable(&self, field: &str) -> Option<&Variable> {
        let name = field.strip_prefix("var:")?;
        self.terms.variables.iter().find(|v| v.name == name)
    }

    /// Checks the field at `index` as it is typed.
    pub fn changed(&mut self, index: usize) {
        let Some(name) = self.form.fields.get(index).map(|f| f.name.clone()) else {
            return;
        };
        self.form.error = None;
        let error = self.check(&name);
        self.form.set_error(&name, error);
    }

    fn check(&self, name: &str) -> Option<String> {
        let value = self.form.value(name);
        if let Some(v) = self.variable(name) {
            return crate::template::check_value(v, &value).err().map(|e| {
                e.trim_start_matches(&format!("variable {}: ", v.name))
                    .to_string()
            });
        }
        match name {
            "start" if !value.trim().is_empty() => {
                crate::domain::when::parse_time(&value, Timestamp::now()).err()
            }
            "duration" if !value.trim().is_empty() => {
                crate::domain::when::parse_duration_ms(&value).err()
            }
            _ => None,
        }
    }

    /// The request, or the fields' errors set.
    pub fn spec(&mut self) -> Option<RequestSpec> {
        self.form.error = None;
        for f in &mut self.form.fields {
            f.error = None;
        }
        let mut ok = self.form.check_required();
        let names: Vec<String> = self.form.fields.iter().map(|f| f.name.clone()).collect();
        for name in &names {
            if let Some(e) = self.check(name) {
                self.form.set_error(name, Some(e));
                ok = false;
            }
        }
        if !ok {
            self.form.focus_first_error();
            return None;
        }
        let text = |name: &str| {
            let v = self.form.value(name);
            (!v.trim().is_empty()).then(|| v.trim().to_string())
        };
        let now = Timestamp::now();
        let at = text("start").and_then(|s| crate::domain::when::parse_time(&s, now).ok());
        let until = text("duration")
            .and_then(|d| crate::domain::when::parse_duration_ms(&d).ok())
            .map(|ms| Timestamp(at.unwrap_or(now).0 + ms));
        let devices = self
            .form
            .field("devices")
            .map(|f| f.picked())
            .unwrap_or_default();
        let variables = self
            .terms
            .variables
            .iter()
            .map(|v| (v.name.clone(), self.form.value(&var_field(&v.name))))
            .collect();
        Some(RequestSpec {
            task: self.terms.task.clone(),
            // All of them is said as none, so that devices added later count.
            devices: if devices.len() == self.terms.devices.len() {
                Vec::new()
            } else {
                devices
            },
            variables,
            reason: text("reason"),
            justification: text("justification"),
            governance_id: text("governance_id"),
            at,
            until,
            emergency: self.form.field("emergency").is_some_and(|f| f.is_on()),
            totp: text("totp"),
            schedule: false,
            check: false,
            change: text("change").map(|code| crate::domain::ChangePlan {
                code,
                plan: Vec::new(),
            }),
        })
    }

    /// Shows the engine's refusal: under the variable it names, else on top.
    /// The engine's refusal: under the variable it names, else above the form.
    pub fn refused(&mut self, failure: &crate::ui::Failure) {
        self.form.sending = false;
        if let crate::ui::Failure::Engine(crate::engine::EngineError::Variable {
            variable,
            message,
            ..
        }) = failure
        {
            if self.terms.variables.iter().any(|v| &v.name == variable) {
                self.form
                    .set_error(&var_field(variable), Some(message.clone()));
                self.form.focus_first_error();
                return;
            }
        }
        self.form.error = Some(failure.to_string());
    }
}

/// What applies, in a few lines above the fields.
fn notes(terms: &RequestTerms, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if !terms.description.is_empty() {
        lines.push(Line::from(Span::styled(
            terms.description.clone(),
            theme.dim(),
        )));
    }
    if terms.superuser {
        lines.push(Line::from(Span::styled(
            "Superuser: runs at once, without a policy (marked as a bypass in the audit)",
            theme.warn_style(),
        )));
        return lines;
    }
    match (&terms.policy, &terms.refusal) {
        (Some(policy), _) => {
            let mut what = Vec::new();
            if terms.requires_approval {
                what.push(format!(
                    "approval at {} level{}",
                    terms.approval_levels.max(1),
                    if terms.approval_levels > 1 { "s" } else { "" }
                ));
            } else {
                what.push("no approval: runs at once".to_string());
            }
            for (needed, name) in [
                (terms.requires_reason, "a reason"),
                (terms.requires_justification, "a justification"),
                (terms.requires_governance_id, "a governance id"),
            ] {
                if needed {
                    what.push(format!("needs {name}"));
                }
            }
            if terms.emergency_access {
                what.push(if terms.requires_mfa {
                    "emergency access with a TOTP code".to_string()
                } else {
                    "emergency access".to_string()
                });
            }
            lines.push(Line::from(vec![
                Span::styled(format!("Policy {policy}: "), theme.title()),
                Span::styled(what.join(", "), theme.text()),
            ]));
            if !terms.windows.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("Window: {}", terms.windows.join("; ")),
                    theme.dim(),
                )));
            }
        }
        (None, Some(why)) => {
            // The headline, then each policy that could apply (the
            // engine's explanation, one per line).
            let mut parts = why.lines();
            lines.push(Line::from(Span::styled(
                format!(
                    "No policy covers this for you now: {}",
                    parts.next().unwrap_or_default()
                ),
                theme.error_style(),
            )));
            for part in parts {
                lines.push(Line::from(Span::styled(
                    crate::text::printable(part),
                    theme.dim(),
                )));
            }
        }
        (None, None) => {}
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn terms() -> RequestTerms {
        RequestTerms {
            task: "restart".into(),
            devices: vec!["web-1".into(), "web-2".into()],
            variables: vec![Variable {
                name: "SERVICE".into(),
                description: "the unit to restart".into(),
                default: Some("nginx".into()),
                pattern: "[a-z]+".into(),
            }],
            reasons: vec!["incident".into()],
            policy: Some("prod-web".into()),
            requires_approval: true,
            approval_levels: 2,
            requires_justification: true,
            ..Default::default()
        }
    }

    #[test]
    fn fields_follow_the_policy_and_values_are_checked_as_typed() {
        let mut f = RequestForm::new(terms(), &Theme::default());
        assert!(f.form.field("justification").unwrap().required);
        assert!(!f.form.field("governance_id").unwrap().required);
        assert!(f.form.field("emergency").is_none());
        assert_eq!(f.form.value("var:SERVICE"), "nginx");
        f.form.focus = 1;
        let k = f
            .form
            .on_key(KeyEvent::new(KeyCode::Char('!'), KeyModifiers::NONE));
        let super::super::form::FormKey::Changed(i) = k else {
            panic!("{k:?}")
        };
        f.changed(i);
        let e = f.form.field("var:SERVICE").unwrap().error.clone().unwrap();
        assert!(e.contains("does not match its pattern [a-z]+"), "{e}");
        assert!(f.spec().is_none());
        assert_eq!(
            f.form.field("justification").unwrap().error.as_deref(),
            Some("Justification is required")
        );
    }

    #[test]
    fn a_complete_form_makes_the_request() {
        let mut f = RequestForm::new(terms(), &Theme::default());
        f.form.field_mut("justification").unwrap();
        f.form.focus = 3;
        for c in "disk full".chars() {
            f.form
                .on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        // Only web-2.
        f.form.focus = 0;
        f.form
            .on_key(KeyEvent::new(KeyCode::Char(' '), KeyModifiers::NONE));
        let spec = f.spec().expect("complete");
        assert_eq!(spec.devices, vec!["web-2".to_string()]);
        assert_eq!(spec.justification.as_deref(), Some("disk full"));
        assert_eq!(
            spec.variables.get("SERVICE").map(String::as_str),
            Some("nginx")
        );
        assert!(spec.until.is_none() && spec.at.is_none() && !spec.emergency);
    }
}
