//! Expect patterns: `*` and `?` globs, matched by [`crate::text::glob_matches`].

pub use crate::text::glob_matches;

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn matches_prompts_the_way_expect_lines_mean_them() {
        assert!(glob_matches("*$", "Last login: today\nuser@host:~$"));
        assert!(!glob_matches("*$", "user@host:~$ ls\nfile"));
        assert!(glob_matches("*assword*:", "[sudo] Password for x:"));
        assert!(!glob_matches("*assword:", "[sudo] Password for x:"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("x", ""));
    }

    #[test]
    fn hostile_patterns_finish_quickly() {
        let text = "a".repeat(10_000);
        assert!(!glob_matches("*a*a*a*a*a*a*a*a*b", &text));
    }
}
