//! Which exposed names the engine is willing to decide on.
//!
//! Policy patterns compare characters exactly, so a name that merely looks like another one
//! (`ѕlack__post` with a Cyrillic `ѕ`, `slack__post\u{200B}`) would escape a deny written for
//! the real name. The gateway refuses such names before routing instead of deciding on them.

/// True when `name` is safe to route and decide on: non-empty, printable ASCII only, and no
/// leading or trailing space.
///
/// This refuses control characters, zero-width characters (U+200B, U+FEFF, ...), bidirectional
/// overrides (U+202E, ...), and every other non-ASCII character, because any of them can make
/// two names look alike while comparing differently. MCP tool names are ASCII in practice and
/// resource URIs are ASCII by RFC 3986, so nothing legitimate is lost. A name that fails this
/// check should be refused with an error, never mapped to a "nearest" name.
pub fn is_canonical_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(' ')
        && !name.ends_with(' ')
        && name.bytes().all(|byte| (b' '..=b'~').contains(&byte))
}
