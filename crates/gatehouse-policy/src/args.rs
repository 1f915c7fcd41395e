//! Call arguments as policies see them (AZ-ARGS).
//!
//! Conditions never look at raw argument text when a path is meant: a path is first reduced
//! to one canonical spelling, so doubled slashes and `.` segments do not matter, and anything
//! that could make the upstream read it as another place (`..`, `%2e%2e`, backslashes, UNC
//! prefixes, look-alike characters) makes it unreadable instead. An unreadable or missing
//! value fails every allow condition and triggers every deny condition, so doubt always lands
//! on the side of a deny.

use serde_json::{Map, Value};

/// The top-level arguments of one call, split by how conditions read them.
#[derive(Debug, Default)]
pub(crate) struct ArgumentValues {
    /// String arguments exactly as sent (for `one_of` and `matches`).
    pub(crate) text: Vec<(String, String)>,
    /// String arguments that reduce to a canonical path (for `under`).
    pub(crate) path: Vec<(String, String)>,
    /// Integer arguments that fit in 64 bits (for `min` and `max`).
    pub(crate) number: Vec<(String, i64)>,
}

impl ArgumentValues {
    /// Splits `arguments`; values of other JSON types (booleans, arrays, objects, fractions)
    /// are visible to no condition.
    pub(crate) fn from_json(arguments: &Map<String, Value>) -> Self {
        let mut values = Self::default();
        for (name, value) in arguments {
            match value {
                Value::String(text) => {
                    if let Some(path) = normalize_path(text) {
                        values.path.push((name.clone(), path));
                    }
                    values.text.push((name.clone(), text.clone()));
                }
                Value::Number(number) => {
                    if let Some(integer) = number.as_i64() {
                        values.number.push((name.clone(), integer));
                    }
                }
                _ => {}
            }
        }
        values
    }
}

/// Reduces a path argument to its one canonical spelling, or `None` when no single spelling
/// can be trusted.
///
/// Empty and `.` segments are dropped and `/` runs collapse, giving `/a/b` for an absolute
/// path and `a/b` for a relative one. A Windows drive path (`C:\a\b`, `c:/A/b`) uses `\` and
/// `/` as separators and is lowercased, since Windows compares names without case: `c:/a/b`.
///
/// `None` is returned whenever the upstream server could read the path differently from the
/// policy, because a condition on a path that might mean two places protects neither:
///
/// - a `..` segment: resolving it without the file system is unsound when a directory is a
///   symbolic link (`/workspace/link/../x`), so such a path is never inside anything;
/// - a percent escape such as `%2e` or `%2F`: some servers decode it and some do not;
/// - a backslash outside a drive path: a separator on Windows, a name character elsewhere;
/// - a leading `//` or `\\` (a UNC or network path);
/// - a control character, or a non-ASCII character that is not a letter or digit (fullwidth
///   dots and slashes, zero-width and bidirectional characters);
/// - in a drive path, a `:` after the drive (alternate data streams) or a segment ending in
///   `.` or space (Windows drops those);
/// - an empty path, or a drive-relative one such as `C:x`.
pub fn normalize_path(raw: &str) -> Option<String> {
    if raw
        .chars()
        .any(|c| c.is_control() || (!c.is_ascii() && !c.is_alphanumeric()))
        || has_percent_escape(raw)
    {
        return None;
    }
    let bytes = raw.as_bytes();
    let is_drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if is_drive {
        return normalize_drive_path(raw);
    }
    if raw.contains('\\') || raw.starts_with("//") {
        return None;
    }
    let absolute = raw.starts_with('/');
    let segments = segments(raw.split('/'))?;
    match (absolute, segments.is_empty()) {
        (true, _) => Some(format!("/{}", segments.join("/"))),
        (false, true) => None,
        (false, false) => Some(segments.join("/")),
    }
}

/// `C:\a\b` and `c:/A/b` as `c:/a/b`.
fn normalize_drive_path(raw: &str) -> Option<String> {
    let lowered = raw.to_ascii_lowercase().replace('\\', "/");
    let (drive, rest) = lowered.split_at(2);
    // `C:x` is relative to the drive's current directory, which the policy cannot know.
    let rest = rest.strip_prefix('/')?;
    if rest.contains(':') || rest.starts_with('/') {
        return None;
    }
    let segments = segments(rest.split('/'))?;
    if segments
        .iter()
        .any(|segment| segment.ends_with('.') || segment.ends_with(' '))
    {
        return None;
    }
    Some(format!("{drive}/{}", segments.join("/")))
}

/// The meaningful segments: empty and `.` dropped; `None` at any `..`.
fn segments<'a>(parts: impl Iterator<Item = &'a str>) -> Option<Vec<&'a str>> {
    let mut kept = Vec::new();
    for part in parts {
        match part {
            "" | "." => {}
            ".." => return None,
            other => kept.push(other),
        }
    }
    Some(kept)
}

/// True when `text` holds `%` followed by two hex digits.
fn has_percent_escape(text: &str) -> bool {
    text.as_bytes().windows(3).any(|window| {
        window[0] == b'%' && window[1].is_ascii_hexdigit() && window[2].is_ascii_hexdigit()
    })
}
