//! Decision latency: p50 and p99 with 10 and 500 rules over 1,000 tools.
//!
//! Run with `cargo bench -p gatehouse-policy`. Three shapes of policy per size:
//! - `mixed`: grants to groups, teams, users and everyone, with globs, environments, argument
//!   conditions, expiry and denies (what a real team writes);
//! - `everyone`: every grant is `to = ["*"]`, so the principal index filters nothing and only
//!   the name and server pre-filter helps;
//! - `all-match`: every grant matches every request, the worst case, where Cedar evaluates
//!   every rule.

use std::error::Error;
use std::time::{Duration, Instant, SystemTime};

use gatehouse_policy::{
    Action, Class, DecisionRequest, Item, ItemKind, PolicySet, Principal, RawArgumentCondition,
    RawEffect, RawGrant,
};
use serde_json::{Map, Value, json};

const SERVERS: usize = 50;
const TOOLS_PER_SERVER: usize = 20;
const MEASURED: usize = 20_000;

fn main() -> Result<(), Box<dyn Error>> {
    let tools = tools();
    let principal = Principal {
        user: "u1".to_owned(),
        groups: vec!["g1".to_owned(), "g2".to_owned(), "g3".to_owned()],
        teams: vec!["t1".to_owned()],
    };
    let arguments: Map<String, Value> = json!({ "path": "/workspace/src/main.rs", "n": 3 })
        .as_object()
        .cloned()
        .unwrap_or_default();
    println!(
        "decision latency over {} tools, {MEASURED} decisions each",
        tools.len()
    );
    for rules in [10, 500] {
        for shape in ["mixed", "everyone", "all-match"] {
            let grants: Vec<RawGrant> = (0..rules).map(|i| grant(shape, i)).collect();
            let set = PolicySet::compile(&grants, &[])?;
            let mut allowed = 0;
            let mut timings = Vec::with_capacity(MEASURED);
            let now = SystemTime::now();
            for round in 0..(MEASURED + 2_000) {
                let item = &tools[(round * 7) % tools.len()];
                let action = if round % 2 == 0 {
                    Action::List
                } else {
                    Action::Use
                };
                let request = DecisionRequest {
                    principal: &principal,
                    action,
                    item,
                    arguments: Some(&arguments),
                };
                let started = Instant::now();
                let decision = set.decide(&request, now);
                let elapsed = started.elapsed();
                // The first 2,000 decisions warm caches and are not counted.
                if round >= 2_000 {
                    timings.push(elapsed);
                    allowed += usize::from(decision.is_allowed());
                }
            }
            timings.sort_unstable();
            println!(
                "{rules:>4} rules {shape:<10} p50 {:>9}  p99 {:>9}  max {:>9}  ({}% allowed)",
                micros(percentile(&timings, 50)),
                micros(percentile(&timings, 99)),
                micros(timings.last().copied().unwrap_or_default()),
                allowed * 100 / MEASURED
            );
        }
    }
    Ok(())
}

/// 50 servers of 20 tools: reads, writes and destructive ones; every third server is
/// production, every third staging.
fn tools() -> Vec<Item> {
    let verbs = [
        ("get", Class::Read),
        ("list", Class::Read),
        ("create", Class::Write),
        ("delete", Class::Destructive),
    ];
    let mut tools = Vec::new();
    for server in 0..SERVERS {
        for tool in 0..TOOLS_PER_SERVER {
            let (verb, class) = verbs[tool % verbs.len()];
            tools.push(Item {
                kind: ItemKind::Tool(class),
                server: format!("srv{server}"),
                name: format!("srv{server}__{verb}_thing_{tool}"),
                environment: match server % 3 {
                    0 => Some("production".to_owned()),
                    1 => Some("staging".to_owned()),
                    _ => None,
                },
            });
        }
    }
    tools
}

/// The `i`-th grant of a policy of the given shape.
fn grant(shape: &str, i: usize) -> RawGrant {
    let server = i % SERVERS;
    let everyone = vec!["*".to_owned()];
    match shape {
        "all-match" => RawGrant {
            to: everyone,
            servers: Some(vec!["*".to_owned()]),
            access: Some(Class::Destructive),
            ..RawGrant::default()
        },
        _ => {
            let mut grant = mixed_grant(i, server);
            if shape == "everyone" {
                grant.to = everyone;
            }
            grant
        }
    }
}

/// A mix of the grant forms a team writes.
fn mixed_grant(i: usize, server: usize) -> RawGrant {
    let to = |who: String| vec![who];
    match i % 5 {
        0 => RawGrant {
            to: to(format!("group:g{}", i % 20)),
            tools: Some(vec![format!("srv{server}__*")]),
            access: Some(Class::Read),
            ..RawGrant::default()
        },
        1 => RawGrant {
            to: to(format!("team:t{}", i % 10)),
            servers: Some(vec![format!("srv{server}")]),
            access: Some(Class::Write),
            environment: Some("staging".to_owned()),
            ..RawGrant::default()
        },
        2 => RawGrant {
            to: to(format!("user:u{}", i % 100)),
            tools: Some(vec![format!("*_thing_{}*", i % 7)]),
            access: Some(Class::Destructive),
            ..RawGrant::default()
        },
        3 => RawGrant {
            effect: Some(RawEffect::Deny),
            to: to(format!("group:g{}", i % 20)),
            tools: Some(vec![format!("srv{server}__delete_*")]),
            ..RawGrant::default()
        },
        _ => RawGrant {
            to: to("*".to_owned()),
            tools: Some(vec![format!(
                "srv{server}__*_thing_{}",
                i % TOOLS_PER_SERVER
            )]),
            access: Some(Class::Write),
            arguments: vec![RawArgumentCondition {
                arg: "path".to_owned(),
                under: Some("/workspace".to_owned()),
                ..RawArgumentCondition::default()
            }],
            expires: Some("2099-01-01T00:00:00Z".to_owned()),
            reason: Some(format!("T-{i}")),
            ..RawGrant::default()
        },
    }
}

/// The `p`-th percentile of sorted timings.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// `12.3 µs`.
fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}
