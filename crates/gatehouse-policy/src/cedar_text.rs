//! Writes a checked [`Grant`] as Cedar policy text.
//!
//! The text is what is validated, evaluated, hashed and shown by `policy explain`, so it is
//! written to be read: one condition per line, in the order the pre-filter checks them
//! (principal, item, server, access, environment, expiry; arguments last). That order
//! matters: Cedar's `&&` stops at the first false operand, so a grant the pre-filter skips
//! could not have raised an error either.
//!
//! The action is left unconstrained: a grant covers listing its items and using them, and the
//! schema allows each kind only its own actions (`call` for tools, `get` for prompts, `read`
//! for resources), so the kind condition already says which actions apply. Cedar would
//! otherwise build and compare an action set on every evaluation.

use std::fmt::Write as _;

use crate::grant::{ArgumentCondition, ArgumentTest, Audience, Grant, PrincipalRef};
use crate::raw::RawEffect;
use crate::{Class, glob::Glob};

/// Escapes `text` for the inside of a Cedar string literal. A `*` is left alone, so in a
/// `like` pattern it stays a wildcard.
pub(crate) fn escape_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The Cedar text of one grant, ending in a newline.
pub(crate) fn grant_to_cedar(grant: &Grant) -> String {
    let permit = grant.effect == RawEffect::Allow;
    let mut text = format!("@id(\"{}\")\n", escape_string(&grant.id));
    if let Some(reason) = &grant.reason {
        let _ = writeln!(text, "@reason(\"{}\")", escape_string(reason));
    }
    if let Some(expiry) = &grant.expires {
        let _ = writeln!(text, "@expires(\"{}\")", expiry.cedar);
    }
    let (scope_principal, principal_condition) = principal_clauses(&grant.audience);
    let _ = write!(
        text,
        "{} ({scope_principal}, action, resource)",
        if permit { "permit" } else { "forbid" },
    );

    let mut conditions: Vec<String> = principal_condition.into_iter().collect();
    conditions.extend(item_condition(grant));
    if let Some(servers) = &grant.servers {
        conditions.push(any_like("resource.server", servers));
    }
    match (permit, grant.access) {
        (true, Class::Destructive) | (false, Class::Read) => {}
        (true, access) => conditions.push(format!("resource.level <= {}", access.level())),
        (false, access) => conditions.push(format!("resource.level >= {}", access.level())),
    }
    if let Some(environment) = &grant.environment {
        conditions.push(format!(
            "(resource has environment && resource.environment == \"{}\")",
            escape_string(environment)
        ));
    }
    if let Some(expiry) = &grant.expires {
        conditions.push(format!("context.now < datetime(\"{}\")", expiry.cedar));
    }
    if !grant.arguments.is_empty() {
        let tests: Vec<String> = grant
            .arguments
            .iter()
            .map(|condition| argument_condition(condition, permit))
            .collect();
        // A listing has no arguments: an allow with conditions still shows the item, and a
        // deny with conditions does not hide it, since only some calls are affected.
        conditions.push(if permit {
            format!("(action == Action::\"list\" || ({}))", tests.join(" && "))
        } else {
            format!("action != Action::\"list\" && {}", tests.join(" && "))
        });
    }
    if !conditions.is_empty() {
        let _ = write!(text, "\nwhen {{\n  {}\n}}", conditions.join("\n  && "));
    }
    text.push_str(";\n");
    text
}

/// The scope's principal clause, and a condition when several principals are named.
fn principal_clauses(audience: &Audience) -> (String, Option<String>) {
    match audience {
        Audience::Everyone => ("principal".to_owned(), None),
        Audience::Only(principals) if principals.len() == 1 => {
            (format!("principal in {}", entity(&principals[0])), None)
        }
        Audience::Only(principals) => {
            // Not `principal in [A, B]`: strict validation wants a set of one entity type.
            let tests: Vec<String> = principals
                .iter()
                .map(|principal| format!("principal in {}", entity(principal)))
                .collect();
            (
                "principal".to_owned(),
                Some(format!("({})", tests.join(" || "))),
            )
        }
    }
}

/// `User::"alice"`, `Group::"eng"`, `Team::"payments"`.
fn entity(principal: &PrincipalRef) -> String {
    let (kind, id) = match principal {
        PrincipalRef::User(id) => ("User", id),
        PrincipalRef::Group(id) => ("Group", id),
        PrincipalRef::Team(id) => ("Team", id),
    };
    format!("{kind}::\"{}\"", escape_string(id))
}

/// Kind and name condition, when the grant names kinds.
fn item_condition(grant: &Grant) -> Option<String> {
    let items = &grant.items;
    if items.is_everything() {
        return None;
    }
    let mut alternatives = Vec::new();
    if let Some(patterns) = &items.tools {
        alternatives.push(format!(
            "(resource is Tool && {})",
            any_like("resource.name", patterns)
        ));
    }
    if let Some(patterns) = &items.prompts {
        alternatives.push(format!(
            "(resource is Prompt && {})",
            any_like("resource.name", patterns)
        ));
    }
    if let Some(patterns) = &items.resources {
        alternatives.push(format!(
            "((resource is Resource || resource is ResourceTemplate) && {})",
            any_like("resource.name", patterns)
        ));
    }
    Some(format!("({})", alternatives.join(" || ")))
}

/// `(EXPR like "a" || EXPR like "b")`.
fn any_like(expression: &str, patterns: &[Glob]) -> String {
    let tests: Vec<String> = patterns
        .iter()
        .map(|pattern| format!("{expression} like \"{}\"", pattern.cedar_pattern()))
        .collect();
    format!("({})", tests.join(" || "))
}

/// One argument condition: for a permit it needs the value present and passing; for a forbid
/// it holds unless the value is present and fails.
fn argument_condition(condition: &ArgumentCondition, permit: bool) -> String {
    let key = escape_string(&condition.arg);
    let tags = match condition.test {
        ArgumentTest::Under(_) => "context.args.path",
        ArgumentTest::OneOf(_) | ArgumentTest::Matches(_) => "context.args.text",
        ArgumentTest::Range { .. } => "context.args.number",
    };
    let value = format!("{tags}.getTag(\"{key}\")");
    let test = match &condition.test {
        ArgumentTest::Under(directory) => under_test(&value, directory),
        ArgumentTest::OneOf(values) => {
            let list: Vec<String> = values
                .iter()
                .map(|v| format!("\"{}\"", escape_string(v)))
                .collect();
            format!("[{}].contains({value})", list.join(", "))
        }
        ArgumentTest::Matches(pattern) => format!("{value} like \"{}\"", pattern.cedar_pattern()),
        ArgumentTest::Range { min, max } => {
            let mut bounds = Vec::new();
            // `i64::MIN` has no Cedar literal, and bounds nothing anyway.
            if let Some(min) = min.filter(|min| *min != i64::MIN) {
                bounds.push(format!("{value} >= {min}"));
            }
            if let Some(max) = max {
                bounds.push(format!("{value} <= {max}"));
            }
            if bounds.is_empty() {
                "true".to_owned()
            } else {
                bounds.join(" && ")
            }
        }
    };
    let has = format!("{tags}.hasTag(\"{key}\")");
    if permit {
        format!("({has} && ({test}))")
    } else {
        format!("(if {has} then ({test}) else true)")
    }
}

/// The value is `directory` or inside it. The directory's own characters are literal, so a
/// `*` in it is escaped before the trailing wildcard is added.
fn under_test(value: &str, directory: &str) -> String {
    let literal = escape_string(directory);
    let prefix = if directory.ends_with('/') {
        literal.replace('*', "\\*")
    } else {
        format!("{}/", literal.replace('*', "\\*"))
    };
    format!("{value} == \"{literal}\" || {value} like \"{prefix}*\"")
}
