//! How many processes of one server run, for whom, and for how long: the key that decides who
//! shares a link, the start health (backoff after failures, a circuit that opens after
//! repeated ones), and the idle period that adapts to how busy the server has been.

use std::time::{Duration, Instant};

use gatehouse_config::{Isolation, Lifecycle};

/// Failures in a row after which the circuit opens.
const CIRCUIT_THRESHOLD: u32 = 5;
/// How long an open circuit refuses calls before the next attempt.
const CIRCUIT_OPEN_FOR: Duration = Duration::from_secs(60);
/// First wait after a failure; doubled per further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Half-life of the call rate that sets the idle period.
const RATE_HALF_LIFE: Duration = Duration::from_secs(600);

/// Who a link serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKey {
    /// Everyone.
    Shared,
    /// One person.
    User(String),
    /// One client session (or one stateless request's caller).
    Session(String),
}

impl LinkKey {
    /// The key for a call, given the server's isolation and the caller.
    pub fn for_call(isolation: Isolation, user: Option<&str>, session: Option<&str>) -> Self {
        match isolation {
            Isolation::Shared => LinkKey::Shared,
            Isolation::PerUser => LinkKey::User(user.unwrap_or("anonymous").to_owned()),
            Isolation::PerSession => {
                LinkKey::Session(session.or(user).unwrap_or("anonymous").to_owned())
            }
        }
    }
}

/// Start health of one server: backoff after a failure, an open circuit after several.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures_in_a_row: u32,
    retry_at: Option<Instant>,
    open_until: Option<Instant>,
    last_failure: Option<String>,
}

impl Health {
    /// Whether a start may be attempted now; the error says why not and until when.
    pub(crate) fn may_start(&self, now: Instant) -> Result<(), String> {
        if let Some(until) = self.open_until.filter(|until| *until > now) {
            return Err(format!(
                "it failed {} times in a row; the gateway retries in {} s (last failure: {})",
                self.failures_in_a_row,
                (until - now).as_secs().max(1),
                self.last_failure.as_deref().unwrap_or("unknown")
            ));
        }
        if let Some(at) = self.retry_at.filter(|at| *at > now) {
            return Err(format!(
                "it failed moments ago and is retried in {} ms (last failure: {})",
                (at - now).as_millis().max(1),
                self.last_failure.as_deref().unwrap_or("unknown")
            ));
        }
        Ok(())
    }

    /// Records a failed start or a crash.
    pub(crate) fn record_failure(&mut self, reason: &str, now: Instant) {
        self.failures_in_a_row += 1;
        self.last_failure = Some(reason.to_owned());
        let exponent = self.failures_in_a_row.saturating_sub(1).min(16);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
        self.retry_at = Some(now + backoff);
        if self.failures_in_a_row >= CIRCUIT_THRESHOLD {
            self.open_until = Some(now + CIRCUIT_OPEN_FOR);
        }
    }

    /// Records that a running server died. The first restart is immediate; a server that
    /// keeps dying is backed off like one that fails to start.
    pub(crate) fn record_crash(&mut self, reason: &str, now: Instant) {
        if self.failures_in_a_row == 0 {
            self.failures_in_a_row = 1;
            self.last_failure = Some(reason.to_owned());
            self.retry_at = None;
        } else {
            self.record_failure(reason, now);
        }
    }

    /// Records a successful start.
    pub(crate) fn record_success(&mut self) {
        // A crash right after a start still counts as one in a row, so a server that dies on
        // every start is backed off; only a start that lasts clears the record.
        self.retry_at = None;
        self.open_until = None;
    }

    /// Clears the failure record of a server that has been running fine.
    pub(crate) fn record_healthy(&mut self) {
        *self = Health::default();
    }

    /// The last failure, if the server has not started since.
    pub(crate) fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Whether the circuit is open.
    pub(crate) fn circuit_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| until > now)
    }
}

/// A decaying count of calls, which sets the idle period.
#[derive(Debug)]
pub(crate) struct Activity {
    calls: f64,
    updated: Instant,
}

impl Activity {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            calls: 0.0,
            updated: now,
        }
    }

    fn decay(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.calls *= 0.5f64.powf(elapsed / RATE_HALF_LIFE.as_secs_f64());
        self.updated = now;
    }

    /// Counts one call.
    pub(crate) fn record_call(&mut self, now: Instant) {
        self.decay(now);
        self.calls += 1.0;
    }

    /// The idle period now: near `idle_min` for a server used rarely, approaching `idle_max`
    /// for a busy one (half way at about one call a minute, averaged over the half-life).
    pub(crate) fn idle_period(&mut self, lifecycle: &Lifecycle, now: Instant) -> Duration {
        self.decay(now);
        let per_minute =
            self.calls / (RATE_HALF_LIFE.as_secs_f64() / 60.0 / std::f64::consts::LN_2);
        let busy = per_minute / (per_minute + 1.0);
        let span = lifecycle.idle_max.saturating_sub(lifecycle.idle_min);
        lifecycle.idle_min + span.mul_f64(busy.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_the_circuit_opens_then_closes() {
        let start = Instant::now();
        let mut health = Health::default();
        assert!(health.may_start(start).is_ok());
        health.record_failure("boom", start);
        assert!(health.may_start(start).unwrap_err().contains("retried in"));
        assert!(health.may_start(start + Duration::from_secs(1)).is_ok());
        for _ in 0..4 {
            health.record_failure("boom", start);
        }
        assert!(health.circuit_open(start));
        assert!(
            health
                .may_start(start + Duration::from_secs(59))
                .unwrap_err()
                .contains("5 times in a row")
        );
        assert!(health.may_start(start + Duration::from_secs(61)).is_ok());
        health.record_healthy();
        assert!(!health.circuit_open(start));
        health.record_crash("died", start);
        assert!(
            health.may_start(start).is_ok(),
            "the first restart after a crash is immediate"
        );
        health.record_crash("died again", start);
        assert!(
            health.may_start(start).is_err(),
            "a server that keeps dying is backed off"
        );
    }

    #[test]
    fn idle_period_adapts_to_use_within_bounds() {
        let lifecycle = Lifecycle {
            idle_min: Duration::from_secs(60),
            idle_max: Duration::from_secs(1800),
            ..Lifecycle::default()
        };
        let start = Instant::now();
        let mut quiet = Activity::new(start);
        quiet.record_call(start);
        let mut busy = Activity::new(start);
        for second in 0..600 {
            busy.record_call(start + Duration::from_secs(second));
        }
        let later = start + Duration::from_secs(600);
        let quiet_idle = quiet.idle_period(&lifecycle, later);
        let busy_idle = busy.idle_period(&lifecycle, later);
        assert!(quiet_idle < Duration::from_secs(120), "{quiet_idle:?}");
        assert!(busy_idle > Duration::from_secs(1500), "{busy_idle:?}");
        assert!(busy_idle <= lifecycle.idle_max);
    }

    #[test]
    fn keys_follow_isolation() {
        assert_eq!(
            LinkKey::for_call(Isolation::Shared, Some("a"), Some("s")),
            LinkKey::Shared
        );
        assert_eq!(
            LinkKey::for_call(Isolation::PerUser, Some("a"), Some("s")),
            LinkKey::User("a".into())
        );
        assert_eq!(
            LinkKey::for_call(Isolation::PerSession, Some("a"), Some("s")),
            LinkKey::Session("s".into())
        );
    }
}
