//! Decision tables: AZ-DEFAULTDENY, AZ-DENYWINS, AZ-CEDAR-ERROR, AZ-LISTVSCALL, AZ-ARGS, and
//! access levels, environments and expiry.

use serde_json::json;

use super::{check, listing, using};

/// `alice@eng` may read Sentry.
const SENTRY_READ: &str = r#"
[[grant]]
to = ["group:eng"]
tools = ["sentry__*"]
access = "read"
"#;

#[test]
fn default_deny() {
    check(
        "",
        using("alice@eng", "tool:read sentry__get_issue"),
        "deny",
    );
    check(
        "",
        listing("alice@eng", "tool:read sentry__get_issue"),
        "deny",
    );
    // A grant for someone else, or for other tools, gives nothing.
    check(
        SENTRY_READ,
        using("bob@sales", "tool:read sentry__get_issue"),
        "deny",
    );
    check(
        SENTRY_READ,
        using("alice@eng", "tool:read github__get_issue"),
        "deny",
    );
    check(
        SENTRY_READ,
        using("alice@eng", "tool:read sentry__get_issue"),
        "allow grant-1",
    );
}

#[test]
fn principals_by_user_group_team_and_everyone() {
    let policy = r#"
        [[grant]]
        id = "by-user"
        to = ["user:carol"]
        tools = ["a__*"]
        [[grant]]
        id = "by-team"
        to = ["team:payments", "group:ops"]
        tools = ["b__*"]
        [[grant]]
        id = "everyone"
        to = ["*"]
        tools = ["c__*"]
    "#;
    check(policy, using("carol", "tool:read a__x"), "allow by-user");
    check(policy, using("dave", "tool:read a__x"), "deny");
    check(
        policy,
        using("dave+payments", "tool:read b__x"),
        "allow by-team",
    );
    check(policy, using("dave@ops", "tool:read b__x"), "allow by-team");
    check(policy, using("dave@payments", "tool:read b__x"), "deny");
    check(policy, using("anyone", "tool:read c__x"), "allow everyone");
}

#[test]
fn deny_wins() {
    // AZ-DENYWINS: one role allows slack_*, another denies slack_post_message.
    let policy = r#"
        [[grant]]
        id = "eng-slack"
        to = ["group:eng"]
        tools = ["slack__*"]
        access = "destructive"
        [[grant]]
        id = "no-posting"
        effect = "deny"
        to = ["team:support"]
        tools = ["slack__post_message"]
    "#;
    let alice = "alice@eng+support";
    check(
        policy,
        using(alice, "tool:write slack__post_message"),
        "deny no-posting",
    );
    check(
        policy,
        listing(alice, "tool:write slack__post_message"),
        "deny no-posting",
    );
    check(
        policy,
        using(alice, "tool:read slack__read"),
        "allow eng-slack",
    );
    check(
        policy,
        using("bob@eng", "tool:write slack__post_message"),
        "allow eng-slack",
    );
}

#[test]
fn access_levels_follow_tool_class() {
    check(
        SENTRY_READ,
        using("alice@eng", "tool:read sentry__get_issue"),
        "allow grant-1",
    );
    check(
        SENTRY_READ,
        using("alice@eng", "tool:write sentry__resolve_issue"),
        "deny",
    );
    check(
        SENTRY_READ,
        using("alice@eng", "tool:destructive sentry__delete_issue"),
        "deny",
    );
    // The same answer for listing: a read-only user does not even see write tools.
    check(
        SENTRY_READ,
        listing("alice@eng", "tool:write sentry__resolve_issue"),
        "deny",
    );

    let write = SENTRY_READ.replace("\"read\"", "\"write\"");
    check(
        &write,
        using("alice@eng", "tool:read sentry__get_issue"),
        "allow grant-1",
    );
    check(
        &write,
        using("alice@eng", "tool:write sentry__resolve_issue"),
        "allow grant-1",
    );
    check(
        &write,
        using("alice@eng", "tool:destructive sentry__delete_issue"),
        "deny",
    );

    let destructive = SENTRY_READ.replace("\"read\"", "\"destructive\"");
    check(
        &destructive,
        using("alice@eng", "tool:destructive sentry__delete_issue"),
        "allow grant-1",
    );

    // A deny's access level is the lowest class it stops.
    let deny_writes = r#"
        [[grant]]
        to = ["*"]
        servers = ["*"]
        access = "destructive"
        [[grant]]
        effect = "deny"
        to = ["user:intern"]
        servers = ["*"]
        access = "write"
    "#;
    check(
        deny_writes,
        using("intern", "tool:read x__get"),
        "allow grant-1",
    );
    check(
        deny_writes,
        using("intern", "tool:write x__set"),
        "deny grant-2",
    );
    check(
        deny_writes,
        using("intern", "tool:destructive x__drop"),
        "deny grant-2",
    );
}

#[test]
fn kinds_and_servers() {
    let policy = r#"
        [[grant]]
        to = ["*"]
        prompts = ["sentry__*"]
        [[grant]]
        to = ["*"]
        resources = ["file:///workspace/*"]
        [[grant]]
        to = ["*"]
        servers = ["git*"]
    "#;
    check(policy, using("a", "prompt sentry__triage"), "allow grant-1");
    check(policy, using("a", "tool:read sentry__triage"), "deny");
    check(
        policy,
        using("a", "resource file:///workspace/notes.md"),
        "allow grant-2",
    );
    check(
        policy,
        using("a", "template file:///workspace/{path}"),
        "allow grant-2",
    );
    check(policy, using("a", "resource file:///etc/passwd"), "deny");
    check(
        policy,
        using("a", "tool:read github__get_repo"),
        "allow grant-3",
    );
    check(
        policy,
        using("a", "prompt gitlab__summary"),
        "allow grant-3",
    );
    check(
        policy,
        using("a", "tool:write github__create_issue"),
        "deny",
    );
}

#[test]
fn environment_scoping() {
    let policy = r#"
        [[grant]]
        id = "staging-all"
        to = ["group:eng"]
        servers = ["*"]
        access = "destructive"
        environment = "staging"
        [[grant]]
        id = "prod-read"
        to = ["group:eng"]
        servers = ["*"]
        environment = "production"
        [[grant]]
        id = "no-prod-writes"
        effect = "deny"
        to = ["*"]
        servers = ["*"]
        access = "write"
        environment = "production"
    "#;
    check(
        policy,
        using("a@eng", "tool:destructive db__drop@staging"),
        "allow staging-all",
    );
    check(
        policy,
        using("a@eng", "tool:read db__query@production"),
        "allow prod-read",
    );
    check(
        policy,
        using("a@eng", "tool:write db__insert@production"),
        "deny no-prod-writes",
    );
    check(policy, using("a@eng", "tool:read db__query"), "deny");
}

#[test]
fn unknown_and_hidden_tools_are_denied() {
    // AZ-DEFAULTDENY: a tool announced later matches no permit.
    let named = r#"
        [[grant]]
        to = ["*"]
        tools = ["sentry__get_issue"]
    "#;
    check(
        named,
        listing("a", "tool:read sentry__get_issue"),
        "allow grant-1",
    );
    check(named, listing("a", "tool:read sentry__new_tool"), "deny");
    check(named, using("a", "tool:read sentry__new_tool"), "deny");
    // A new tool that nothing classifies counts as write, so a read grant does not cover it.
    check(
        SENTRY_READ,
        using("alice@eng", "tool:write sentry__frobnicate"),
        "deny",
    );
    // AZ-LISTVSCALL: the hidden tool called by name, or by a case variant, is still denied.
    check(named, using("a", "tool:read Sentry__Get_Issue"), "deny");
    check(named, using("a", "tool:read SENTRY__GET_ISSUE"), "deny");
}

#[test]
fn path_conditions_resist_traversal() {
    // AZ-ARGS.
    let policy = r#"
        [[grant]]
        to = ["*"]
        tools = ["fs__*"]
        access = "write"
        arguments = [{ arg = "path", under = "/workspace" }]
    "#;
    let call = |path: serde_json::Value| {
        using("a", "tool:write fs__write_file").args(json!({ "path": path }))
    };
    for allowed in [
        "/workspace",
        "/workspace/notes.md",
        "/workspace//src///main.rs",
        "/workspace/./src/./lib.rs",
        "/workspace/",
    ] {
        check(policy, call(json!(allowed)), "allow grant-1");
    }
    for denied in [
        "../etc/passwd",
        "/workspace/../etc/passwd",
        "/workspace/%2e%2e/etc/passwd",
        "/workspace/%2E%2E/etc/passwd",
        "%2e%2e/etc/passwd",
        "/workspace/%252e%252e/etc/passwd",
        "/workspace/..%2fetc/passwd",
        "/workspace/link/../../etc/passwd",
        "/workspace/link/../secret",
        "/workspace\\..\\etc\\passwd",
        "/workspace\\notes.md",
        "%2Fworkspace%2Fnotes.md",
        "C:\\workspace\\notes.md",
        "\\\\server\\workspace\\notes.md",
        "//workspace/notes.md",
        "/etc/passwd",
        "/workspace-evil/notes.md",
        "/workspaces/notes.md",
        "workspace/notes.md",
        "/workspace/\u{FF0E}\u{FF0E}/etc",
        "/workspace/a\u{0}b",
        "",
    ] {
        check(policy, call(json!(denied)), "deny");
    }
    // Missing or not a string: denied.
    check(policy, using("a", "tool:write fs__write_file"), "deny");
    check(policy, call(json!(["/workspace/a"])), "deny");
    check(policy, call(json!(7)), "deny");
    // A listing has no arguments and still shows the tool.
    check(
        policy,
        listing("a", "tool:write fs__write_file"),
        "allow grant-1",
    );
}

#[test]
fn other_argument_conditions() {
    let policy = r#"
        [[grant]]
        to = ["*"]
        tools = ["cloud__*"]
        access = "write"
        arguments = [
            { arg = "region", one_of = ["eu-west-1", "eu-central-1"] },
            { arg = "count", min = 1, max = 10 },
            { arg = "bucket", matches = "team-*" },
        ]
    "#;
    let call = |args| using("a", "tool:write cloud__launch").args(args);
    let ok = json!({ "region": "eu-west-1", "count": 10, "bucket": "team-a" });
    check(policy, call(ok), "allow grant-1");
    for denied in [
        json!({ "region": "us-east-1", "count": 1, "bucket": "team-a" }),
        json!({ "region": "EU-WEST-1", "count": 1, "bucket": "team-a" }),
        json!({ "region": "eu-west-1", "count": 11, "bucket": "team-a" }),
        json!({ "region": "eu-west-1", "count": 0, "bucket": "team-a" }),
        json!({ "region": "eu-west-1", "count": 2.5, "bucket": "team-a" }),
        json!({ "region": "eu-west-1", "count": "5", "bucket": "team-a" }),
        json!({ "region": "eu-west-1", "count": 5, "bucket": "other" }),
        json!({ "region": "eu-west-1", "count": 5 }),
    ] {
        check(policy, call(denied), "deny");
    }
}

#[test]
fn deny_conditions_fail_closed() {
    let policy = r#"
        [[grant]]
        to = ["*"]
        tools = ["fs__*"]
        access = "write"
        [[grant]]
        id = "no-etc"
        effect = "deny"
        to = ["*"]
        tools = ["fs__*"]
        arguments = [{ arg = "path", under = "/etc" }]
    "#;
    let call = |args| using("a", "tool:write fs__write_file").args(args);
    check(policy, call(json!({ "path": "/tmp/x" })), "allow grant-1");
    check(
        policy,
        call(json!({ "path": "/etc/passwd" })),
        "deny no-etc",
    );
    check(policy, call(json!({ "path": "/etc" })), "deny no-etc");
    // Unreadable or missing values count as matching the deny.
    check(
        policy,
        call(json!({ "path": "/tmp/../etc/passwd" })),
        "deny no-etc",
    );
    check(policy, call(json!({ "path": 42 })), "deny no-etc");
    check(policy, call(json!({})), "deny no-etc");
    // The listing is not affected by a deny on some arguments.
    check(
        policy,
        listing("a", "tool:write fs__write_file"),
        "allow grant-1",
    );
}

#[test]
fn expiry_lapses_by_itself() {
    let policy = r#"
        [[grant]]
        id = "incident-4711"
        to = ["user:alice"]
        tools = ["db__*"]
        access = "destructive"
        expires = "2026-06-01T00:00:00+02:00"
        reason = "INC-4711: clean up the broken migration"
        [[grant]]
        id = "freeze"
        effect = "deny"
        to = ["*"]
        tools = ["db__*"]
        access = "write"
        expires = "2026-05-15T00:00:00Z"
        reason = "CHG-12 release freeze"
    "#;
    let drop = || using("alice", "tool:destructive db__drop_table");
    check(policy, drop().at("2026-05-14T23:59:59Z"), "deny freeze");
    check(
        policy,
        drop().at("2026-05-15T00:00:00Z"),
        "allow incident-4711",
    );
    check(
        policy,
        drop().at("2026-05-31T21:59:59.999Z"),
        "allow incident-4711",
    );
    check(policy, drop().at("2026-05-31T22:00:00Z"), "deny");
    check(policy, drop().at("2027-01-01T00:00:00Z"), "deny");
}

#[test]
fn erroring_forbid_denies() {
    // AZ-CEDAR-ERROR: the forbid overflows at run time while a permit matches.
    let policy = r#"
        cedar = '''
        @id("overflowing")
        forbid (principal, action, resource)
        when { resource.level + 9223372036854775807 > 0 && resource.name == "never" };
        '''
        [[grant]]
        to = ["*"]
        servers = ["*"]
        access = "destructive"
    "#;
    check(
        policy,
        using("a", "tool:read x__get"),
        "deny overflowing (error)",
    );
    check(
        policy,
        listing("a", "tool:read x__get"),
        "deny overflowing (error)",
    );

    // A forbid that reads an entity this request does not carry: valid against the schema,
    // an error at run time.
    let missing = r#"
        cedar = '''
        @id("reads-another-tool")
        forbid (principal, action, resource) when { Tool::"admin__nuke".level > 2 };
        '''
        [[grant]]
        to = ["*"]
        servers = ["*"]
    "#;
    check(
        missing,
        using("a", "tool:read x__get"),
        "deny reads-another-tool (error)",
    );
    let set = super::compile(missing).expect("compiles");
    let decision = super::decide(&set, &using("a", "tool:read x__get"));
    assert_eq!(
        decision.reason,
        "a may not call `x__get`: reads-another-tool could not be evaluated, and a rule that fails counts as a deny"
    );
    assert!(
        decision.errors[0].contains("reads-another-tool"),
        "{:?}",
        decision.errors
    );
}

#[test]
fn raw_cedar_rules_are_named() {
    let policy = r#"
        cedar = '''
        permit (principal in Group::"sre", action, resource is Tool)
        when { resource.server == "pagerduty" };

        @id("no-weekend-deploys")
        forbid (principal, action == Action::"call", resource is Tool)
        when { resource.name like "*deploy*" && context.now.toDate() == datetime("2026-05-02") };
        '''
    "#;
    check(
        policy,
        using("a@sre", "tool:write pagerduty__ack"),
        "allow test.cedar#1",
    );
    check(
        policy,
        using("a@sre", "tool:write pagerduty__deploy").at("2026-05-02T10:00:00Z"),
        "deny no-weekend-deploys",
    );
    check(
        policy,
        using("a@sre", "tool:write pagerduty__deploy").at("2026-05-03T10:00:00Z"),
        "allow test.cedar#1",
    );

    let set = super::compile(policy).expect("compiles");
    let lines: Vec<String> = set
        .rules()
        .iter()
        .map(|rule| rule.location.to_string())
        .collect();
    assert_eq!(lines, ["test.cedar line 1", "test.cedar line 4"]);
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
}

#[test]
fn decisions_carry_reason_and_hash() {
    let set = super::compile(SENTRY_READ).expect("compiles");
    let allowed = super::decide(&set, &using("alice@eng", "tool:read sentry__get_issue"));
    assert_eq!(
        allowed.reason,
        "alice may call `sentry__get_issue`: allowed by grant-1"
    );
    assert_eq!(&*allowed.policy_hash, set.hash());
    let hidden = super::decide(&set, &listing("bob", "tool:read sentry__get_issue"));
    assert_eq!(
        hidden.reason,
        "bob may not see `sentry__get_issue`: no rule allows it"
    );
}
