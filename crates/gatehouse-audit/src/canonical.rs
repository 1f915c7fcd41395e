//! The canonical JSON encoding of receipt bodies: object keys sorted by their UTF-8 bytes, no
//! insignificant whitespace, strings escaped as `serde_json` escapes them, numbers as
//! `serde_json` prints them. The same value always encodes to the same bytes, whatever order
//! its maps were built in (the workspace enables `serde_json`'s `preserve_order`, so plain
//! `serde_json::to_string` would not sort). This is not RFC 8785: floating-point numbers are
//! printed by `serde_json`, not in the ECMAScript form, which is enough for one writer and
//! one verifier that share this code.

use serde::Serialize;
use serde_json::Value;

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the receipt as canonical JSON: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// Encodes `value` as canonical JSON.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    let value = serde_json::to_value(value)?;
    Ok(canonical_value(&value))
}

/// Encodes an already built JSON value as canonical JSON.
pub fn canonical_value(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|left, right| left.0.as_bytes().cmp(right.0.as_bytes()));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Writes `text` as a JSON string, escaped exactly as `serde_json` escapes it.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            control if u32::from(control) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_is_gone() {
        let value = json!({"b": 1, "a": {"z": [true, null, "x"], "y": 2.5}, "A": "\u{1}\"\n"});
        assert_eq!(
            canonical_value(&value),
            r#"{"A":"\u0001\"\n","a":{"y":2.5,"z":[true,null,"x"]},"b":1}"#
        );
    }

    #[test]
    fn strings_escape_like_serde_json() {
        let text = "tab\t quote\" back\\ bell\u{7} é \u{1f600} \u{0c}\u{08}\r";
        let mut ours = String::new();
        write_string(&mut ours, text);
        assert_eq!(ours, serde_json::to_string(text).unwrap());
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut first = serde_json::Map::new();
        first.insert("x".into(), json!(1));
        first.insert("y".into(), json!(2));
        let mut second = serde_json::Map::new();
        second.insert("y".into(), json!(2));
        second.insert("x".into(), json!(1));
        assert_eq!(
            canonical_value(&Value::Object(first)),
            canonical_value(&Value::Object(second))
        );
    }
}
