//! Name patterns: `*` matches any run of characters, every other character matches itself.
//!
//! The same pattern is written into the Cedar text as a `like` pattern and matched here by the
//! pre-filter in [`crate::index`]; both must agree exactly, so this matcher follows Cedar's
//! `like`: characters (not bytes), no other wildcards, no character classes.

use std::fmt;

/// A validated name pattern such as `sentry__*` or `*admin*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(String);

impl Glob {
    /// Checks a pattern from a grant: it must be non-empty and made of printable ASCII.
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("an empty pattern matches nothing".to_owned());
        }
        if let Some(bad) = pattern.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(format!(
                "pattern `{}` contains {:?}; exposed names are printable ASCII, so it could never match",
                pattern.escape_debug(),
                bad
            ));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// True when the whole of `text` matches the pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        wildcard_match(&self.0, text)
    }

    /// The pattern as the body of a Cedar `like` literal (without the quotes).
    pub(crate) fn cedar_pattern(&self) -> String {
        // `*` stays a wildcard; quotes and backslashes are escaped as in any string literal.
        crate::cedar_text::escape_string(&self.0)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Iterative wildcard matching with single-star backtracking: linear for the patterns grants
/// use, and never worse than `pattern.len() * text.len()`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen and the text position it was tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, tried)) = backtrack {
            p = star + 1;
            t = tried + 1;
            backtrack = Some((star, tried + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}
