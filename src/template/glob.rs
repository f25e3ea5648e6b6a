//! The glob patterns of `expect` lines: `*` any run of characters, `?` one.

/// Whether the whole of `text` matches `pattern`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`: linear in
    // practice, never exponential on hostile patterns.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

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
