//! API keys, through one transcript helper. Times are relative to a fixed base (`+90s`).
//!
//! Commands: `user add NAME`, `user disable NAME`; `add ID USER LABEL DIGEST [expires=TIME]`;
//! `show ID`; `status ID TIME`; `list [USER]`; `use ID TIME`; `revoke ID`;
//! `revoke-all USER`; `changes`.

use gatehouse_store::{ApiKey, ChangeCursor, NewApiKey};

use crate::support::{
    TestDb, check_transcript, on_both_backends, option, relative_time, render, show_relative,
};

async fn check(db: &TestDb, steps: &[(&str, &str)]) {
    let store = &db.store;
    let mut cursor = ChangeCursor::START;
    check_transcript(steps, async |command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["user", "add", name] => render(store.add_user(name, name).await, |_| "ok".into()),
            ["user", "disable", name] => render(store.disable_user(name).await, |_| "ok".into()),
            ["add", id, user, label, digest, ..] => {
                let key = NewApiKey {
                    id,
                    user,
                    name: label,
                    digest: digest.as_bytes(),
                    expires_at: option(&words, "expires").map(relative_time),
                };
                render(store.add_api_key(key).await, show_key)
            }
            ["show", id] => render(store.api_key(id).await, |key| {
                key.map_or_else(|| "none".to_owned(), show_key)
            }),
            ["status", id, time] => {
                let key = store
                    .api_key(id)
                    .await
                    .expect("look up")
                    .expect("key exists");
                format!("{:?}", key.status(relative_time(time)))
            }
            ["list"] => render(store.list_api_keys(None).await, show_keys),
            ["list", user] => render(store.list_api_keys(Some(user)).await, show_keys),
            ["use", id, time] => render(
                store.record_api_key_use(id, relative_time(time)).await,
                |()| "ok".into(),
            ),
            ["revoke", id] => render(store.revoke_api_key(id).await, show_key),
            ["revoke-all", user] => {
                render(store.revoke_user_api_keys(user).await, |ids| ids.join(", "))
            }
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

fn show_key(key: ApiKey) -> String {
    let time =
        |time: Option<gatehouse_store::Timestamp>| time.map_or("-".to_owned(), show_relative);
    format!(
        "{} of {} ({}) digest={} expires={} last_used={} revoked={} owner_disabled={}",
        key.id,
        key.user,
        key.name,
        String::from_utf8_lossy(&key.digest),
        time(key.expires_at),
        time(key.last_used_at),
        if key.revoked_at.is_some() {
            "yes"
        } else {
            "no"
        },
        if key.owner_disabled_at.is_some() {
            "yes"
        } else {
            "no"
        },
    )
}

fn show_keys(keys: Vec<ApiKey>) -> String {
    keys.iter()
        .map(|key| key.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

on_both_backends! {
    issue_look_up_and_revoke: check, &[
        ("user add alice", "ok"),
        ("user add bob", "ok"),
        ("add gh_1 alice laptop d1 expires=+1h", "gh_1 of alice (laptop) digest=d1 expires=+3600s last_used=- revoked=no owner_disabled=no"),
        ("add gh_2 alice ci d2", "gh_2 of alice (ci) digest=d2 expires=- last_used=- revoked=no owner_disabled=no"),
        ("add gh_3 bob laptop d3", "gh_3 of bob (laptop) digest=d3 expires=- last_used=- revoked=no owner_disabled=no"),
        ("add gh_1 bob dup d4", "error: API key `gh_1` already exists; choose another name or change the existing one"),
        ("add gh_4 carol laptop d5", "error: user `carol` does not exist; list them to see the names in use"),
        ("show gh_9", "none"),
        ("list", "gh_1, gh_2, gh_3"),
        ("list bob", "gh_3"),
        ("status gh_1 +30m", "Active"),
        ("status gh_1 +1h", "Expired"),
        ("revoke gh_2", "gh_2 of alice (ci) digest=d2 expires=- last_used=- revoked=yes owner_disabled=no"),
        ("status gh_2 +0s", "Revoked"),
        ("revoke gh_9", "error: API key `gh_9` does not exist; list them to see the names in use"),
        ("changes", "api_key_revoked gh_2"),
        ("user disable bob", "ok"),
        ("status gh_3 +0s", "OwnerDisabled"),
        ("revoke-all alice", "gh_1"),
        ("revoke-all alice", ""),
        ("revoke-all carol", "error: user `carol` does not exist; list them to see the names in use"),
        ("changes", "user_disabled bob, api_key_revoked gh_1"),
    ];

    last_use_is_written_at_most_once_a_minute: check, &[
        ("user add alice", "ok"),
        ("add gh_1 alice laptop d1", "gh_1 of alice (laptop) digest=d1 expires=- last_used=- revoked=no owner_disabled=no"),
        ("use gh_1 +0s", "ok"),
        ("show gh_1", "gh_1 of alice (laptop) digest=d1 expires=- last_used=+0s revoked=no owner_disabled=no"),
        ("use gh_1 +30s", "ok"),
        ("show gh_1", "gh_1 of alice (laptop) digest=d1 expires=- last_used=+0s revoked=no owner_disabled=no"),
        ("use gh_1 +61s", "ok"),
        ("show gh_1", "gh_1 of alice (laptop) digest=d1 expires=- last_used=+61s revoked=no owner_disabled=no"),
        ("use gh_9 +200s", "ok"),
    ];
}
