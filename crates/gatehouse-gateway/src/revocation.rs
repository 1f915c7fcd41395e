//! Revocation that reaches open connections. Disabling a user or revoking a key is written to
//! the store with a change event (by the CLI, or another replica); this watcher reads the
//! events and, within a fraction of a second, ends the sessions and closes the streams that
//! belong to that user or key. New requests are refused anyway, because every request looks
//! its credential up afresh.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gatehouse_store::ChangeKind;
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::identity::Who;

/// How often the store is polled when nothing wakes the watcher sooner.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One open stream: its owner's user name and API key id, and how to close it.
struct OpenStream {
    user: Option<String>,
    key: Option<String>,
    close: CancellationToken,
}

/// Long-lived streams by owner, so they can be closed when the owner is revoked.
#[derive(Default)]
pub struct StreamRegistry {
    streams: Mutex<Vec<OpenStream>>,
}

impl StreamRegistry {
    fn streams(&self) -> MutexGuard<'_, Vec<OpenStream>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a stream of `who`; the token is cancelled on revocation.
    pub fn register(&self, who: &Who) -> CancellationToken {
        let token = CancellationToken::new();
        let mut streams = self.streams();
        streams.retain(|stream| !stream.close.is_cancelled());
        streams.push(OpenStream {
            user: who.user().map(str::to_owned),
            key: who.api_key().map(str::to_owned),
            close: token.clone(),
        });
        token
    }

    fn close(&self, matches: impl Fn(Option<&str>, Option<&str>) -> bool) -> usize {
        let mut closed = 0;
        self.streams().retain(|stream| {
            if matches(stream.user.as_deref(), stream.key.as_deref()) {
                stream.close.cancel();
                closed += 1;
                false
            } else {
                true
            }
        });
        closed
    }
}

/// Applies revocations as they are recorded, until the gateway stops.
pub async fn watch(gateway: Arc<Gateway>) {
    let cursor = match gateway.store.latest_change_cursor().await {
        Ok(cursor) => cursor,
        Err(error) => {
            tracing::error!(%error, "cannot read the change log; revocations will not close open streams");
            return;
        }
    };
    let mut watcher = match gateway.store.watch_changes(cursor, POLL_INTERVAL).await {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::error!(%error, "cannot watch the change log; revocations will not close open streams");
            return;
        }
    };
    loop {
        let batch = match watcher.next_batch().await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "reading the change log failed; retrying");
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        for event in batch.events {
            let subject = event.subject.as_str();
            let closed = match event.kind {
                ChangeKind::UserDisabled => gateway.end_access(|user, _| user == Some(subject)),
                ChangeKind::UserRemoved => {
                    gateway.credentials.forget_user(subject);
                    gateway.end_access(|user, _| user == Some(subject))
                }
                ChangeKind::ApiKeyRevoked => gateway.end_access(|_, key| key == Some(subject)),
                ChangeKind::SessionRevoked => usize::from(gateway.sessions.remove(subject)),
                ChangeKind::SecretRotated | ChangeKind::SecretRemoved => {
                    gateway.credentials.changed(subject).await;
                    tracing::info!(
                        kind = event.kind.as_str(),
                        secret = subject,
                        "credential changed; new calls use the current value"
                    );
                    0
                }
                _ => 0,
            };
            if closed > 0 {
                tracing::info!(
                    kind = event.kind.as_str(),
                    subject,
                    closed,
                    "revocation closed open sessions and streams"
                );
            }
        }
    }
}

impl Gateway {
    /// Ends the sessions and closes the streams of matching owners; returns how many.
    fn end_access(&self, matches: impl Fn(Option<&str>, Option<&str>) -> bool) -> usize {
        let mut ended = 0;
        for session in self.sessions.all() {
            if matches(session.owner.user(), session.owner.api_key())
                && self.sessions.remove(&session.id)
            {
                ended += 1;
            }
        }
        ended + self.streams.close(matches)
    }
}
