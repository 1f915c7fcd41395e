//! Receipts and checkpoints, through one transcript helper, plus two scenario tests: several
//! replicas appending at once keep one gapless chain, and a benchmark figure.
//!
//! Commands: `append SPEC; SPEC; ...` with SPEC = `decision|intent|completion:SEQ [u=USER]
//! [s=SERVER] [t=TOOL] [d=DECISION] [o=OUTCOME] [at=TIME] [body=TEXT]`; `query [user=..]
//! [server=..] [tool=..] [decision=..] [since=TIME] [until=TIME] [from=SEQ] [desc] [limit=N]`;
//! `tail N`; `range FROM LIMIT`; `head`; `verify`; `open-intents TIME`;
//! `checkpoint SEQ [hash=HASH]`; `latest-checkpoint`; `checkpoints FROM`;
//! `prune SEQ [hash=HASH]` (with an anchor for that receipt); `sql STATEMENT` (runs behind the
//! store's back, to tamper). `verify` starts from the checkpoint before the first receipt when
//! receipts were pruned.

use gatehouse_store::{
    Checkpoint, NewReceipt, ReceiptFilter, ReceiptIndex, ReceiptKind, ReceiptOrder, ReceiptRecord,
    StoredReceipt, Timestamp, verify_links,
};
use sqlx::Connection;

use crate::support::{
    TestDb, check_transcript, on_both_backends, option, relative_time, render, show_relative,
};

async fn check(db: &TestDb, steps: &[(&str, &str)]) {
    let store = &db.store;
    check_transcript(steps, async |command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["append", ..] => {
                let specs = command["append".len()..].split(';');
                let receipts: Vec<NewReceipt> = specs.map(new_receipt).collect();
                render(store.append_receipts(&receipts).await, |heads| {
                    let seqs: Vec<String> = heads.iter().map(|head| head.seq.to_string()).collect();
                    format!("seqs {}", seqs.join(" "))
                })
            }
            ["query", ..] => {
                let filter = ReceiptFilter {
                    user: option(&words, "user").map(str::to_owned),
                    server: option(&words, "server").map(str::to_owned),
                    tool: option(&words, "tool").map(str::to_owned),
                    decision: option(&words, "decision").map(str::to_owned),
                    since: option(&words, "since").map(relative_time),
                    until: option(&words, "until").map(relative_time),
                    from_seq: option(&words, "from").map(|seq| seq.parse().expect("seq")),
                    order: if words.contains(&"desc") {
                        ReceiptOrder::Descending
                    } else {
                        ReceiptOrder::Ascending
                    },
                    limit: option(&words, "limit")
                        .map_or(100, |limit| limit.parse().expect("limit")),
                };
                render(store.query_receipts(&filter).await, |records| {
                    records
                        .iter()
                        .map(show_record)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }
            ["tail", limit] => render(
                store.receipts_tail(limit.parse().expect("limit")).await,
                show_receipts,
            ),
            ["range", from, limit] => render(
                store
                    .receipts_range(from.parse().expect("seq"), limit.parse().expect("limit"))
                    .await,
                show_receipts,
            ),
            ["head"] => render(store.chain_head().await, |head| {
                head.map_or("none".to_owned(), |head| {
                    format!("{} {}", head.seq, &head.hash[..12])
                })
            }),
            ["verify"] => {
                let receipts = store
                    .receipts_range(1, u32::MAX)
                    .await
                    .expect("read receipts");
                let anchor = match receipts.first() {
                    Some(first) if first.seq > 1 => store
                        .checkpoints(first.seq - 1, 1)
                        .await
                        .expect("read the anchor")
                        .into_iter()
                        .next()
                        .map(|anchor| (anchor.seq, anchor.head_hash)),
                    _ => None,
                };
                let start = anchor.as_ref().map(|(seq, hash)| (*seq, hash.as_str()));
                match verify_links(start, &receipts) {
                    Ok(()) => format!("chain ok ({} receipts)", receipts.len()),
                    Err(error) => format!("chain broken: {error}"),
                }
            }
            ["open-intents", time] => render(
                store.open_intents(relative_time(time), 100).await,
                show_receipts,
            ),
            ["prune", seq, ..] => {
                let anchor = signed_head(store, seq, option(&words, "hash")).await;
                render(store.prune_receipts(&anchor).await, |deleted| {
                    format!("pruned {deleted}")
                })
            }
            ["checkpoint", seq, ..] => {
                let seq: i64 = seq.parse().expect("seq");
                let head_hash = match option(&words, "hash") {
                    Some(hash) => hash.to_owned(),
                    None => {
                        let receipts = store.receipts_range(seq, 1).await.expect("read receipt");
                        receipts
                            .first()
                            .map_or_else(String::new, |receipt| receipt.hash.clone())
                    }
                };
                let checkpoint = Checkpoint {
                    seq,
                    head_hash,
                    signature: b"signature".to_vec(),
                    key_id: "k1".to_owned(),
                    created_at: relative_time("+0s"),
                };
                render(store.add_checkpoint(&checkpoint).await, |()| "ok".into())
            }
            ["latest-checkpoint"] => render(store.latest_checkpoint().await, |checkpoint| {
                checkpoint.map_or("none".to_owned(), show_checkpoint)
            }),
            ["checkpoints", from] => render(
                store.checkpoints(from.parse().expect("seq"), 100).await,
                |checkpoints| {
                    checkpoints
                        .into_iter()
                        .map(show_checkpoint)
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            ),
            ["sql", ..] => {
                let statement = command["sql".len()..].trim();
                let mut connection = sqlx::AnyConnection::connect(&db.url)
                    .await
                    .expect("connect");
                let result = sqlx::raw_sql(statement).execute(&mut connection).await;
                render(result, |_| "ok".into())
            }
            _ => panic!("unknown command `{command}`"),
        }
    })
    .await;
}

/// A checkpoint of receipt `seq` with its stored hash, or `hash` when given.
async fn signed_head(store: &gatehouse_store::Store, seq: &str, hash: Option<&str>) -> Checkpoint {
    let seq: i64 = seq.parse().expect("seq");
    let head_hash = match hash {
        Some(hash) => hash.to_owned(),
        None => store
            .receipts_range(seq, 1)
            .await
            .expect("read receipt")
            .first()
            .filter(|receipt| receipt.seq == seq)
            .map_or_else(String::new, |receipt| receipt.hash.clone()),
    };
    Checkpoint {
        seq,
        head_hash,
        signature: b"anchor".to_vec(),
        key_id: "k1".to_owned(),
        created_at: relative_time("+0s"),
    }
}

fn new_receipt(spec: &str) -> NewReceipt {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let kind = match words.first().copied() {
        Some("decision") => ReceiptKind::Decision,
        Some("intent") => ReceiptKind::Intent,
        Some(other) => {
            let intent_seq = other
                .strip_prefix("completion:")
                .unwrap_or_else(|| panic!("unknown receipt kind in `{spec}`"));
            ReceiptKind::Completion {
                intent_seq: intent_seq.parse().expect("intent seq"),
            }
        }
        None => panic!("empty receipt spec"),
    };
    let text = |key| option(&words, key).map(str::to_owned);
    let index = ReceiptIndex {
        user: text("u"),
        server: text("s"),
        tool: text("t"),
        decision: text("d").unwrap_or_else(|| "allow".to_owned()),
        outcome: text("o"),
    };
    let body = text("body").unwrap_or_else(|| format!("{{\"spec\":\"{}\"}}", spec.trim()));
    NewReceipt {
        recorded_at: relative_time(option(&words, "at").unwrap_or("+0s")),
        kind,
        index,
        body,
    }
}

fn show_receipt(receipt: &StoredReceipt) -> String {
    let kind = match receipt.kind {
        ReceiptKind::Completion { intent_seq } => format!("completion({intent_seq})"),
        other => other.as_str().to_owned(),
    };
    let outcome = receipt
        .index
        .outcome
        .as_deref()
        .map_or(String::new(), |outcome| format!(" {outcome}"));
    format!("{} {kind} {}{outcome}", receipt.seq, receipt.index.decision)
}

fn show_receipts(receipts: Vec<StoredReceipt>) -> String {
    receipts
        .iter()
        .map(show_receipt)
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_record(record: &ReceiptRecord) -> String {
    let receipt = &record.receipt;
    let who = [
        &receipt.index.user,
        &receipt.index.server,
        &receipt.index.tool,
    ]
    .map(|field| field.as_deref().unwrap_or("-"))
    .join("/");
    let completion = match (&receipt.kind, &record.completion) {
        (_, Some(completion)) => format!(
            " -> {} {}",
            completion.seq,
            completion.index.outcome.as_deref().unwrap_or("-")
        ),
        (ReceiptKind::Intent, None) => " -> unknown".to_owned(),
        _ => String::new(),
    };
    format!(
        "{} {who} {} {}{completion}",
        show_receipt(receipt),
        show_relative(receipt.recorded_at),
        receipt.kind.as_str(),
    )
}

fn show_checkpoint(checkpoint: Checkpoint) -> String {
    format!(
        "{} {} {} {}",
        checkpoint.seq,
        &checkpoint.head_hash[..12.min(checkpoint.head_hash.len())],
        checkpoint.key_id,
        show_relative(checkpoint.created_at)
    )
}

/// Appends `batches` batches of `batch_size` receipts from `writers` stores at once and
/// checks the result is one gapless, valid chain.
async fn concurrent_replicas(db: &TestDb, (writers, batches, batch_size): (usize, usize, usize)) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = db.replica().await;
        tasks.push(tokio::spawn(async move {
            for batch in 0..batches {
                let receipts: Vec<NewReceipt> = (0..batch_size)
                    .map(|index| NewReceipt {
                        recorded_at: Timestamp::now(),
                        kind: ReceiptKind::Decision,
                        index: ReceiptIndex {
                            user: Some(format!("writer{writer}")),
                            decision: "allow".to_owned(),
                            ..ReceiptIndex::default()
                        },
                        body: format!(
                            "{{\"writer\":{writer},\"batch\":{batch},\"index\":{index}}}"
                        ),
                    })
                    .collect();
                let heads = store.append_receipts(&receipts).await.expect("append");
                let seqs: Vec<i64> = heads.iter().map(|head| head.seq).collect();
                let first = seqs[0];
                assert_eq!(seqs, (first..first + batch_size as i64).collect::<Vec<_>>());
            }
            store.close().await;
        }));
    }
    for task in tasks {
        task.await.expect("writer task");
    }
    let receipts = db.store.receipts_range(1, u32::MAX).await.expect("read");
    assert_eq!(receipts.len(), writers * batches * batch_size);
    verify_links(None, &receipts).expect("one valid chain");
    let mut per_writer = vec![0usize; writers];
    for receipt in &receipts {
        let writer: usize = receipt.index.user.as_deref().expect("user")["writer".len()..]
            .parse()
            .expect("writer number");
        per_writer[writer] += 1;
    }
    assert!(
        per_writer
            .iter()
            .all(|&count| count == batches * batch_size)
    );
}

/// Prunes the older half of the log again and again while `writers` replicas append, and
/// checks that what is left is one gapless chain continuing from the last anchor.
async fn pruning_while_replicas_append(db: &TestDb, (writers, batches): (usize, usize)) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = db.replica().await;
        tasks.push(tokio::spawn(async move {
            for batch in 0..batches {
                let receipts: Vec<NewReceipt> = (0..8)
                    .map(|index| NewReceipt {
                        recorded_at: Timestamp::now(),
                        kind: ReceiptKind::Decision,
                        index: ReceiptIndex {
                            decision: "deny".to_owned(),
                            ..ReceiptIndex::default()
                        },
                        body: format!(
                            "{{\"writer\":{writer},\"batch\":{batch},\"index\":{index}}}"
                        ),
                    })
                    .collect();
                store.append_receipts(&receipts).await.expect("append");
            }
            store.close().await;
        }));
    }
    let pruner = db.replica().await;
    let mut pruned = 0;
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let Some(head) = pruner.chain_head().await.expect("head") else {
            continue;
        };
        let Some(oldest) = pruner.receipts_range(1, 1).await.expect("oldest").pop() else {
            continue;
        };
        // The newest receipt stays, so the check below has a chain to follow.
        if oldest.seq == head.seq {
            continue;
        }
        let through = oldest.seq + (head.seq - oldest.seq) / 2;
        let anchor = signed_head(&pruner, &through.to_string(), None).await;
        pruned += pruner.prune_receipts(&anchor).await.expect("prune");
    }
    pruner.close().await;
    for task in tasks {
        task.await.expect("writer task");
    }
    let receipts = db.store.receipts_range(1, u32::MAX).await.expect("read");
    let first = receipts.first().expect("receipts are left");
    let anchor = db
        .store
        .checkpoints(first.seq - 1, 1)
        .await
        .expect("read the anchor")
        .pop()
        .filter(|anchor| anchor.seq == first.seq - 1);
    assert_eq!(
        anchor.is_some(),
        pruned > 0,
        "an anchor right before the first receipt"
    );
    let start = anchor
        .as_ref()
        .map(|anchor| (anchor.seq, anchor.head_hash.as_str()));
    verify_links(start, &receipts).expect("one valid chain");
    assert_eq!(
        receipts.len() as u64 + pruned,
        (writers * batches * 8) as u64,
        "every receipt appended is either kept or was pruned"
    );
}

/// Prints receipts appended per second in batches of 64 (run with `--nocapture` to see it; the
/// release-mode figure comes from `cargo run --release --example receipt_bench`).
async fn append_rate(db: &TestDb, batches: usize) {
    let receipts: Vec<NewReceipt> = (0..64)
        .map(|index| NewReceipt {
            recorded_at: Timestamp::now(),
            kind: ReceiptKind::Decision,
            index: ReceiptIndex {
                user: Some("alice".to_owned()),
                server: Some("github".to_owned()),
                tool: Some("create_issue".to_owned()),
                decision: "allow".to_owned(),
                outcome: Some("ok".to_owned()),
            },
            body: format!("{{\"index\":{index},\"padding\":\"{}\"}}", "x".repeat(300)),
        })
        .collect();
    let started = std::time::Instant::now();
    for _ in 0..batches {
        db.store.append_receipts(&receipts).await.expect("append");
    }
    let elapsed = started.elapsed();
    let rate = (batches * 64) as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{}: {} receipts appended per second ({} batches of 64 in {:.2?}, test build)",
        db.store.backend(),
        rate.round(),
        batches,
        elapsed
    );
}

on_both_backends! {
    chain_of_decisions_intents_and_completions: check, &[
        ("head", "none"),
        ("verify", "chain ok (0 receipts)"),
        ("append decision u=bob s=github t=delete_repo d=deny o=denied at=+1s; intent u=alice s=github t=create_issue at=+2s", "seqs 1 2"),
        ("append completion:2 u=alice s=github t=create_issue o=ok at=+3s; intent u=alice s=slack t=post at=+4s; completion:4 u=alice s=slack t=post o=upstream_error at=+5s; intent u=carol s=github t=create_issue at=+6s", "seqs 3 4 5 6"),
        ("head", "6 c497403be1b0"),
        ("tail 3", "4 intent allow, 5 completion(4) allow upstream_error, 6 intent allow"),
        ("range 2 2", "2 intent allow, 3 completion(2) allow ok"),
        ("query", "1 decision deny denied bob/github/delete_repo +1s decision; 2 intent allow alice/github/create_issue +2s intent -> 3 ok; 4 intent allow alice/slack/post +4s intent -> 5 upstream_error; 6 intent allow carol/github/create_issue +6s intent -> unknown"),
        ("query user=alice", "2 intent allow alice/github/create_issue +2s intent -> 3 ok; 4 intent allow alice/slack/post +4s intent -> 5 upstream_error"),
        ("query server=github tool=create_issue", "2 intent allow alice/github/create_issue +2s intent -> 3 ok; 6 intent allow carol/github/create_issue +6s intent -> unknown"),
        ("query decision=deny", "1 decision deny denied bob/github/delete_repo +1s decision"),
        ("query since=+2s until=+6s", "2 intent allow alice/github/create_issue +2s intent -> 3 ok; 4 intent allow alice/slack/post +4s intent -> 5 upstream_error"),
        ("query desc limit=2", "6 intent allow carol/github/create_issue +6s intent -> unknown; 4 intent allow alice/slack/post +4s intent -> 5 upstream_error"),
        ("query desc limit=2 from=4", "2 intent allow alice/github/create_issue +2s intent -> 3 ok; 1 decision deny denied bob/github/delete_repo +1s decision"),
        ("query from=2 limit=1", "4 intent allow alice/slack/post +4s intent -> 5 upstream_error"),
        ("open-intents +10s", "6 intent allow"),
        ("open-intents +6s", ""),
        ("verify", "chain ok (6 receipts)"),
    ];

    completions_are_checked: check, &[
        ("append intent u=alice; decision d=deny", "seqs 1 2"),
        ("append completion:2 o=ok", "error: receipt 2 is not an intent receipt, so it cannot be completed; complete the sequence number returned when the intent was appended"),
        ("append completion:9 o=ok", "error: receipt 9 is not an intent receipt, so it cannot be completed; complete the sequence number returned when the intent was appended"),
        ("append completion:1 o=ok; completion:1 o=ok", "error: intent receipt 1 is already completed; an intent is completed once"),
        ("append decision d=deny; completion:3 o=ok", "error: receipt 3 is not an intent receipt, so it cannot be completed; complete the sequence number returned when the intent was appended"),
        ("append intent u=bob; completion:3 o=ok", "seqs 3 4"),
        ("append completion:1 o=ok", "seqs 5"),
        ("append completion:1 o=unknown", "error: intent receipt 1 is already completed; an intent is completed once"),
        ("tail 10", "1 intent allow, 2 decision deny, 3 intent allow, 4 completion(3) allow ok, 5 completion(1) allow ok"),
        ("verify", "chain ok (5 receipts)"),
    ];

    tampering_is_named: check, &[
        ("append decision u=a; decision u=b; decision u=c; decision u=d", "seqs 1 2 3 4"),
        ("verify", "chain ok (4 receipts)"),
        ("sql UPDATE receipts SET body = '{}' WHERE seq = 2", "ok"),
        ("verify", "chain broken: receipt 2 was changed after it was written: its hash does not match its contents"),
        ("sql UPDATE receipts SET body = '{\"spec\":\"decision u=b\"}' WHERE seq = 2", "ok"),
        ("verify", "chain ok (4 receipts)"),
        ("sql UPDATE receipts SET user_name = 'mallory' WHERE seq = 3", "ok"),
        ("verify", "chain broken: receipt 3 was changed after it was written: its hash does not match its contents"),
        ("sql UPDATE receipts SET user_name = 'c' WHERE seq = 3", "ok"),
        ("sql DELETE FROM receipts WHERE seq = 2", "ok"),
        ("verify", "chain broken: receipt 3 follows receipt 1: a receipt is missing or out of order"),
    ];

    checkpoints_must_match_the_chain: check, &[
        ("latest-checkpoint", "none"),
        ("append decision u=a; decision u=b; decision u=c", "seqs 1 2 3"),
        ("checkpoint 2", "ok"),
        ("checkpoint 2", "error: checkpoint `2` already exists; choose another name or change the existing one"),
        ("checkpoint 3 hash=0000", "error: checkpoint at receipt 3 does not match the stored chain (no receipt with that sequence number and hash); sign the head returned by the store"),
        ("checkpoint 7", "error: checkpoint at receipt 7 does not match the stored chain (no receipt with that sequence number and hash); sign the head returned by the store"),
        ("checkpoint 3", "ok"),
        ("latest-checkpoint", "3 25daad0b0bc6 k1 +0s"),
        ("checkpoints 1", "2 6305e48b1f24 k1 +0s; 3 25daad0b0bc6 k1 +0s"),
    ];

    pruning_leaves_an_anchor_the_chain_continues_from: check, &[
        ("append intent u=a; intent u=b; decision; completion:1 o=ok; decision", "seqs 1 2 3 4 5"),
        ("checkpoint 2", "ok"),
        ("checkpoint 4", "ok"),
        ("prune 3 hash=0000", "error: checkpoint at receipt 3 does not match the stored chain (no receipt with that sequence number and hash); sign the head returned by the store"),
        ("prune 9", "error: checkpoint at receipt 9 does not match the stored chain (no receipt with that sequence number and hash); sign the head returned by the store"),
        ("range 1 10", "1 intent allow, 2 intent allow, 3 decision allow, 4 completion(1) allow ok, 5 decision allow"),
        ("prune 3", "pruned 3"),
        ("range 1 10", "4 completion(1) allow ok, 5 decision allow"),
        ("checkpoints 1", "3 085fd576bb1d k1 +0s; 4 d9b50493058d k1 +0s"),
        ("verify", "chain ok (2 receipts)"),
        ("append completion:1 o=ok", "error: intent receipt 1 is already completed; an intent is completed once"),
        ("append completion:2 o=unknown", "seqs 6"),
        ("append completion:2 o=ok", "error: intent receipt 2 is already completed; an intent is completed once"),
        ("append completion:5 o=ok", "error: receipt 5 is not an intent receipt, so it cannot be completed; complete the sequence number returned when the intent was appended"),
        ("append completion:0 o=ok", "error: receipt 0 is not an intent receipt, so it cannot be completed; complete the sequence number returned when the intent was appended"),
        ("prune 6", "pruned 3"),
        ("range 1 10", ""),
        ("head", "6 e002adb0812e"),
        ("checkpoints 1", "6 e002adb0812e k1 +0s"),
        ("append decision u=c", "seqs 7"),
        ("verify", "chain ok (1 receipts)"),
        ("tail 5", "7 decision allow"),
    ];

    replicas_appending_at_once_keep_one_chain: concurrent_replicas, (4, 10, 16);

    pruning_while_replicas_append_keeps_one_chain: pruning_while_replicas_append, (3, 10);

    receipts_per_second_in_batches_of_64: append_rate, 20;
}
