//! Finds the line of a dotted key path in the original text, so problems found after parsing
//! can still point at the place in the file.

/// The 1-based line where `path` (such as `["servers", "demo", "url"]`) is written, or the line
/// of its nearest written ancestor.
pub(crate) fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = document.as_table();
    let mut found = None;
    for segment in path {
        let Some((key, item)) = table.get_key_value(segment) else {
            break;
        };
        found = key.span().or_else(|| item.span()).or(found);
        match item.as_table_like() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    found.map(|span| line_at(text, span.start))
}

/// The 1-based line holding byte `offset`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
