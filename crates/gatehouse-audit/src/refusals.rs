//! Refusals under a flood: per kind of refusal and subject (a user, or the address of a client
//! that did not authenticate), the first refusals in a window are recorded one by one and the
//! rest only counted; when the window ends, one aggregate receipt records the count and the
//! times of the first and last. A flood then costs the log a bounded number of receipts per
//! subject and window, and memory is bounded too: past [`RefusalLimits::max_subjects`] subjects
//! at once, refusals of new subjects share one bucket per kind.
//!
//! The limiter only decides and counts; the caller writes the receipts. It holds no clock: every
//! call is given the time, so tests replay any sequence exactly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::receipt::RefusalKind;
use crate::time::Timestamp;

/// How many refusals are recorded one by one, and for how long a window runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalLimits {
    /// Refusals recorded one by one per kind and subject in a window; the rest are counted.
    pub recorded_per_window: u32,
    /// How long a window runs from the first refusal in it.
    pub window: Duration,
    /// Subjects tracked apart at once; refusals of further subjects share one bucket per kind.
    pub max_subjects: usize,
}

impl Default for RefusalLimits {
    fn default() -> Self {
        Self {
            recorded_per_window: 20,
            window: Duration::from_secs(60),
            max_subjects: 10_000,
        }
    }
}

/// Who was refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefusalSubject {
    /// An authenticated user.
    User(String),
    /// A client that did not authenticate, by address (without the port, which a client
    /// changes with every connection).
    Address(IpAddr),
    /// Any subject beyond [`RefusalLimits::max_subjects`].
    Others,
}

/// What refusals are counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefusalKey {
    /// The kind of refusal.
    pub kind: RefusalKind,
    /// Who was refused.
    pub subject: RefusalSubject,
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write its receipt.
    Record,
    /// Do not: it is counted, and the count is due in an aggregate when its window ends.
    Counted,
}

/// Refusals counted in a window that has ended: the content of one aggregate receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedRefusals {
    /// The kind of refusal and the subject, as counted (possibly [`RefusalSubject::Others`]).
    pub key: RefusalKey,
    /// How many.
    pub count: u64,
    /// When the first of them happened.
    pub first: Timestamp,
    /// When the last of them happened.
    pub last: Timestamp,
}

/// Decides which refusals are recorded and counts the rest. Shared by every request.
#[derive(Debug)]
pub struct RefusalLimiter {
    limits: RefusalLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<RefusalKey, Bucket>,
    /// Counts of windows that ended when a new refusal opened the next one.
    ended: Vec<CountedRefusals>,
}

#[derive(Debug)]
struct Bucket {
    window_start: Timestamp,
    recorded: u32,
    counted: u64,
    first_counted: Timestamp,
    last_counted: Timestamp,
}

impl Bucket {
    fn new(now: Timestamp) -> Self {
        Self {
            window_start: now,
            recorded: 0,
            counted: 0,
            first_counted: now,
            last_counted: now,
        }
    }

    /// The window's count, when anything was counted.
    fn close(&self, key: &RefusalKey) -> Option<CountedRefusals> {
        (self.counted > 0).then(|| CountedRefusals {
            key: key.clone(),
            count: self.counted,
            first: self.first_counted,
            last: self.last_counted,
        })
    }
}

impl RefusalLimiter {
    /// A limiter with these limits.
    pub fn new(limits: RefusalLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Decides whether the refusal `key` at `now` is recorded or counted.
    pub fn admit(&self, key: RefusalKey, now: Timestamp) -> Admission {
        let mut state = self.lock();
        let State { buckets, ended } = &mut *state;
        let key = if !buckets.contains_key(&key) && buckets.len() >= self.limits.max_subjects {
            RefusalKey {
                kind: key.kind,
                subject: RefusalSubject::Others,
            }
        } else {
            key
        };
        if let Some(bucket) = buckets.get_mut(&key)
            && now >= bucket.window_start.saturating_add(self.limits.window)
        {
            ended.extend(bucket.close(&key));
            *bucket = Bucket::new(now);
        }
        let bucket = buckets.entry(key).or_insert_with(|| Bucket::new(now));
        if bucket.recorded < self.limits.recorded_per_window {
            bucket.recorded += 1;
            return Admission::Record;
        }
        if bucket.counted == 0 {
            bucket.first_counted = now;
            bucket.last_counted = now;
        }
        bucket.counted += 1;
        bucket.last_counted = bucket.last_counted.max(now);
        Admission::Counted
    }

    /// The counts of every window that has ended by `now`, which are then forgotten.
    pub fn take_ended(&self, now: Timestamp) -> Vec<CountedRefusals> {
        let window = self.limits.window;
        self.take(|bucket| now >= bucket.window_start.saturating_add(window))
    }

    /// Every count, ended or not, which are then forgotten: for shutdown.
    pub fn take_all(&self) -> Vec<CountedRefusals> {
        self.take(|_| true)
    }

    /// How many subjects are tracked now.
    pub fn subjects(&self) -> usize {
        self.lock().buckets.len()
    }

    fn take(&self, ended: impl Fn(&Bucket) -> bool) -> Vec<CountedRefusals> {
        let mut state = self.lock();
        let State {
            buckets,
            ended: already,
        } = &mut *state;
        let mut counts = std::mem::take(already);
        buckets.retain(|key, bucket| {
            if !ended(bucket) {
                return true;
            }
            counts.extend(bucket.close(key));
            false
        });
        counts.sort_by(|a, b| (a.first, &a.key).cmp(&(b.first, &b.key)));
        counts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The map stays consistent per entry, so a poisoned lock is taken over.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` against a limiter recording 3 per 10 s window for at most 2 subjects:
    /// `admit SECONDS KIND SUBJECT` (subject `user:NAME` or `addr:IP`) answers `record` or
    /// `counted`; `ended SECONDS` and `all` list the counts taken.
    fn check(steps: &[(&str, &str)]) {
        let limiter = RefusalLimiter::new(RefusalLimits {
            recorded_per_window: 3,
            window: Duration::from_secs(10),
            max_subjects: 2,
        });
        let time =
            |seconds: &str| Timestamp::from_unix_millis(seconds.parse::<i64>().unwrap() * 1000);
        let show = |counts: Vec<CountedRefusals>| {
            counts
                .iter()
                .map(|counted| {
                    let subject = match &counted.key.subject {
                        RefusalSubject::User(user) => format!("user:{user}"),
                        RefusalSubject::Address(address) => format!("addr:{address}"),
                        RefusalSubject::Others => "others".to_owned(),
                    };
                    format!(
                        "{} {subject} {} ({}..{})",
                        counted.key.kind.as_str(),
                        counted.count,
                        counted.first.as_unix_millis() / 1000,
                        counted.last.as_unix_millis() / 1000
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        for (command, expected) in steps {
            let words: Vec<&str> = command.split_whitespace().collect();
            let actual = match words.as_slice() {
                ["admit", seconds, kind, subject] => {
                    let kind = match *kind {
                        "denied" => RefusalKind::Denied,
                        "authentication" => RefusalKind::Authentication,
                        "rebinding" => RefusalKind::Rebinding,
                        other => panic!("unknown kind {other}"),
                    };
                    let subject = match subject.split_once(':') {
                        Some(("user", name)) => RefusalSubject::User(name.to_owned()),
                        Some(("addr", address)) => {
                            RefusalSubject::Address(address.parse().unwrap())
                        }
                        _ => panic!("unknown subject {subject}"),
                    };
                    match limiter.admit(RefusalKey { kind, subject }, time(seconds)) {
                        Admission::Record => "record".to_owned(),
                        Admission::Counted => "counted".to_owned(),
                    }
                }
                ["ended", seconds] => show(limiter.take_ended(time(seconds))),
                ["all"] => show(limiter.take_all()),
                ["subjects"] => limiter.subjects().to_string(),
                _ => panic!("unknown command {command}"),
            };
            assert_eq!(actual, *expected, "{command}");
        }
    }

    #[test]
    fn the_first_refusals_are_recorded_and_the_rest_counted_per_window() {
        check(&[
            ("admit 0 authentication addr:10.0.0.1", "record"),
            ("admit 1 authentication addr:10.0.0.1", "record"),
            ("admit 2 authentication addr:10.0.0.1", "record"),
            ("admit 3 authentication addr:10.0.0.1", "counted"),
            ("admit 4 denied user:alice", "record"),
            ("admit 5 authentication addr:10.0.0.1", "counted"),
            ("ended 9", ""),
            ("ended 10", "authentication addr:10.0.0.1 2 (3..5)"),
            ("subjects", "1"),
            ("ended 14", ""),
            ("subjects", "0"),
        ]);
    }

    #[test]
    fn a_refusal_after_the_window_opens_the_next_and_keeps_the_count() {
        check(&[
            ("admit 0 denied user:bob", "record"),
            ("admit 0 denied user:bob", "record"),
            ("admit 0 denied user:bob", "record"),
            ("admit 1 denied user:bob", "counted"),
            ("admit 12 denied user:bob", "record"),
            ("admit 12 denied user:bob", "record"),
            ("admit 12 denied user:bob", "record"),
            ("admit 13 denied user:bob", "counted"),
            ("admit 14 denied user:bob", "counted"),
            ("ended 15", "denied user:bob 1 (1..1)"),
            ("all", "denied user:bob 2 (13..14)"),
            ("all", ""),
        ]);
    }

    #[test]
    fn kinds_are_counted_apart_and_subjects_beyond_the_limit_share_a_bucket() {
        check(&[
            ("admit 0 rebinding addr:10.0.0.1", "record"),
            ("admit 0 authentication addr:10.0.0.1", "record"),
            ("subjects", "2"),
            ("admit 0 authentication addr:10.0.0.2", "record"),
            ("admit 0 authentication addr:10.0.0.3", "record"),
            ("admit 0 authentication addr:10.0.0.4", "record"),
            ("admit 1 authentication addr:10.0.0.5", "counted"),
            ("admit 2 denied user:carol", "record"),
            ("subjects", "4"),
            ("all", "authentication others 1 (1..1)"),
        ]);
    }
}
