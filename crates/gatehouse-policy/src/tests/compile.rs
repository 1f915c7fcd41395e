//! Loading: every problem refused with its location, and a stable hash.

use super::compile;

/// The refusal message for a policy that must not compile.
#[track_caller]
fn refused(policy_toml: &str) -> String {
    match compile(policy_toml) {
        Ok(set) => panic!("policy compiled but should not have:\n{}", set.text()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn grant_problems_are_located() {
    let table = [
        (
            r#"[[grant]]
            tools = ["a__*"]"#,
            "policy refused: grant 1: `to` is missing or empty; name users, groups or teams (`group:eng`), or `*` for everyone",
        ),
        (
            r#"[[grant]]
            id = "x"
            to = ["admins"]
            tools = ["a__*"]"#,
            "policy refused: grant 1 (`x`): `to` entry `admins` must be `user:ID`, `group:NAME`, `team:NAME` or `*`",
        ),
        (
            r#"[[grant]]
            to = ["*"]"#,
            "policy refused: grant 1: a grant must name `servers`, `tools`, `prompts` or `resources`; use `servers = [\"*\"]` for everything",
        ),
        (
            r#"[[grant]]
            to = ["*"]
            tools = ["a__*"]
            expires = "2026-06-01T00:00:00Z""#,
            "policy refused: grant 1: `expires` needs a `reason` (such as a ticket reference)",
        ),
        (
            r#"[[grant]]
            to = ["*"]
            tools = ["a__*"]
            expires = "next tuesday"
            reason = "T-1""#,
            "policy refused: grant 1: `expires = \"next tuesday\"` is not an RFC 3339 time such as 2026-07-01T00:00:00Z (premature end of input)",
        ),
        (
            r#"[[grant]]
            to = ["*"]
            tools = []"#,
            "policy refused: grant 1: `tools` is empty and would match nothing; remove it or add a pattern",
        ),
        (
            r#"[[grant]]
            to = ["*"]
            tools = ["caf\u00e9__*"]"#,
            "policy refused: grant 1: `tools`: pattern `café__*` contains 'é'; exposed names are printable ASCII, so it could never match",
        ),
        (
            r#"[[grant]]
            to = ["*"]
            tools = ["fs__*"]
            arguments = [{ arg = "path", under = "/workspace/../etc" }]"#,
            "policy refused: grant 1: `arguments` entry 1: `under = \"/workspace/../etc\"` must be an absolute path without `..`",
        ),
        (
            r#"[[grant]]
            to = ["*"]
            tools = ["fs__*"]
            arguments = [{ arg = "n", min = 3, max = 2 }, { arg = "p", under = "/a", one_of = ["b"] }]"#,
            "policy refused: grant 1: `arguments` entry 1: argument `n`: `min` 3 is above `max` 2; grant 1: `arguments` entry 2: argument `p` needs exactly one test: `under`, `one_of`, `matches`, or `min`/`max`",
        ),
        (
            r#"[[grant]]
            id = "same"
            to = ["*"]
            tools = ["a"]
            [[grant]]
            id = "same"
            to = ["*"]
            tools = ["b"]"#,
            "policy refused: grant 2 (`same`): rule id `same` is used more than once",
        ),
        (
            r#"[[grant]]
            id = "has space"
            to = ["*"]
            tools = ["a"]"#,
            "policy refused: grant 1 (`has space`): id `has space` must be 1 to 128 letters, digits, `-`, `_`, `.`, `/` or `#`",
        ),
    ];
    for (policy, expected) in table {
        assert_eq!(refused(policy), expected);
    }
}

#[test]
fn unknown_keys_are_refused() {
    let error = toml::from_str::<crate::RawPolicy>(
        r#"[[grant]]
        to = ["*"]
        tool = ["a__*"]"#,
    )
    .expect_err("misspelt key");
    assert!(
        error.to_string().contains("unknown field `tool`"),
        "{error}"
    );
}

#[test]
fn cedar_problems_are_located() {
    let syntax = refused(
        "cedar = '''\npermit (principal, action, resource);\n\npermit (principal, action resource);\n'''",
    );
    assert!(
        syntax.starts_with("policy refused: test.cedar line 3: "),
        "{syntax}"
    );

    let schema = refused(
        "cedar = '''\npermit (principal, action, resource);\n@id(\"owner-check\")\npermit (principal, action, resource is Tool)\n  when { resource.owner == principal };\n'''",
    );
    assert!(
        schema.starts_with("policy refused: test.cedar line 4: "),
        "{schema}"
    );
    assert!(schema.contains("owner"), "{schema}");

    let unguarded = refused(
        "cedar = '''\npermit (principal, action, resource) when { resource.environment == \"production\" };\n'''",
    );
    assert!(
        unguarded.starts_with("policy refused: test.cedar line 1: "),
        "{unguarded}"
    );

    let template = refused("cedar = '''\npermit (principal == ?principal, action, resource);\n'''");
    assert!(template.contains("templates"), "{template}");
}

#[test]
fn hash_is_stable_and_follows_the_text() {
    let policy = r#"
        [[grant]]
        to = ["group:eng"]
        tools = ["sentry__*"]
    "#;
    let first = compile(policy).expect("compiles");
    let again = compile(policy).expect("compiles");
    assert_eq!(first.hash(), again.hash());
    assert_eq!(first.hash().len(), 64);
    let changed = compile(&policy.replace("sentry", "github")).expect("compiles");
    assert_ne!(first.hash(), changed.hash());
    assert_ne!(crate::PolicySet::empty().hash(), first.hash());
    assert!(crate::PolicySet::empty().rules().is_empty());
}

#[test]
fn compiled_grant_text_reads_well() {
    let set = compile(
        r#"
        [[grant]]
        id = "fs-write"
        to = ["group:eng", "user:alice"]
        tools = ["fs__*"]
        servers = ["fs"]
        access = "write"
        environment = "staging"
        expires = "2026-06-01T00:00:00Z"
        reason = "T-1"
        arguments = [{ arg = "path", under = "/workspace" }]
    "#,
    )
    .expect("compiles");
    let rule = set.rule("fs-write").expect("rule");
    assert_eq!(
        rule.text,
        r#"@id("fs-write")
@reason("T-1")
@expires("2026-06-01T00:00:00.000Z")
permit (principal, action, resource)
when {
  (principal in Group::"eng" || principal in User::"alice")
  && ((resource is Tool && (resource.name like "fs__*")))
  && (resource.server like "fs")
  && resource.level <= 2
  && (resource has environment && resource.environment == "staging")
  && context.now < datetime("2026-06-01T00:00:00.000Z")
  && (action == Action::"list" || ((context.args.path.hasTag("path") && (context.args.path.getTag("path") == "/workspace" || context.args.path.getTag("path") like "/workspace/*"))))
};
"#
    );
    assert_eq!(rule.expires.as_deref(), Some("2026-06-01T00:00:00.000Z"));
    assert_eq!(rule.reason.as_deref(), Some("T-1"));
}
