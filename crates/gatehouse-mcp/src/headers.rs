//! The 2026-07-28 request headers (SEP-2243): `Mcp-Method`, `Mcp-Name`, and `Mcp-Param-*`
//! mirrored from tool arguments whose schema property carries `x-mcp-header`. Values that are
//! not plain printable ASCII travel as `=?base64?…?=`. A server must check every header
//! against the body; a client must send them. The gateway is both, so both directions live
//! here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// Header prefix of mirrored tool arguments.
pub const PARAM_HEADER_PREFIX: &str = "mcp-param-";
const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// Which member of `params` a method's `Mcp-Name` repeats.
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// Encodes a header value: plain printable ASCII as is, anything else as `=?base64?…?=`.
pub fn encode_value(value: &str) -> String {
    let edge_space = value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']);
    let unprintable = value.chars().any(|c| !(' '..='~').contains(&c));
    let looks_encoded = value.starts_with(BASE64_PREFIX) && value.ends_with(BASE64_SUFFIX);
    if edge_space || unprintable || looks_encoded {
        format!("{BASE64_PREFIX}{}{BASE64_SUFFIX}", STANDARD.encode(value))
    } else {
        value.to_owned()
    }
}

/// Decodes a header value; `None` if it claims to be Base64 but is not valid Base64 UTF-8.
pub fn decode_value(raw: &str) -> Option<String> {
    match raw
        .strip_prefix(BASE64_PREFIX)
        .and_then(|inner| inner.strip_suffix(BASE64_SUFFIX))
    {
        Some(inner) => String::from_utf8(STANDARD.decode(inner).ok()?).ok(),
        None => Some(raw.to_owned()),
    }
}

/// One `x-mcp-header` annotation: the property path from the schema root and the header suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// Property names from the root, through nested `properties`.
    pub path: Vec<String>,
    /// The suffix after `Mcp-Param-`.
    pub header: String,
}

/// Every `x-mcp-header` annotation along `properties` chains of an input schema.
pub fn param_headers(input_schema: &Value) -> Vec<ParamHeader> {
    let mut found = Vec::new();
    if let Some(schema) = input_schema.as_object() {
        collect(schema, &mut Vec::new(), &mut found);
    }
    found
}

fn collect(schema: &Map<String, Value>, path: &mut Vec<String>, found: &mut Vec<ParamHeader>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let Some(property) = property.as_object() else {
            continue;
        };
        path.push(name.clone());
        if let Some(header) = property.get("x-mcp-header").and_then(Value::as_str) {
            found.push(ParamHeader {
                path: path.clone(),
                header: header.to_owned(),
            });
        }
        collect(property, path, found);
        path.pop();
    }
}

/// Checks a tool's `x-mcp-header` annotations; a tool that fails must not be offered to
/// HTTP clients, who could not call it correctly.
pub fn check_annotations(input_schema: &Value) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for annotation in param_headers(input_schema) {
        let property = annotation.path.join(".");
        let valid_token = !annotation.header.is_empty()
            && annotation
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_token {
            return Err(format!(
                "property `{property}`: x-mcp-header `{}` is not a valid header name",
                annotation.header
            ));
        }
        let lower = annotation.header.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(format!(
                "property `{property}`: x-mcp-header `{}` is used twice",
                annotation.header
            ));
        }
        seen.push(lower);
        let property_schema = annotation
            .path
            .iter()
            .try_fold(input_schema, |schema, name| {
                schema.get("properties")?.get(name)
            });
        let primitive = property_schema
            .and_then(|schema| schema.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|kind| matches!(kind, "string" | "number" | "integer" | "boolean"));
        if !primitive {
            return Err(format!(
                "property `{property}`: x-mcp-header needs a string, number, integer or boolean type"
            ));
        }
    }
    Ok(())
}

/// The header text of a primitive argument; `None` for null, objects and arrays.
fn primitive_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn argument_at<'a>(arguments: Option<&'a Value>, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(arguments?, |value, name| value.get(name))
}

/// The `Mcp-Param-*` headers a client sends for a call with `arguments`.
pub fn param_headers_for_call(
    input_schema: &Value,
    arguments: Option<&Value>,
) -> Vec<(String, String)> {
    param_headers(input_schema)
        .into_iter()
        .filter_map(|annotation| {
            let text = primitive_text(argument_at(arguments, &annotation.path)?)?;
            Some((
                format!("Mcp-Param-{}", annotation.header),
                encode_value(&text),
            ))
        })
        .collect()
}

/// Checks received `Mcp-Param-*` headers against a call's arguments. `received` looks a
/// header up by its lower-case name.
pub fn check_param_headers<'a>(
    input_schema: &Value,
    arguments: Option<&Value>,
    received: impl Fn(&str) -> Option<&'a str>,
) -> Result<(), String> {
    for annotation in param_headers(input_schema) {
        let property = annotation.path.join(".");
        let name = format!(
            "{PARAM_HEADER_PREFIX}{}",
            annotation.header.to_ascii_lowercase()
        );
        let expected = argument_at(arguments, &annotation.path).and_then(primitive_text);
        match (received(&name), expected) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(format!(
                    "Mcp-Param-{} header sent but `{property}` is absent",
                    annotation.header
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "missing Mcp-Param-{} header for `{property}`",
                    annotation.header
                ));
            }
            (Some(raw), Some(expected)) => {
                let decoded = decode_value(raw).ok_or_else(|| {
                    format!("Mcp-Param-{} header is not valid Base64", annotation.header)
                })?;
                if decoded != expected {
                    return Err(format!(
                        "Mcp-Param-{} header does not match `{property}`",
                        annotation.header
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoding_round_trips_and_rejects_bad_base64() {
        for value in [
            "plain",
            " lead",
            "trail ",
            "naïve",
            "=?base64?x?=",
            "a\r\nb",
        ] {
            assert_eq!(decode_value(&encode_value(value)).as_deref(), Some(value));
        }
        assert_eq!(encode_value("us-west"), "us-west");
        assert_eq!(decode_value("=?base64?SGVsbG8?="), None);
        assert_eq!(decode_value("=?base64?SGV$bG8=?="), None);
        assert_eq!(decode_value("SGVsbG8=").as_deref(), Some("SGVsbG8="));
    }

    #[test]
    fn param_headers_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}}
        }});
        assert!(check_annotations(&schema).is_ok());
        let arguments = json!({"region": "eu", "opts": {"dry": true}});
        assert_eq!(
            param_headers_for_call(&schema, Some(&arguments)),
            vec![
                ("Mcp-Param-Region".to_owned(), "eu".to_owned()),
                ("Mcp-Param-Dry".to_owned(), "true".to_owned())
            ]
        );
        let headers = |name: &str| match name {
            "mcp-param-region" => Some("eu"),
            "mcp-param-dry" => Some("true"),
            _ => None,
        };
        assert!(check_param_headers(&schema, Some(&arguments), headers).is_ok());
        assert!(check_param_headers(&schema, Some(&arguments), |_| None).is_err());
        let bad = json!({"properties": {"a": {"type": "object", "x-mcp-header": "A"}}});
        assert!(check_annotations(&bad).is_err());
    }
}
