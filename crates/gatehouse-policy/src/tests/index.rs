//! The pre-filter gives the same answers as Cedar over the whole set.

use crate::{Action, DecisionRequest, Item, ItemKind, Principal};

use super::{at, compile, summary};

/// Grants and Cedar rules that cover every pre-filter branch, with patterns that stress the
/// matcher (`*` at either end and in the middle, quotes, backslashes).
const POLICY: &str = r#"
cedar = '''
permit (principal == User::"u3", action, resource);
forbid (principal in Team::"t1", action == Action::"call", resource) when { resource.level >= 3 };
permit (principal in Group::"g2", action, resource) when { resource.name like "*\*" };
forbid (principal is User, action, resource) when { resource.level + 9223372036854775807 > 0 && principal == User::"u4" };
'''
[[grant]]
to = ["user:u1"]
tools = ["a__*"]
[[grant]]
to = ["group:g1", "team:t1"]
tools = ["*__get*", "b__x"]
prompts = ["*"]
access = "write"
[[grant]]
to = ["*"]
servers = ["c*", "d"]
access = "destructive"
[[grant]]
to = ["*"]
servers = ["a", "b"]
access = "write"
environment = "production"
[[grant]]
effect = "deny"
to = ["team:t2"]
servers = ["*"]
access = "destructive"
environment = "staging"
[[grant]]
effect = "deny"
to = ["group:g2"]
tools = ["*x*"]
access = "write"
[[grant]]
to = ["team:t2"]
resources = ["file:///*", "q\"uote*", "back\\slash*"]
[[grant]]
to = ["*"]
tools = ["**e**"]
expires = "2026-05-01T12:00:00Z"
reason = "T-2"
[[grant]]
effect = "deny"
to = ["user:u2", "group:g1"]
servers = ["a"]
expires = "2026-05-01T12:00:00Z"
reason = "T-3"
[[grant]]
to = ["*"]
tools = ["*a*b*"]
arguments = [{ arg = "n", max = 3 }]
"#;

#[test]
fn prefilter_matches_full_evaluation() {
    let set = compile(POLICY).expect("compiles");
    let principals = [
        Principal {
            user: "u1".into(),
            groups: vec![],
            teams: vec![],
        },
        Principal {
            user: "u2".into(),
            groups: vec!["g1".into()],
            teams: vec![],
        },
        Principal {
            user: "u3".into(),
            groups: vec!["g2".into()],
            teams: vec!["t1".into()],
        },
        Principal {
            user: "u4".into(),
            groups: vec![],
            teams: vec!["t2".into()],
        },
        Principal {
            user: "g1".into(),
            groups: vec![],
            teams: vec!["g1".into()],
        },
    ];
    let names = [
        "a__get",
        "b__x",
        "b__get_x",
        "d__e",
        "file:///etc",
        "q\"uote",
        "back\\slash",
        "",
        "*",
        "a*b",
        "\\*",
        "A__GET",
    ];
    let kinds = [
        ItemKind::Tool(crate::Class::Read),
        ItemKind::Tool(crate::Class::Destructive),
        ItemKind::Prompt,
        ItemKind::ResourceTemplate,
    ];
    let servers = ["a", "cc", "d", "dd"];
    let environments = [None, Some("production"), Some("staging")];
    let times = [at("2026-05-01T11:59:59.999Z"), at("2026-05-01T12:00:00Z")];
    let arguments = serde_json::json!({ "n": 3 });
    let arguments = arguments.as_object();
    let mut compared = 0;
    for principal in &principals {
        for name in names {
            for kind in kinds {
                for (server, environment) in
                    servers.iter().flat_map(|s| environments.map(|e| (s, e)))
                {
                    for now in times {
                        for action in [Action::List, Action::Use] {
                            let item = Item {
                                kind,
                                server: (*server).into(),
                                name: name.into(),
                                environment: environment.map(str::to_owned),
                            };
                            let request = DecisionRequest {
                                principal,
                                action,
                                item: &item,
                                arguments,
                            };
                            let filtered = summary(&set.decide(&request, now));
                            let full = summary(&set.decide_unfiltered(&request, now));
                            assert_eq!(
                                filtered, full,
                                "{principal:?} {action:?} {item:?} at {now:?}"
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(compared, 5 * 12 * 4 * 4 * 3 * 2 * 2);
}
