//! Users, groups, teams and memberships, through one transcript helper.
//!
//! Commands: `user add NAME DISPLAY`, `user show NAME`, `user list`, `user disable NAME`,
//! `user enable NAME`, `user remove NAME`; `group|team add NAME DESCRIPTION`,
//! `group|team show NAME`, `group|team list`, `group|team disable NAME`,
//! `group|team remove NAME`, `group|team join NAME USER`, `group|team leave NAME USER`,
//! `group|team members NAME`; `memberships USER`; `changes` (events since the last `changes`).

use gatehouse_store::{ChangeCursor, Group, GroupKind, User};

use crate::support::{TestDb, check_transcript, on_both_backends, render};

async fn check(db: &TestDb, steps: &[(&str, &str)]) {
    let store = &db.store;
    let mut cursor = ChangeCursor::START;
    check_transcript(steps, async |command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        let kind = |word: &str| match word {
            "group" => GroupKind::Group,
            _ => GroupKind::Team,
        };
        match words.as_slice() {
            ["user", "add", name, display] => {
                render(store.add_user(name, display).await, show_user)
            }
            ["user", "show", name] => render(store.user(name).await, show_user),
            ["user", "list"] => render(store.list_users().await, |users| {
                users
                    .into_iter()
                    .map(show_user)
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            ["user", "disable", name] => render(store.disable_user(name).await, show_user),
            ["user", "enable", name] => render(store.enable_user(name).await, show_user),
            ["user", "remove", name] => render(store.remove_user(name).await, |()| "ok".into()),
            [which @ ("group" | "team"), "add", name, description] => render(
                store.add_group(kind(which), name, description).await,
                show_group,
            ),
            [which @ ("group" | "team"), "show", name] => {
                render(store.group(kind(which), name).await, show_group)
            }
            [which @ ("group" | "team"), "list"] => {
                render(store.list_groups(kind(which)).await, |groups| {
                    groups
                        .into_iter()
                        .map(show_group)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }
            [which @ ("group" | "team"), "disable", name] => {
                render(store.disable_group(kind(which), name).await, show_group)
            }
            [which @ ("group" | "team"), "remove", name] => {
                render(store.remove_group(kind(which), name).await, |()| {
                    "ok".into()
                })
            }
            [which @ ("group" | "team"), "join", name, user] => {
                render(store.add_member(kind(which), name, user).await, |()| {
                    "ok".into()
                })
            }
            [which @ ("group" | "team"), "leave", name, user] => {
                render(store.remove_member(kind(which), name, user).await, |()| {
                    "ok".into()
                })
            }
            [which @ ("group" | "team"), "members", name] => {
                render(store.members(kind(which), name).await, |members| {
                    members.join(", ")
                })
            }
            ["memberships", user] => render(store.memberships(user).await, |memberships| {
                format!(
                    "groups [{}] teams [{}]",
                    memberships.groups.join(", "),
                    memberships.teams.join(", ")
                )
            }),
            ["changes"] => {
                let batch = store.changes_since(cursor).await.expect("read changes");
                cursor = batch.cursor;
                batch
                    .events
                    .iter()
                    .map(|event| format!("{} {}", event.kind, event.subject))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            _ => panic!("unknown command `{command}`"),
        }
    })
    .await;
}

fn show_user(user: User) -> String {
    format!(
        "{} ({}) {}",
        user.name,
        user.display_name,
        if user.is_disabled() {
            "disabled"
        } else {
            "enabled"
        }
    )
}

fn show_group(group: Group) -> String {
    format!(
        "{} {} ({}) {}",
        group.kind.as_str(),
        group.name,
        group.description,
        if group.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        }
    )
}

on_both_backends! {
    user_lifecycle: check, &[
        ("user list", ""),
        ("user add alice Alice", "alice (Alice) enabled"),
        ("user add bob Bob", "bob (Bob) enabled"),
        ("user add alice Other", "error: user `alice` already exists; choose another name or change the existing one"),
        ("user show alice", "alice (Alice) enabled"),
        ("user show carol", "error: user `carol` does not exist; list them to see the names in use"),
        ("user list", "alice (Alice) enabled; bob (Bob) enabled"),
        ("changes", ""),
        ("user disable alice", "alice (Alice) disabled"),
        ("user disable alice", "alice (Alice) disabled"),
        ("user show alice", "alice (Alice) disabled"),
        ("user disable carol", "error: user `carol` does not exist; list them to see the names in use"),
        ("user enable alice", "alice (Alice) enabled"),
        ("changes", "user_disabled alice, user_disabled alice, user_enabled alice"),
        ("user remove bob", "ok"),
        ("user remove bob", "error: user `bob` does not exist; list them to see the names in use"),
        ("user list", "alice (Alice) enabled"),
        ("changes", "user_removed bob"),
    ];

    groups_and_teams: check, &[
        ("user add alice Alice", "alice (Alice) enabled"),
        ("user add bob Bob", "bob (Bob) enabled"),
        ("group add eng Engineering", "group eng (Engineering) enabled"),
        ("group add eng Again", "error: group `eng` already exists; choose another name or change the existing one"),
        ("team add eng Platform", "team eng (Platform) enabled"),
        ("team add sre Reliability", "team sre (Reliability) enabled"),
        ("group list", "group eng (Engineering) enabled"),
        ("team list", "team eng (Platform) enabled; team sre (Reliability) enabled"),
        ("group join eng alice", "ok"),
        ("group join eng bob", "ok"),
        ("group join eng alice", "error: user `alice` is already a member of group `eng`"),
        ("group join ops alice", "error: group `ops` does not exist; list them to see the names in use"),
        ("group join eng carol", "error: user `carol` does not exist; list them to see the names in use"),
        ("team join sre alice", "ok"),
        ("group members eng", "alice, bob"),
        ("memberships alice", "groups [eng] teams [sre]"),
        ("changes", "membership_changed alice, membership_changed bob, membership_changed alice"),
        ("group leave eng bob", "ok"),
        ("group leave eng bob", "error: user `bob` is not a member of group `eng`"),
        ("group leave ops bob", "error: group `ops` does not exist; list them to see the names in use"),
        ("group members eng", "alice"),
        ("team disable sre", "team sre (Reliability) disabled"),
        ("memberships alice", "groups [eng] teams []"),
        ("team members sre", "alice"),
        ("changes", "membership_changed bob, group_changed team:sre"),
        ("user remove alice", "ok"),
        ("group members eng", ""),
        ("group remove eng", "ok"),
        ("group show eng", "error: group `eng` does not exist; list them to see the names in use"),
        ("team show eng", "team eng (Platform) enabled"),
        ("group members eng", "error: group `eng` does not exist; list them to see the names in use"),
        ("memberships alice", "error: user `alice` does not exist; list them to see the names in use"),
        ("changes", "user_removed alice, group_changed group:eng"),
    ];
}
