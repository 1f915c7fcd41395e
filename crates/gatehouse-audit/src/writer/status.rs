//! Health and counters, shared by the writer's handles, its task and the export task.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::WriterStats;
use crate::time::Timestamp;

/// What the handles and the task share: health and counters.
#[derive(Debug)]
pub(crate) struct Status {
    pub(super) healthy: AtomicBool,
    pub(super) appended: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) failed_appends: AtomicU64,
    pub(super) unrecorded: AtomicU64,
    pub(super) checkpoints: AtomicU64,
    pub(super) checkpoint_failures: AtomicU64,
    pub(crate) export_dropped: AtomicU64,
    pub(crate) export_failures: AtomicU64,
    /// When the first receipt not yet covered by a notice went unwritten.
    pub(super) first_unrecorded_at: Mutex<Option<Timestamp>>,
}

impl Status {
    pub(super) fn new() -> Self {
        Self {
            healthy: AtomicBool::new(true),
            appended: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failed_appends: AtomicU64::new(0),
            unrecorded: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
            export_dropped: AtomicU64::new(0),
            export_failures: AtomicU64::new(0),
            first_unrecorded_at: Mutex::new(None),
        }
    }

    pub(super) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub(super) fn note_unrecorded(&self, count: u64) {
        if let Ok(mut first) = self.first_unrecorded_at.lock() {
            first.get_or_insert_with(Timestamp::now);
        }
        self.unrecorded.fetch_add(count, Ordering::AcqRel);
    }

    pub(super) fn snapshot(&self, queue_depth: usize) -> WriterStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Acquire);
        WriterStats {
            queue_depth,
            healthy: self.is_healthy(),
            appended: load(&self.appended),
            batches: load(&self.batches),
            failed_appends: load(&self.failed_appends),
            unrecorded: load(&self.unrecorded),
            checkpoints: load(&self.checkpoints),
            checkpoint_failures: load(&self.checkpoint_failures),
            export_dropped: load(&self.export_dropped),
            export_failures: load(&self.export_failures),
        }
    }
}
