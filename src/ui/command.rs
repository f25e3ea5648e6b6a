//! The `:` command line: jump to any screen or record kind by name.

use super::screens::of as screen;
use super::Tab;
use crate::domain::Kind;

/// Where a command line word leads.
#[derive(Debug, PartialEq, Eq)]
pub enum Jump {
    Screen(Tab),
    Kind(Kind),
}

/// Every word the command line knows, for completion.
pub fn words() -> Vec<&'static str> {
    // The screens' words, from the list of screens.
    let mut w: Vec<&'static str> = Tab::ALL.iter().map(|t| screen(*t).word()).collect();
    w.extend(
        Kind::ALL
            .iter()
            .map(|k| k.plural())
            .filter(|p| *p != "tasks"),
    );
    w.push("quit");
    w
}

/// What a word means: a screen, a record kind (shown under Admin), or nothing.
pub fn resolve(word: &str) -> Option<Jump> {
    let word = word.trim().trim_start_matches(':').to_lowercase();
    if word.is_empty() {
        return None;
    }
    if let Some(tab) = Tab::ALL.iter().find(|t| {
        let s = screen(**t);
        s.word() == word || s.aliases().contains(&word.as_str())
    }) {
        return Some(Jump::Screen(*tab));
    }
    Kind::parse(&word).map(Jump::Kind)
}

/// The one word that starts with `prefix`, or their longest common start.
pub fn complete(prefix: &str) -> Option<String> {
    let prefix = prefix.trim().to_lowercase();
    let matches: Vec<&str> = words()
        .into_iter()
        .filter(|w| w.starts_with(&prefix))
        .collect();
    let first = matches.first()?;
    let common = matches.iter().fold(first.to_string(), |acc, w| {
        acc.chars()
            .zip(w.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect()
    });
    Some(common)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lead_to_screens_and_kinds_and_complete() {
        assert_eq!(resolve(":approvals"), Some(Jump::Screen(Tab::Approvals)));
        assert_eq!(resolve("History"), Some(Jump::Screen(Tab::History)));
        assert_eq!(resolve("devices"), Some(Jump::Kind(Kind::Device)));
        assert_eq!(resolve("template"), Some(Jump::Kind(Kind::Template)));
        assert_eq!(resolve("tasks"), Some(Jump::Screen(Tab::Tasks)));
        assert_eq!(resolve("nonsense"), None);
        assert_eq!(complete("appr").as_deref(), Some("approvals"));
        assert_eq!(complete("de").as_deref(), Some("devices"));
        assert_eq!(complete("s").as_deref(), Some("systems"));
        assert_eq!(
            complete("r").as_deref(),
            Some("r"),
            "reasons and roles share only 'r'"
        );
        assert_eq!(complete("zz"), None);
    }
}
