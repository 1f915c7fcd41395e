//! Table tests. Every decision test goes through [`check`], so the API can change without
//! rewriting the tables.

mod classify;
mod compile;
mod decide;
mod index;
mod names;

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    Action, Class, Decision, DecisionRequest, Effect, Item, ItemKind, PolicyFile, PolicySet,
    Principal, RawGrant,
};

/// A policy document for tests: grants, plus optional inline Cedar text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestPolicy {
    #[serde(default)]
    grant: Vec<RawGrant>,
    cedar: Option<String>,
}

/// Compiles a test policy document (TOML with `[[grant]]` tables and an optional `cedar`
/// string, which is loaded as the file `test.cedar`).
fn compile(policy_toml: &str) -> Result<PolicySet, crate::PolicyError> {
    let document: TestPolicy = toml::from_str(policy_toml).expect("test policy is valid TOML");
    let files: Vec<PolicyFile> = document
        .cedar
        .map(|text| PolicyFile {
            name: "test.cedar".to_owned(),
            text,
        })
        .into_iter()
        .collect();
    PolicySet::compile(&document.grant, &files)
}

/// One question to ask in a table.
#[derive(Debug, Clone)]
struct Ask {
    principal: Principal,
    action: Action,
    item: Item,
    arguments: Option<Map<String, Value>>,
    now: SystemTime,
}

/// The default instant tests decide at.
const NOW: &str = "2026-05-01T12:00:00Z";

/// Parses an RFC 3339 instant.
fn at(instant: &str) -> SystemTime {
    SystemTime::from(chrono::DateTime::parse_from_rfc3339(instant).expect("test instant"))
}

/// `alice`, `alice@eng` (group eng), `alice@eng,ops+payments` (groups eng and ops, team
/// payments).
fn who(spec: &str) -> Principal {
    let (rest, teams) = spec.split_once('+').unwrap_or((spec, ""));
    let (user, groups) = rest.split_once('@').unwrap_or((rest, ""));
    let list = |text: &str| {
        text.split(',')
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Principal {
        user: user.to_owned(),
        groups: list(groups),
        teams: list(teams),
    }
}

/// An item: `tool:read sentry__get_issue`, `prompt sentry__triage`, `resource file:///x`,
/// `template file:///{path}`, optionally ending in `@production`. The server is the part of
/// the name before `__` (or `files` for a resource).
fn item(spec: &str) -> Item {
    let (spec, environment) = match spec.rsplit_once('@') {
        Some((rest, environment)) => (rest, Some(environment.to_owned())),
        None => (spec, None),
    };
    let (kind, name) = spec.split_once(' ').expect("`KIND NAME`");
    let kind = match kind {
        "tool:read" => ItemKind::Tool(Class::Read),
        "tool:write" => ItemKind::Tool(Class::Write),
        "tool:destructive" => ItemKind::Tool(Class::Destructive),
        "prompt" => ItemKind::Prompt,
        "resource" => ItemKind::Resource,
        "template" => ItemKind::ResourceTemplate,
        other => panic!("unknown item kind {other}"),
    };
    let server = name.split_once("__").map_or("files", |(server, _)| server);
    Item {
        kind,
        server: server.to_owned(),
        name: name.to_owned(),
        environment,
    }
}

/// Using an item (call, get, read) with no arguments.
fn using(principal: &str, item_spec: &str) -> Ask {
    Ask {
        principal: who(principal),
        action: Action::Use,
        item: item(item_spec),
        arguments: None,
        now: at(NOW),
    }
}

/// Seeing an item in a list.
fn listing(principal: &str, item_spec: &str) -> Ask {
    Ask {
        action: Action::List,
        ..using(principal, item_spec)
    }
}

impl Ask {
    /// With these arguments (a JSON object).
    fn args(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments.as_object().expect("arguments object").clone());
        self
    }

    /// At this instant.
    fn at(mut self, instant: &str) -> Self {
        self.now = at(instant);
        self
    }
}

/// Decides `ask` against a compiled set.
fn decide(set: &PolicySet, ask: &Ask) -> Decision {
    set.decide(
        &DecisionRequest {
            principal: &ask.principal,
            action: ask.action,
            item: &ask.item,
            arguments: ask.arguments.as_ref(),
        },
        ask.now,
    )
}

/// A decision in one line: `allow grant-1`, `deny`, `deny grant-2`, and ` (error)` when
/// evaluation errors were reported.
fn summary(decision: &Decision) -> String {
    let mut line = match decision.effect {
        Effect::Allow => "allow".to_owned(),
        Effect::Deny => "deny".to_owned(),
    };
    for rule in &decision.rules {
        line.push(' ');
        line.push_str(rule);
    }
    if !decision.errors.is_empty() {
        line.push_str(" (error)");
    }
    line
}

/// The table helper: compiles `policy_toml`, decides `ask`, and compares the one-line summary.
#[track_caller]
fn check(policy_toml: &str, ask: Ask, expected: &str) {
    let set = match compile(policy_toml) {
        Ok(set) => set,
        Err(error) => panic!("policy did not compile: {error}"),
    };
    let decision = decide(&set, &ask);
    assert_eq!(
        summary(&decision),
        expected,
        "\nask: {ask:?}\nreason: {}\nerrors: {:?}\npolicy:\n{}",
        decision.reason,
        decision.errors,
        set.text()
    );
    // The pre-filter never changes an answer.
    let reference = set.decide_unfiltered(
        &DecisionRequest {
            principal: &ask.principal,
            action: ask.action,
            item: &ask.item,
            arguments: ask.arguments.as_ref(),
        },
        ask.now,
    );
    assert_eq!(summary(&reference), expected, "unfiltered decision differs");
}
