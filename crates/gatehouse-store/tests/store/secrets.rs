//! Secrets, through one transcript helper. A secret is written `NAME` (service credential) or
//! `NAME@USER` (a user's own); ciphertext and nonce are short texts standing in for bytes.
//!
//! Commands: `user add NAME`; `user remove NAME`; `team add NAME`; `team remove NAME`;
//! `add SECRET CIPHERTEXT NONCE [owner=TEAM] [description=WORD]`; `show SECRET`; `list`;
//! `rotate SECRET EXPECTED_VERSION CIPHERTEXT NONCE`; `owner SECRET TEAM|none`;
//! `remove SECRET`; `use SECRET TIME`; `changes`.

use gatehouse_store::{
    ChangeCursor, GroupKind, NewSecret, SealedSecret, SecretMetadata, SecretRef,
};

use crate::support::{
    TestDb, check_transcript, on_both_backends, option, relative_time, render, show_relative,
};

fn secret_ref(text: &str) -> SecretRef<'_> {
    match text.split_once('@') {
        Some((name, user)) => SecretRef::of_user(name, user),
        None => SecretRef::service(text),
    }
}

async fn check(db: &TestDb, steps: &[(&str, &str)]) {
    let store = &db.store;
    let mut cursor = ChangeCursor::START;
    check_transcript(steps, async |command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["user", "add", name] => render(store.add_user(name, name).await, |_| "ok".into()),
            ["user", "remove", name] => render(store.remove_user(name).await, |()| "ok".into()),
            ["team", "add", name] => {
                render(store.add_group(GroupKind::Team, name, "").await, |_| {
                    "ok".into()
                })
            }
            ["team", "remove", name] => {
                render(store.remove_group(GroupKind::Team, name).await, |()| {
                    "ok".into()
                })
            }
            ["add", secret, ciphertext, nonce, ..] => {
                let new = NewSecret {
                    secret: secret_ref(secret),
                    owner_team: option(&words, "owner"),
                    description: option(&words, "description").unwrap_or(""),
                    ciphertext: ciphertext.as_bytes(),
                    nonce: nonce.as_bytes(),
                };
                render(store.add_secret(new).await, show_metadata)
            }
            ["show", secret] => render(store.secret(secret_ref(secret)).await, show_sealed),
            ["list"] => render(store.list_secrets().await, |secrets| {
                secrets
                    .into_iter()
                    .map(show_metadata)
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            ["rotate", secret, expected, ciphertext, nonce] => render(
                store
                    .rotate_secret(
                        secret_ref(secret),
                        expected.parse().expect("version"),
                        ciphertext.as_bytes(),
                        nonce.as_bytes(),
                    )
                    .await,
                show_metadata,
            ),
            ["owner", secret, team] => render(
                store
                    .set_secret_owner(
                        secret_ref(secret),
                        Some(*team).filter(|team| *team != "none"),
                    )
                    .await,
                show_metadata,
            ),
            ["remove", secret] => render(store.remove_secret(secret_ref(secret)).await, |()| {
                "ok".into()
            }),
            ["use", secret, time] => render(
                store
                    .record_secret_use(secret_ref(secret), relative_time(time))
                    .await,
                |()| "ok".into(),
            ),
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

fn show_metadata(secret: SecretMetadata) -> String {
    format!(
        "{} v{} owner={} description={} rotated={} last_used={}",
        secret.secret_ref(),
        secret.version,
        secret.owner_team.as_deref().unwrap_or("-"),
        if secret.description.is_empty() {
            "-"
        } else {
            &secret.description
        },
        if secret.rotated_at.is_some() {
            "yes"
        } else {
            "no"
        },
        secret.last_used_at.map_or("-".to_owned(), show_relative),
    )
}

fn show_sealed(secret: SealedSecret) -> String {
    format!(
        "{} ciphertext={} nonce={}",
        show_metadata(secret.metadata),
        String::from_utf8_lossy(&secret.ciphertext),
        String::from_utf8_lossy(&secret.nonce)
    )
}

on_both_backends! {
    service_and_user_credentials: check, &[
        ("user add alice", "ok"),
        ("team add platform", "ok"),
        ("add github c1 n1 owner=platform description=bot", "github v1 owner=platform description=bot rotated=no last_used=-"),
        ("add github@alice c2 n2", "github@alice v1 owner=- description=- rotated=no last_used=-"),
        ("add github c3 n3", "error: secret `github` already exists; choose another name or change the existing one"),
        ("add github@alice c3 n3", "error: secret `github@alice` already exists; choose another name or change the existing one"),
        ("add slack@bob c3 n3", "error: user `bob` does not exist; list them to see the names in use"),
        ("add slack c3 n3 owner=nobody", "error: team `nobody` does not exist; list them to see the names in use"),
        ("show github", "github v1 owner=platform description=bot rotated=no last_used=- ciphertext=c1 nonce=n1"),
        ("show github@alice", "github@alice v1 owner=- description=- rotated=no last_used=- ciphertext=c2 nonce=n2"),
        ("show github@bob", "error: secret `github@bob` does not exist; list them to see the names in use"),
        ("list", "github v1 owner=platform description=bot rotated=no last_used=-; github@alice v1 owner=- description=- rotated=no last_used=-"),
        ("team remove platform", "error: team `platform` owns secrets (github); give them another owner or remove them first"),
        ("owner github none", "github v1 owner=- description=bot rotated=no last_used=-"),
        ("owner github nobody", "error: team `nobody` does not exist; list them to see the names in use"),
        ("team remove platform", "ok"),
        ("changes", "group_changed team:platform"),
        ("remove github@alice", "ok"),
        ("remove github@alice", "error: secret `github@alice` does not exist; list them to see the names in use"),
        ("changes", "secret_removed github@alice"),
    ];

    rotation_is_optimistic: check, &[
        ("add github c1 n1", "github v1 owner=- description=- rotated=no last_used=-"),
        ("rotate github 1 c2 n2", "github v2 owner=- description=- rotated=yes last_used=-"),
        ("rotate github 1 c3 n3", "error: secret `github` is at version 2, not 1: it was rotated meanwhile; read it again and retry"),
        ("show github", "github v2 owner=- description=- rotated=yes last_used=- ciphertext=c2 nonce=n2"),
        ("rotate slack 1 c1 n1", "error: secret `slack` does not exist; list them to see the names in use"),
        ("changes", "secret_rotated github"),
        ("use github +0s", "ok"),
        ("use github +59s", "ok"),
        ("show github", "github v2 owner=- description=- rotated=yes last_used=+0s ciphertext=c2 nonce=n2"),
    ];

    removing_a_user_removes_their_credentials: check, &[
        ("user add alice", "ok"),
        ("add github@alice c1 n1", "github@alice v1 owner=- description=- rotated=no last_used=-"),
        ("add github c2 n2", "github v1 owner=- description=- rotated=no last_used=-"),
        ("list", "github v1 owner=- description=- rotated=no last_used=-; github@alice v1 owner=- description=- rotated=no last_used=-"),
        ("user remove alice", "ok"),
        ("list", "github v1 owner=- description=- rotated=no last_used=-"),
        ("show github@alice", "error: secret `github@alice` does not exist; list them to see the names in use"),
    ];
}
