//! What a tool does: read, write or destructive, and which rule said so.
//!
//! The order is fixed: the operator's override, then the server's MCP annotations, then
//! heuristics on the name and description; a tool nothing recognises counts as write.
//! Annotations come from the upstream server and are only hints, which is why an override
//! always wins over them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a tool does, ordered from least to most dangerous; a grant's access level includes
/// every class below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Only looks: no change anywhere.
    Read,
    /// Changes something that can be changed back.
    Write,
    /// Deletes, overwrites or revokes: cannot be undone.
    Destructive,
}

impl Class {
    /// The lowercase name used in config, Cedar and receipts: `read`, `write`, `destructive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Destructive => "destructive",
        }
    }

    /// The number Cedar policies compare (`resource.level`): 1, 2 or 3.
    pub fn level(self) -> i64 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
            Self::Destructive => 3,
        }
    }
}

/// Which rule decided a tool's [`Class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassSource {
    /// The operator's override in the gateway config.
    Override,
    /// The server's `readOnlyHint` / `destructiveHint` annotations.
    Annotations,
    /// A verb recognised in the tool's name or, failing that, its description.
    Heuristic,
    /// Nothing was recognised, so the tool counts as write.
    Default,
}

impl ClassSource {
    /// The lowercase name shown by `gatehouse tools`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Override => "override",
            Self::Annotations => "annotations",
            Self::Heuristic => "heuristic",
            Self::Default => "default",
        }
    }
}

/// Classifies one tool as announced by its server (`tools/list` entry: `name`, `description`,
/// `annotations`).
///
/// 1. `operator_override`, when given, decides.
/// 2. Annotations, when `readOnlyHint` or `destructiveHint` is a boolean: `destructiveHint:
///    true` is destructive (even beside `readOnlyHint: true`, a contradiction resolved towards
///    the safer answer); `readOnlyHint: true` is read; otherwise the spec's defaults apply, so
///    `readOnlyHint: false` without `destructiveHint: false` is destructive, and
///    `destructiveHint: false` is write.
/// 3. Heuristics: the words of the name (`delete_issue`, `getUser`); the most dangerous verb
///    found decides (`get_or_create` is write). Only when the name has no known verb is the
///    first sentence of the description read the same way.
/// 4. Otherwise write.
pub fn classify(tool: &Value, operator_override: Option<Class>) -> (Class, ClassSource) {
    if let Some(class) = operator_override {
        return (class, ClassSource::Override);
    }
    if let Some(class) = class_from_annotations(tool.get("annotations")) {
        return (class, ClassSource::Annotations);
    }
    let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let first_sentence = description
        .split(['.', '\n', ';'])
        .next()
        .unwrap_or(description);
    match class_from_words(name).or_else(|| class_from_words(first_sentence)) {
        Some(class) => (class, ClassSource::Heuristic),
        None => (Class::Write, ClassSource::Default),
    }
}

/// The class the MCP annotations state, if they state one.
fn class_from_annotations(annotations: Option<&Value>) -> Option<Class> {
    let annotations = annotations?;
    let read_only = annotations.get("readOnlyHint").and_then(Value::as_bool);
    let destructive = annotations.get("destructiveHint").and_then(Value::as_bool);
    match (read_only, destructive) {
        (None, None) => None,
        (_, Some(true)) => Some(Class::Destructive),
        (Some(true), _) => Some(Class::Read),
        (_, Some(false)) => Some(Class::Write),
        (Some(false), None) => Some(Class::Destructive),
    }
}

/// Verbs that mark a tool destructive.
const DESTRUCTIVE_VERBS: &[&str] = &[
    "delete",
    "del",
    "drop",
    "remove",
    "rm",
    "destroy",
    "purge",
    "revoke",
    "erase",
    "wipe",
    "truncate",
    "terminate",
    "kill",
    "uninstall",
    "unlink",
    "shred",
];

/// Verbs that mark a tool write.
const WRITE_VERBS: &[&str] = &[
    "create", "update", "post", "send", "write", "set", "put", "patch", "add", "insert", "modify",
    "edit", "upload", "execute", "exec", "run", "invoke", "trigger", "deploy", "merge", "push",
    "publish", "move", "rename", "replace", "assign", "resolve", "close", "reopen", "approve",
    "reject", "comment", "reply", "commit", "submit", "save", "apply", "start", "stop", "restart",
    "enable", "disable", "install", "cancel", "archive", "import", "transfer",
];

/// Verbs that mark a tool read.
const READ_VERBS: &[&str] = &[
    "get", "list", "read", "search", "query", "fetch", "describe", "show", "view", "find",
    "lookup", "inspect", "browse",
];

/// The most dangerous class among the known verbs in `text`, if any verb is known.
fn class_from_words(text: &str) -> Option<Class> {
    let mut found = None;
    for word in words(text) {
        let class = if DESTRUCTIVE_VERBS.iter().any(|verb| is_form_of(&word, verb)) {
            Class::Destructive
        } else if WRITE_VERBS.iter().any(|verb| is_form_of(&word, verb)) {
            Class::Write
        } else if READ_VERBS.iter().any(|verb| is_form_of(&word, verb)) {
            Class::Read
        } else {
            continue;
        };
        found = found.max(Some(class));
    }
    found
}

/// Lowercase words of an identifier or sentence: split at anything not a letter or digit and
/// at camelCase boundaries (`getUserHTTPStatus` gives get, user, http, status).
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for chunk in text.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = chunk.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let lower_to_upper = chars[i - 1].is_lowercase() && chars[i].is_uppercase();
            let acronym_end = chars[i - 1].is_uppercase()
                && chars[i].is_uppercase()
                && chars.get(i + 1).is_some_and(|next| next.is_lowercase());
            if lower_to_upper || acronym_end {
                words.push(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        if start < chars.len() {
            words.push(chars[start..].iter().collect::<String>().to_lowercase());
        }
    }
    words
}

/// True when `word` is `verb` or a regular inflection of it (`deletes`, `deleted`,
/// `deleting`, `dropped`, `queries`).
fn is_form_of(word: &str, verb: &str) -> bool {
    let Some(rest) = word.strip_prefix(verb) else {
        return inflected_stem(word, verb);
    };
    if matches!(rest, "" | "s" | "es" | "d" | "ed" | "ing") {
        return true;
    }
    // A doubled final consonant: drop, dropped, dropping.
    let last = verb.chars().last().unwrap_or(' ');
    rest.strip_prefix(last)
        .is_some_and(|tail| matches!(tail, "ed" | "ing"))
}

/// Inflections that change the verb's last letter: `create` / `creating`, `query` / `queries`.
fn inflected_stem(word: &str, verb: &str) -> bool {
    if let Some(stem) = verb.strip_suffix('e')
        && word.strip_prefix(stem) == Some("ing")
    {
        return true;
    }
    if let Some(stem) = verb.strip_suffix('y')
        && let Some(rest) = word.strip_prefix(stem)
    {
        return matches!(rest, "ies" | "ied");
    }
    false
}
