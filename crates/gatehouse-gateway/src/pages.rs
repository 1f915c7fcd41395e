//! The gateway's own opaque cursors over a merged list. A cursor names the list kind and an
//! offset; one from another list, or made up, is refused with a clear error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_mcp::catalog::ListKind;
use serde_json::Value;

use crate::error::GatewayError;

/// The opaque cursor for `offset` in a list of `kind`.
pub fn encode_cursor(kind: ListKind, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("gh1:{}:{offset}", kind.field()))
}

/// The offset a cursor stands for; no cursor means the start.
pub fn decode_cursor(kind: ListKind, cursor: Option<&str>) -> Result<usize, GatewayError> {
    let Some(cursor) = cursor else { return Ok(0) };
    let invalid = || {
        GatewayError::InvalidParams(format!(
            "cursor `{cursor}` is not one this gateway issued for {}",
            kind.method()
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let rest = text.strip_prefix("gh1:").ok_or_else(invalid)?;
    let (field, offset) = rest.split_once(':').ok_or_else(invalid)?;
    if field != kind.field() {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

/// One page of `items` from `offset`, and the offset of the next page if any.
pub fn page(items: &[Value], offset: usize, size: usize) -> (Vec<Value>, Option<usize>) {
    let start = offset.min(items.len());
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then_some(end);
    (items[start..end].to_vec(), next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_walk_the_list_and_refuse_foreign_ones() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (first, next) = page(&items, 0, 2);
        assert_eq!(first, vec![json!(0), json!(1)]);
        let cursor = encode_cursor(ListKind::Tools, next.unwrap());
        let offset = decode_cursor(ListKind::Tools, Some(&cursor)).unwrap();
        assert_eq!(page(&items, offset, 2), (vec![json!(2), json!(3)], Some(4)));
        assert_eq!(page(&items, 4, 2), (vec![json!(4)], None));
        assert!(decode_cursor(ListKind::Prompts, Some(&cursor)).is_err());
        assert!(decode_cursor(ListKind::Tools, Some("bogus")).is_err());
    }
}
