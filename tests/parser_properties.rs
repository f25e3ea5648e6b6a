//! Hostile input to the parsers: they never panic, and every error points
//! at a line that exists.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::domain::{Executor, Variable};
use gatehouse::template;
use proptest::prelude::*;

fn lines_of(text: &str) -> usize {
    text.lines().count().max(1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_template_checker_never_panics_and_names_a_real_line(text in "(expect|exec|end|#|\"|\\[#|#\\]|[A-Z_]{1,6}|timeout| |[0-9]{1,3}|\n|\\\\|\u{1b}|\u{0}|é){0,60}") {
        let vars = [Variable { name: "HOST".into(), ..Variable::default() }];
        for executor in Executor::ALL {
            if let Err(e) = template::check(executor, &text, &vars) {
                prop_assert!(e.line >= 1 && e.line <= lines_of(&text), "line {} of {}", e.line, lines_of(&text));
                prop_assert!(e.column >= 1);
            }
        }
    }

    #[test]
    fn a_substituted_secret_never_survives_redaction(
        before in any::<String>(),
        after in any::<String>(),
        secret in "[a-z0-9]{4,12}",
    ) {
        // Lower-case secrets can't hide inside the upper-case mask name.
        let mut values = template::MaskValues::default();
        values.set_secret("AUTH_PASSWORD", secrecy::SecretString::from(secret.clone()));
        let text = format!("{before}[#AUTH_PASSWORD#]{after}");
        let rendered = template::substitute(&text, &values, true);
        prop_assert!(rendered.contains(&secret));
        let shown = template::Redactor::new(&values.secrets()).redact_text(&rendered);
        prop_assert!(!shown.contains(&secret), "{shown:?}");
    }

    #[test]
    fn the_records_file_parser_never_panics_and_names_a_real_line(text in "(\\[\\[(device|task|template|policy|environment)\\]\\]|name = \"[a-z]{0,4}|port = [0-9]{1,6}|\n|\"|=|\\{|\\}|\\[|\\]|days = \\[\"[a-z]{3}\"\\]|from = \"[0-9:]{0,6}\"| ){0,40}") {
        if let Err(e) = gatehouse::recordfile::parse(&text, std::path::Path::new("/nonexistent")) {
            prop_assert!(e.line <= lines_of(&text) + 1, "line {} of {}", e.line, lines_of(&text));
        }
    }
}
