//! Per-subject state: the cached access token, the one token request in flight, and the lock
//! that serializes every read-modify-write of the subject's stored grant.
//!
//! Single flight: a caller that finds no usable token either joins the request in flight for
//! its subject or starts one, under the slot's state lock, so there is never more than one
//! token request per subject at a time. Every caller that joined gets that request's outcome,
//! success or failure, so a failing authorization server sees one request per burst, not one
//! per caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::error::OAuthError;
use crate::store::{StoredGrant, UserId};
use crate::token::{AccessToken, TokenId};

/// Slots are pruned once there are this many, at the least.
const PRUNE_FLOOR: usize = 1024;

/// Whose token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum SubjectKey {
    Service,
    User(UserId),
}

/// The SHA-256 of a token-exchange subject token: an exchanged token is reused only for the
/// subject token it was exchanged for.
pub(crate) type Fingerprint = [u8; 32];

/// What a token request ends with, shared by everyone waiting for it.
pub(crate) type Outcome = Result<AccessToken, OAuthError>;

/// One subject's state.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    /// Held while the stored grant is read, refreshed and written, so that a refresh and a
    /// completed authorization for the same user never interleave.
    pub(crate) grant: tokio::sync::Mutex<GrantMemory>,
}

/// The grant state that lives only in memory.
#[derive(Default)]
pub(crate) struct GrantMemory {
    /// A grant that could not be saved: it holds the newest refresh token (the one in the store
    /// is already spent), so it is used, and saved, before the store's.
    pub(crate) unsaved: Option<StoredGrant>,
}

#[derive(Default)]
pub(crate) struct SlotState {
    cached: Option<Cached>,
    flight: Option<Flight>,
    /// The last token an upstream refused: a stored access token with this id is treated as
    /// expired.
    pub(crate) rejected: Option<TokenId>,
}

struct Cached {
    token: AccessToken,
    fingerprint: Option<Fingerprint>,
}

/// The token request in flight.
pub(crate) struct Flight {
    pub(crate) fingerprint: Option<Fingerprint>,
    pub(crate) outcome: watch::Receiver<Option<Outcome>>,
}

impl Flight {
    /// The task ended without an outcome (it panicked): the slot is free for a new request.
    fn is_abandoned(&self) -> bool {
        self.outcome.has_changed().is_err() && self.outcome.borrow().is_none()
    }
}

impl Slot {
    pub(crate) fn state(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the slot holds anything worth keeping: a usable token, a request in flight, or
    /// a grant waiting to be saved.
    fn is_live(&self, now: SystemTime, margin: Duration) -> bool {
        let state = self.state();
        let token_usable = state
            .cached
            .as_ref()
            .is_some_and(|cached| cached.token.is_usable(now, margin));
        let grant_busy = self
            .grant
            .try_lock()
            .map_or(true, |memory| memory.unsaved.is_some());
        token_usable || state.flight.is_some() || grant_busy
    }
}

impl SlotState {
    /// The cached token, if it is still usable for a caller with `fingerprint`.
    pub(crate) fn usable(
        &self,
        fingerprint: Option<&Fingerprint>,
        now: SystemTime,
        margin: Duration,
    ) -> Option<AccessToken> {
        let cached = self.cached.as_ref()?;
        (cached.fingerprint.as_ref() == fingerprint && cached.token.is_usable(now, margin))
            .then(|| cached.token.clone())
    }

    pub(crate) fn remember(&mut self, token: AccessToken, fingerprint: Option<Fingerprint>) {
        self.cached = Some(Cached { token, fingerprint });
    }

    /// Forgets the cached token if it is `rejected` (a newer one is kept), and remembers the
    /// refusal.
    pub(crate) fn reject(&mut self, rejected: &TokenId) {
        if self
            .cached
            .as_ref()
            .is_some_and(|cached| cached.token.id() == rejected)
        {
            self.cached = None;
        }
        self.rejected = Some(rejected.clone());
    }

    pub(crate) fn forget(&mut self) {
        self.cached = None;
    }

    /// The request in flight, unless its task died without an outcome.
    pub(crate) fn flight(&self) -> Option<&Flight> {
        self.flight.as_ref().filter(|flight| !flight.is_abandoned())
    }

    pub(crate) fn set_flight(&mut self, flight: Option<Flight>) {
        self.flight = flight;
    }
}

/// Every subject's slot.
pub(crate) struct Slots {
    map: HashMap<SubjectKey, Arc<Slot>>,
    prune_at: usize,
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            prune_at: PRUNE_FLOOR,
        }
    }
}

impl Slots {
    /// The slot of `key`, created if needed. Creating one may first drop the slots that hold
    /// nothing, so the map stays proportional to the subjects with live tokens.
    pub(crate) fn get_or_create(
        &mut self,
        key: &SubjectKey,
        now: SystemTime,
        margin: Duration,
    ) -> Arc<Slot> {
        if let Some(slot) = self.map.get(key) {
            return Arc::clone(slot);
        }
        if self.map.len() >= self.prune_at {
            // A slot someone still holds (a caller, a task in flight) is kept whatever it
            // contains, so that no one ends up with a slot the map no longer knows.
            self.map
                .retain(|_, slot| Arc::strong_count(slot) > 1 || slot.is_live(now, margin));
            self.prune_at = PRUNE_FLOOR.max(self.map.len() * 2);
        }
        Arc::clone(self.map.entry(key.clone()).or_default())
    }

    pub(crate) fn get(&self, key: &SubjectKey) -> Option<Arc<Slot>> {
        self.map.get(key).cloned()
    }
}
