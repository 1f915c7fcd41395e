//! Change events, through one transcript helper, and a watcher scenario: a change made on one
//! replica reaches a watcher on another without waiting for its poll interval (PostgreSQL
//! NOTIFY) or within it (SQLite), and a change made through the same store wakes it at once.
//!
//! Commands: `record KIND SUBJECT`; `since SEQ`; `latest`; `prune-all`.

use std::time::{Duration, Instant};

use gatehouse_store::{Backend, ChangeCursor, ChangeKind, Timestamp};

use crate::support::{TestDb, check_transcript, on_both_backends, render};

async fn check(db: &TestDb, steps: &[(&str, &str)]) {
    let store = &db.store;
    check_transcript(steps, async |command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["record", kind, subject] => render(
                store
                    .record_change(&ChangeKind::from_name(kind), subject)
                    .await,
                |cursor| format!("cursor {}", cursor.last_seen()),
            ),
            ["since", seq] => render(
                store
                    .changes_since(ChangeCursor::after(seq.parse().expect("seq")))
                    .await,
                |batch| {
                    let events: Vec<String> = batch
                        .events
                        .iter()
                        .map(|event| format!("{} {} {}", event.seq, event.kind, event.subject))
                        .collect();
                    format!(
                        "[{}] cursor {}{}",
                        events.join(", "),
                        batch.cursor.last_seen(),
                        if batch.missed_events { " missed" } else { "" }
                    )
                },
            ),
            ["latest"] => render(store.latest_change_cursor().await, |cursor| {
                format!("cursor {}", cursor.last_seen())
            }),
            ["prune-all"] => render(
                store
                    .prune_changes(Timestamp::now().saturating_add(Duration::from_secs(60)))
                    .await,
                |pruned| format!("pruned {pruned}"),
            ),
            _ => panic!("unknown command `{command}`"),
        }
    })
    .await;
}

/// A watcher on one replica sees changes from another, and from its own store, promptly.
async fn watch_across_replicas(db: &TestDb, (): ()) {
    let other_replica = db.replica().await;
    let start = db.store.latest_change_cursor().await.expect("latest");
    // A long poll interval: on PostgreSQL the notification must wake the watcher well before.
    let poll_interval = match db.store.backend() {
        Backend::Postgres => Duration::from_secs(30),
        Backend::Sqlite => Duration::from_millis(100),
    };
    let mut watcher = db
        .store
        .watch_changes(start, poll_interval)
        .await
        .expect("watch");
    let bound = match db.store.backend() {
        Backend::Postgres => Duration::from_secs(5),
        Backend::Sqlite => Duration::from_secs(2),
    };

    let waiting = tokio::spawn(async move {
        let batch = watcher.next_batch().await.expect("next batch");
        (watcher, batch, Instant::now())
    });
    // Let the watcher find nothing and start waiting, so the change below must wake it.
    tokio::task::yield_now().await;
    let changed_at = Instant::now();
    other_replica
        .add_user("alice", "Alice")
        .await
        .expect("add user");
    other_replica.disable_user("alice").await.expect("disable");
    let (mut watcher, batch, woke_at) = tokio::time::timeout(bound, waiting)
        .await
        .expect("the watcher saw the other replica's change within the bound")
        .expect("watcher task");
    assert_eq!(batch.events[0].kind, ChangeKind::UserDisabled);
    assert_eq!(batch.events[0].subject, "alice");
    eprintln!(
        "{}: change from another replica seen after {:?}",
        db.store.backend(),
        woke_at - changed_at
    );

    // A change through the watcher's own store wakes it without polling.
    let store = db.store.clone();
    let changer = tokio::spawn(async move {
        tokio::task::yield_now().await;
        store
            .record_change(&ChangeKind::ConfigChanged, "v2")
            .await
            .expect("record")
    });
    let batch = tokio::time::timeout(bound, watcher.next_batch())
        .await
        .expect("the watcher saw its own store's change within the bound")
        .expect("next batch");
    changer.await.expect("changer task");
    assert_eq!(batch.events[0].kind, ChangeKind::ConfigChanged);
    assert_eq!(watcher.cursor(), batch.cursor);
    other_replica.close().await;
}

on_both_backends! {
    change_log_reads_in_order: check, &[
        ("latest", "cursor 0"),
        ("since 0", "[] cursor 0"),
        ("record config_changed v1", "cursor 1"),
        ("record session_revoked s-42", "cursor 2"),
        ("record something_new x", "cursor 3"),
        ("since 0", "[1 config_changed v1, 2 session_revoked s-42, 3 something_new x] cursor 3"),
        ("since 2", "[3 something_new x] cursor 3"),
        ("since 3", "[] cursor 3"),
        ("latest", "cursor 3"),
        ("prune-all", "pruned 2"),
        ("since 3", "[] cursor 3"),
        ("since 1", "[3 something_new x] cursor 3 missed"),
        ("since 2", "[3 something_new x] cursor 3"),
        ("record config_changed v2", "cursor 4"),
        ("since 0", "[3 something_new x, 4 config_changed v2] cursor 4 missed"),
    ];

    watchers_wake_across_replicas: watch_across_replicas, ();
}
