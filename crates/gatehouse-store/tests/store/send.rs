//! Every store operation can run in a spawned task: this module compiles only if each future
//! is `Send`. (sqlx futures that borrow a transaction across an `async fn` boundary can lose
//! `Send` without an error at the definition; it shows up only where the future is spawned.)

use std::future::Future;
use std::time::Duration;

use gatehouse_store::{
    CatalogEntry, CatalogKind, ChangeCursor, ChangeKind, ChangeWatcher, Checkpoint, GroupKind,
    NewApiKey, NewReceipt, NewSecret, ReceiptFilter, SecretRef, Store, Timestamp,
};

fn send<F: Future + Send>(_: F) {}

#[allow(
    dead_code,
    clippy::too_many_arguments,
    reason = "never called: it only has to compile"
)]
fn every_operation_is_send(
    store: &Store,
    watcher: &mut ChangeWatcher,
    key: NewApiKey<'_>,
    secret: NewSecret<'_>,
    receipts: &[NewReceipt],
    checkpoint: &Checkpoint,
    entry: &CatalogEntry,
    filter: &ReceiptFilter,
) {
    let now = Timestamp::now();
    let secret_ref = SecretRef::service("s");
    send(Store::open("sqlite://x"));
    send(store.close());
    send(store.add_user("a", "A"));
    send(store.user("a"));
    send(store.list_users());
    send(store.disable_user("a"));
    send(store.enable_user("a"));
    send(store.remove_user("a"));
    send(store.add_group(GroupKind::Group, "g", ""));
    send(store.group(GroupKind::Group, "g"));
    send(store.list_groups(GroupKind::Team));
    send(store.disable_group(GroupKind::Group, "g"));
    send(store.remove_group(GroupKind::Group, "g"));
    send(store.add_member(GroupKind::Group, "g", "a"));
    send(store.remove_member(GroupKind::Group, "g", "a"));
    send(store.members(GroupKind::Group, "g"));
    send(store.memberships("a"));
    send(store.add_api_key(key));
    send(store.api_key("k"));
    send(store.list_api_keys(None));
    send(store.revoke_api_key("k"));
    send(store.revoke_user_api_keys("a"));
    send(store.record_api_key_use("k", now));
    send(store.add_secret(secret));
    send(store.secret(secret_ref));
    send(store.list_secrets());
    send(store.rotate_secret(secret_ref, 1, b"", b""));
    send(store.set_secret_owner(secret_ref, None));
    send(store.remove_secret(secret_ref));
    send(store.record_secret_use(secret_ref, now));
    send(store.put_catalog_entry(entry));
    send(store.catalog_entry("s", CatalogKind::Tools));
    send(store.catalog_entries(None));
    send(store.remove_catalog("s"));
    send(store.append_receipts(receipts));
    send(store.receipts_range(1, 1));
    send(store.receipts_tail(1));
    send(store.chain_head());
    send(store.query_receipts(filter));
    send(store.open_intents(now, 1));
    send(store.add_checkpoint(checkpoint));
    send(store.latest_checkpoint());
    send(store.checkpoints(1, 1));
    send(store.prune_receipts(checkpoint));
    send(store.record_change(&ChangeKind::ConfigChanged, "x"));
    send(store.changes_since(ChangeCursor::START));
    send(store.latest_change_cursor());
    send(store.prune_changes(now));
    send(store.watch_changes(ChangeCursor::START, Duration::from_secs(1)));
    send(watcher.next_batch());
    send(store.meta("m"));
    send(store.put_meta("m", "v"));
    send(store.put_meta_if_absent("m", "v"));
}
